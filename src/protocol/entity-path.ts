/**
 * Reading an entity field by the dotted paths a topic definition names (`locationField`, the display hints' `field`,
 * a threshold rule's `field`): one rule for the server's alert rules and the dashboard.
 *
 * @module
 */
import { isRecord } from './json-value.js';

/**
 * The value at a dotted `path` (`location.lat`) of `entity`, following only own keys of plain objects (no array
 * indexes, nothing inherited: `__proto__` or `constructor` read only an own key of that name); `undefined` when
 * absent.
 */
export function readEntityPath(entity: unknown, path: string): unknown {
  let value: unknown = entity;
  for (const segment of path.split('.')) {
    if (!isRecord(value) || !Object.hasOwn(value, segment)) return undefined;
    value = value[segment];
  }
  return value;
}
