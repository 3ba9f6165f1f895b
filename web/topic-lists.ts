/**
 * The generic list of a topic: a table of its entities with the columns its display hints name (label, value with
 * unit), for any topic of the registry. At most {@link MAX_LIST_ROWS} rows are rendered (a topic of 1,000 transit
 * vehicles shows the first ones and a count); rows and cells are reused across renders and a cell is written only
 * when its text changed, so a busy topic costs little per animation frame. Every value goes in as text.
 *
 * @module
 */
import type { DisplayField, TopicInfo } from '../src/protocol/topic-definition.js';
import type { EntityBase } from '../src/protocol/topics.js';
import { h } from './dom.js';
import { displayName, fieldLabel, formatValue } from './topic-info.js';
import { readEntityPath } from '../src/protocol/entity-path.js';

/** Most rows a list renders. */
export const MAX_LIST_ROWS = 100;
/** Narrowest name column and value column before the table scrolls sideways inside its panel. */
const MIN_NAME_PX = 120;
const MIN_COLUMN_PX = 64;
/** Hinted fields the first column shows already (`displayName`). */
const NAME_FIELDS: ReadonlySet<string> = new Set(['name', 'id']);

interface Row {
  readonly element: HTMLTableRowElement;
  readonly cells: HTMLTableCellElement[];
}

/** One topic's section in the lists panel. */
class TopicList {
  readonly element: HTMLElement;
  /** The hinted fields shown as columns (the first column already shows the name or id). */
  readonly #fields: readonly DisplayField[];
  readonly #body: HTMLTableSectionElement;
  readonly #count: HTMLElement;
  readonly #more: HTMLElement;
  readonly #rows = new Map<string, Row>();

  constructor(info: TopicInfo) {
    const { display } = info;
    this.#fields = display.fields.filter((f) => !NAME_FIELDS.has(f.field));
    this.#body = h('tbody');
    this.#count = h('span', { class: 'count', 'data-testid': `list-count-${info.name}` }, '0');
    this.#more = h('p', { class: 'list-more', hidden: true });
    const head = h(
      'tr',
      {},
      h('th', {}, 'Name'),
      ...this.#fields.map((f) => h('th', { title: f.field }, fieldLabel(f))),
    );
    this.element = h(
      'section',
      {
        class: 'topic-list',
        'data-testid': `list-${info.name}`,
        'data-topic': info.name,
        style: `--topic:${display.color}`,
      },
      h(
        'header',
        { class: 'topic-list-head' },
        h('i', { class: 'swatch', 'aria-hidden': 'true' }, display.icon ?? ''),
        h('h3', {}, display.label),
        this.#count,
      ),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          {
            class: 'entity-table',
            // Narrow panels scroll the table sideways inside its box, never the page.
            style: `min-width:${MIN_NAME_PX + this.#fields.length * MIN_COLUMN_PX}px`,
          },
          h('thead', {}, head),
          this.#body,
        ),
      ),
      this.#more,
    );
  }

  /** Shows `entities` (sorted by name, then id), at most {@link MAX_LIST_ROWS} of them. */
  render(entities: ReadonlyMap<string, EntityBase>): void {
    this.#count.textContent = String(entities.size);
    const named = [...entities.values()].map((entity) => ({
      entity,
      name: displayName(entity as EntityBase & Record<string, unknown>),
    }));
    named.sort((a, b) =>
      a.name < b.name
        ? -1
        : a.name > b.name
          ? 1
          : a.entity.id < b.entity.id
            ? -1
            : a.entity.id > b.entity.id
              ? 1
              : 0,
    );
    const shown = named.slice(0, MAX_LIST_ROWS);
    const keep = new Set<string>();
    const rows: HTMLTableRowElement[] = [];
    for (const { entity, name } of shown) {
      keep.add(entity.id);
      const row = this.#row(entity.id);
      setText(row.cells[0], name);
      this.#fields.forEach((field, i) => {
        setText(row.cells[i + 1], formatValue(readEntityPath(entity, field.field), field.unit));
      });
      rows.push(row.element);
    }
    for (const [id, row] of this.#rows) {
      if (keep.has(id)) continue;
      row.element.remove();
      this.#rows.delete(id);
    }
    if (rows.length === 0) {
      this.#body.replaceChildren(
        h('tr', {}, h('td', { class: 'empty', colspan: this.#fields.length + 1 }, 'No entities')),
      );
    } else if (!sameChildren(this.#body, rows)) {
      this.#body.replaceChildren(...rows);
    }
    this.#more.hidden = entities.size <= shown.length;
    this.#more.textContent = `showing ${shown.length} of ${entities.size}`;
  }

  #row(id: string): Row {
    const existing = this.#rows.get(id);
    if (existing !== undefined) return existing;
    const cells = [h('td', { class: 'entity-name' })];
    for (let i = 0; i < this.#fields.length; i++) cells.push(h('td'));
    const row = { element: h('tr', { 'data-testid': 'topic-row', 'data-id': id }, ...cells), cells };
    this.#rows.set(id, row);
    return row;
  }
}

function setText(cell: HTMLTableCellElement | undefined, text: string): void {
  if (cell === undefined || cell.textContent === text) return;
  cell.textContent = text;
  cell.title = text.endsWith('…') ? text : '';
}

function sameChildren(parent: Element, nodes: readonly Node[]): boolean {
  if (parent.childNodes.length !== nodes.length) return false;
  return nodes.every((node, i) => parent.childNodes[i] === node);
}

/** The lists panel: one section per topic, in registry order. */
export class TopicLists {
  readonly #host: HTMLElement;
  readonly #lists = new Map<string, TopicList>();

  constructor(host: HTMLElement) {
    this.#host = host;
  }

  /** Sets the topics listed (registry order); sections of topics no longer listed are dropped. */
  setTopics(topics: readonly TopicInfo[]): void {
    this.#lists.clear();
    for (const info of topics) this.#lists.set(info.name, new TopicList(info));
    this.#host.replaceChildren(...[...this.#lists.values()].map((list) => list.element));
    if (this.#lists.size === 0) this.#host.append(h('p', { class: 'empty' }, 'No other topics'));
  }

  /** Whether `topic` has a section. */
  has(topic: string): boolean {
    return this.#lists.has(topic);
  }

  /** Renders `topic`'s entities into its section. */
  render(topic: string, entities: ReadonlyMap<string, EntityBase>): void {
    this.#lists.get(topic)?.render(entities);
  }
}
