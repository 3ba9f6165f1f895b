/**
 * The status bar: connection state, messages per second (sliding window) and data age per topic.
 *
 * @module
 */
import type { ConnectionState } from '../src/client/index.js';
import { h } from './dom.js';
import { formatAge } from './format.js';

/** Counts events and reports their rate over a sliding window. */
export class RateMeter {
  readonly #windowMs: number;
  #times: number[] = [];

  constructor(windowMs = 5000) {
    this.#windowMs = windowMs;
  }

  /** Records one event at `now`. */
  tick(now: number): void {
    this.#times.push(now);
    if (this.#times.length > 100_000) this.#times = this.#times.slice(-50_000);
  }

  /** Events per second over the window ending at `now`. */
  rate(now: number): number {
    const from = now - this.#windowMs;
    let first = 0;
    while (first < this.#times.length && (this.#times[first] ?? 0) < from) first++;
    if (first > 0) this.#times = this.#times.slice(first);
    return this.#times.length / (this.#windowMs / 1000);
  }
}

/** The status bar's elements. */
export class StatusBar {
  readonly #state: HTMLElement;
  readonly #rate: HTMLElement;
  readonly #agesGroup: HTMLElement;
  readonly #ages = new Map<string, HTMLElement>();
  readonly #note: HTMLElement;
  readonly #reload: HTMLButtonElement;

  constructor(host: HTMLElement) {
    this.#state = h(
      'span',
      { class: 'conn', 'data-testid': 'connection-state', 'data-state': 'connecting' },
      'connecting',
    );
    this.#rate = h('span', { class: 'rate', 'data-testid': 'msg-rate' }, '0.0 msg/s');
    this.#agesGroup = h('span', { class: 'status-group ages' });
    this.#note = h('span', { class: 'note', 'data-testid': 'status-note' });
    this.#reload = h(
      'button',
      { class: 'reload', type: 'button', 'data-testid': 'reload', hidden: true },
      'Reconnect',
    );
    this.#reload.addEventListener('click', () => location.reload());
    host.replaceChildren(
      h('span', { class: 'status-group' }, this.#state, this.#reload, this.#rate),
      this.#agesGroup,
      this.#note,
    );
  }

  /** The topics whose data age is shown, with their labels. */
  setTopics(topics: readonly { readonly name: string; readonly label: string }[]): void {
    this.#ages.clear();
    const ages = topics.map(({ name, label }) => {
      const value = h('b', { 'data-testid': `age-${name}` }, '—');
      this.#ages.set(name, value);
      return h('span', { class: 'age', 'data-topic': name }, `${label} `, value);
    });
    this.#agesGroup.replaceChildren(h('span', { class: 'status-label' }, 'Data age'), ...ages);
  }

  setState(state: ConnectionState): void {
    this.#state.textContent = state;
    this.#state.dataset.state = state;
    document.body.dataset.connection = state;
    // `closed` is final for the client (a fatal close code): offer a fresh start.
    this.#reload.hidden = state !== 'closed';
  }

  setRate(perSecond: number): void {
    this.#rate.textContent = `${perSecond.toFixed(1)} msg/s`;
  }

  /** `ageMs` undefined: no data yet. */
  setAge(topic: string, ageMs: number | undefined): void {
    const element = this.#ages.get(topic);
    if (element === undefined) return;
    element.textContent = ageMs === undefined ? '—' : formatAge(ageMs);
    element.dataset.level =
      ageMs === undefined ? 'none' : ageMs > 120_000 ? 'stale' : ageMs > 30_000 ? 'old' : 'fresh';
  }

  setNote(text: string): void {
    this.#note.textContent = text;
    this.#note.title = text;
  }
}
