/**
 * The alerts panel's feed: recent alerts, newest first, kept in line with the SDK's active alerts.
 *
 * Which alerts are active is the protocol's rule (`applyAlert`, folded by the SDK: `client.activeAlerts(topic)`,
 * seeded by each snapshot, so alerts raised before the page opened are there). The feed only presents it: an alert
 * with an id is one entry that changes state (raised, then resolved); an ALERT that is not part of the state (no
 * id, a broadcast, the resolution of an alert this page never saw raised) is an entry of its own.
 *
 * @module
 */
import type { AlertView } from '../src/protocol/payloads.js';
import type { FeedAlert } from './panels.js';
import { toFeedAlert } from './panels.js';

/** Entries kept in the feed. */
export const MAX_FEED = 60;

function timeOf(entry: FeedAlert): number {
  const t = Date.parse(entry.at);
  return Number.isFinite(t) ? t : 0;
}

/** The recent-alerts feed. */
export class AlertFeed {
  #entries: FeedAlert[] = [];
  /** Frame topic -> id -> the entry showing that active alert. */
  readonly #tracked = new Map<string, Map<string, FeedAlert>>();

  /** The entries, newest first. */
  get entries(): readonly FeedAlert[] {
    return this.#entries;
  }

  /**
   * Brings the feed in line with `active`, the alerts now active on `topic` (oldest first): one new entry per newly
   * active alert, an updated entry for one whose data changed, and the entries of alerts no longer active turn
   * resolved at `timestamp` (also when the resolution itself was missed, across a reconnect).
   */
  sync(topic: string, active: readonly AlertView[], timestamp: string): void {
    const before = this.#tracked.get(topic) ?? new Map<string, FeedAlert>();
    const after = new Map<string, FeedAlert>();
    for (const view of active) {
      if (view.id === undefined) continue;
      const current = before.get(view.id);
      if (current !== undefined && current.message === view.message && current.severity === view.severity) {
        after.set(view.id, current);
        continue;
      }
      const entry = toFeedAlert(view, timestamp, topic);
      if (current !== undefined) this.#remove(current);
      this.#entries.push(entry);
      after.set(view.id, entry);
    }
    for (const [id, entry] of before) {
      if (after.has(id)) continue;
      this.#remove(entry);
      this.#entries.push({ ...entry, state: 'resolved', at: timestamp });
    }
    this.#tracked.set(topic, after);
    this.#settle();
  }

  /** Whether the feed has an entry of alert `id` on `topic` (raised or resolved). */
  shows(topic: string, id: string): boolean {
    return this.#entries.some((entry) => entry.scope === topic && entry.id === id);
  }

  /** Adds an entry for an ALERT that is not part of a topic's state (frame topic `topic`, if any). */
  note(view: AlertView, timestamp: string, topic: string | undefined): void {
    this.#entries.push(toFeedAlert(view, timestamp, topic));
    this.#settle();
  }

  #remove(entry: FeedAlert): void {
    const index = this.#entries.indexOf(entry);
    if (index >= 0) this.#entries.splice(index, 1);
  }

  /** Newest first (a stable sort: same-time entries keep their order), at most {@link MAX_FEED}. */
  #settle(): void {
    this.#entries = this.#entries
      .map((entry, index) => ({ entry, index, time: timeOf(entry) }))
      .sort((a, b) => b.time - a.time || b.index - a.index)
      .slice(0, MAX_FEED)
      .map(({ entry }) => entry);
  }
}
