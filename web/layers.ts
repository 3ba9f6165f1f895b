/**
 * The map's layer switches: one checkbox per topic with a location, in the topic's colour and icon. Which layers
 * are hidden is kept in `localStorage` (key {@link HIDDEN_LAYERS_KEY}), so a reload keeps the operator's choice.
 *
 * @module
 */
import type { TopicInfo } from '../src/protocol/topic-definition.js';
import { h } from './dom.js';

/** The `localStorage` key of the hidden layers (a JSON array of topic names). */
export const HIDDEN_LAYERS_KEY = 'citypulse.hiddenLayers';
/** Most names kept (a tampered store cannot grow the set without bound). */
const MAX_STORED = 64;

function loadHidden(): Set<string> {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(HIDDEN_LAYERS_KEY) ?? '[]');
    if (!Array.isArray(parsed)) return new Set();
    return new Set(
      parsed.filter((n): n is string => typeof n === 'string' && n.length <= 64).slice(0, MAX_STORED),
    );
  } catch {
    // Storage disabled (privacy mode) or a corrupt value: every layer shown.
    return new Set();
  }
}

function saveHidden(hidden: ReadonlySet<string>): void {
  try {
    localStorage.setItem(HIDDEN_LAYERS_KEY, JSON.stringify([...hidden].slice(0, MAX_STORED)));
  } catch {
    // Not persisted; the choice still holds for this page.
  }
}

/** The layer switches of the map panel. */
export class LayerToggles {
  readonly #host: HTMLElement;
  readonly #onChange: () => void;
  readonly #hidden = loadHidden();

  /** Renders into `host`; `onChange` runs after a layer was switched. */
  constructor(host: HTMLElement, onChange: () => void) {
    this.#host = host;
    this.#onChange = onChange;
  }

  /** One switch per topic that has a location field. */
  setTopics(topics: readonly TopicInfo[]): void {
    const items = topics
      .filter((info) => info.locationField !== null)
      .map((info) => {
        const box = h('input', {
          type: 'checkbox',
          'data-testid': `layer-toggle-${info.name}`,
          checked: !this.#hidden.has(info.name),
        });
        box.addEventListener('change', () => {
          if (box.checked) this.#hidden.delete(info.name);
          else this.#hidden.add(info.name);
          saveHidden(this.#hidden);
          this.#onChange();
        });
        return h(
          'li',
          {},
          h(
            'label',
            { style: `--topic:${info.display.color}` },
            box,
            h('i', { class: 'swatch', 'aria-hidden': 'true' }, info.display.icon ?? ''),
            info.display.label,
          ),
        );
      });
    this.#host.replaceChildren(...items);
  }

  /** Whether `topic`'s markers are drawn. */
  visible(topic: string): boolean {
    return !this.#hidden.has(topic);
  }
}
