/**
 * Tiny DOM helpers for the dashboard. Text always goes in as text nodes (data can come from any publisher, so it
 * is never parsed as HTML).
 *
 * @module
 */

/** Attribute values; `false`/`undefined`/`null` leave the attribute out. */
export type Attrs = Record<string, string | number | boolean | undefined | null>;

/** A child: a node, text, or nothing. */
export type Child = Node | string | number | null | undefined | false;

function apply(element: Element, attrs: Attrs, children: readonly Child[]): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Creates an HTML element. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  apply(element, attrs, children);
  return element;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Creates an SVG element. */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG_NS, tag);
  apply(element, attrs, children);
  return element;
}

/** The element with `data-testid="id"`; throws when the page lacks it (a broken index.html). */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.querySelector<T>(`[data-testid="${id}"]`);
  if (element === null) throw new Error(`missing element [data-testid="${id}"]`);
  return element;
}
