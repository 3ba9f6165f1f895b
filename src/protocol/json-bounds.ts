/**
 * The one rule for untrusted JSON values: how deep, how many values, how long a string or key, how large in total.
 * Every input path checks a decoded value against it *before* anything is stored, sequenced or cached (HTTP
 * publish / broadcast / ingest, client frames, MQTT payloads, polled feeds, each entity a source reports, and the
 * library's `publish` / `broadcast`). An input stored today is read by every client that connects tomorrow: a
 * 20,000-deep value parses fine in V8 but makes `JSON.stringify` overflow the stack.
 *
 * The check is iterative (an explicit stack, no recursion that could itself overflow), stops at the first
 * violation, and mirrors what `JSON.stringify` would visit (own enumerable keys, `toJSON`). It is browser-safe
 * and re-exported by `citypulse/protocol`. `docs/protocol.md` ("Bounded JSON") is its prose.
 *
 * @module
 */
import { assertNever } from './assert-never.js';

/** Limits a JSON value must stay within. */
export interface JsonBounds {
  /** Most objects/arrays nested inside each other (`1` has depth 0, `{}` 1, `[[1]]` 2). Default 64. */
  readonly maxDepth: number;
  /** Most values in total: every object, array, string, number, boolean and null counts one. Default 100,000. */
  readonly maxNodes: number;
  /** Longest string value, in UTF-16 code units. Default 1,048,576. */
  readonly maxStringLength: number;
  /** Longest object key, in UTF-16 code units. Default 1024. */
  readonly maxKeyLength: number;
  /**
   * Largest total size, estimated as the lengths of every string and key plus one per value (close to the JSON
   * text's length for typical data). Default 4,194,304.
   */
  readonly maxSize: number;
}

/** The default bounds: far above any legitimate city data, far below what overflows a stack or a heap. */
export const DEFAULT_JSON_BOUNDS: JsonBounds = Object.freeze({
  maxDepth: 64,
  maxNodes: 100_000,
  maxStringLength: 1024 * 1024,
  maxKeyLength: 1024,
  maxSize: 4 * 1024 * 1024,
});

/**
 * Why a value was refused: `TOO_DEEP` (nesting), `TOO_LARGE` (values, a string, a key or the total size) or
 * `NOT_JSON` (a value `JSON.stringify` cannot encode: a `bigint`, a throwing `toJSON`, or a cycle, which is also
 * reported as `TOO_DEEP` once it passes `maxDepth`).
 */
export type JsonBoundsCode = 'TOO_DEEP' | 'TOO_LARGE' | 'NOT_JSON';

/** The first violation {@link checkJsonBounds} found. */
export interface JsonBoundsViolation {
  readonly code: JsonBoundsCode;
  /** One line, safe to send back to the sender (it never quotes the input). */
  readonly message: string;
}

/** Thrown by the library API (`WebSocketService.publish` / `broadcast`) for a value outside the bounds. */
export class JsonBoundsError extends Error {
  override readonly name = 'JsonBoundsError';
  /** Stable code: `TOO_DEEP`, `TOO_LARGE` or `NOT_JSON`. */
  readonly code: JsonBoundsCode;

  constructor(violation: JsonBoundsViolation) {
    super(violation.message);
    this.code = violation.code;
  }
}

/** The defaults with `overrides` applied (an `undefined` override keeps the default). */
export function resolveJsonBounds(overrides: Partial<JsonBounds> = {}): JsonBounds {
  const out: Record<keyof JsonBounds, number> = { ...DEFAULT_JSON_BOUNDS };
  for (const key of Object.keys(DEFAULT_JSON_BOUNDS) as (keyof JsonBounds)[]) {
    const value = overrides[key];
    if (value !== undefined) {
      if (!(value >= 0)) throw new RangeError(`json bounds: ${key} must be a number >= 0`);
      out[key] = value;
    }
  }
  return Object.freeze(out);
}

interface Pending {
  readonly value: unknown;
  /** Containers enclosing `value`. */
  readonly depth: number;
  /** The key (or index) `value` sits under, passed to `toJSON` as `JSON.stringify` does. */
  readonly key: string;
}

/**
 * Checks `value` against `bounds`; returns the first violation, or `null` when the value is within them.
 * Never throws, never recurses; its work is bounded by `bounds.maxNodes`.
 */
export function checkJsonBounds(
  value: unknown,
  bounds: JsonBounds = DEFAULT_JSON_BOUNDS,
): JsonBoundsViolation | null {
  const stack: Pending[] = [{ value, depth: 0, key: '' }];
  let nodes = 1;
  let size = 0;
  const tooLarge = (message: string): JsonBoundsViolation => ({ code: 'TOO_LARGE', message });
  while (stack.length > 0) {
    const item = stack.pop() as Pending;
    let current = item.value;
    if (typeof current === 'object' && current !== null) {
      const toJSON = (current as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') {
        try {
          current = (toJSON as (key: string) => unknown).call(current, item.key);
        } catch {
          return { code: 'NOT_JSON', message: 'a value could not be converted to JSON (its toJSON threw)' };
        }
      }
    }
    size += 1;
    switch (typeof current) {
      case 'string':
        if (current.length > bounds.maxStringLength) {
          return tooLarge(`a string is longer than ${bounds.maxStringLength} characters`);
        }
        size += current.length;
        break;
      case 'bigint':
        return { code: 'NOT_JSON', message: 'a bigint cannot be encoded as JSON' };
      case 'object': {
        if (current === null) break;
        const depth = item.depth + 1;
        if (depth > bounds.maxDepth) {
          return { code: 'TOO_DEEP', message: `nested deeper than ${bounds.maxDepth} levels` };
        }
        const isArray = Array.isArray(current);
        const keys = isArray ? null : Object.keys(current);
        const count = isArray ? (current as unknown[]).length : (keys as string[]).length;
        nodes += count;
        if (nodes > bounds.maxNodes) return tooLarge(`more than ${bounds.maxNodes} values`);
        if (isArray) {
          const array = current as unknown[];
          for (let i = array.length - 1; i >= 0; i--) stack.push({ value: array[i], depth, key: String(i) });
        } else {
          const record = current as Record<string, unknown>;
          for (const key of keys as string[]) {
            if (key.length > bounds.maxKeyLength) {
              return tooLarge(`a key is longer than ${bounds.maxKeyLength} characters`);
            }
            size += key.length;
            stack.push({ value: record[key], depth, key });
          }
        }
        break;
      }
      case 'number':
      case 'boolean':
      case 'undefined':
      case 'function':
      case 'symbol':
        // the last three are left out or become null
        break;
      default:
        // `typeof` has no other results; TypeScript does not narrow `unknown` itself in a default branch.
        return assertNever(current as never);
    }
    if (size > bounds.maxSize) return tooLarge(`larger than ${bounds.maxSize} characters in total`);
  }
  return null;
}

/** Throws a {@link JsonBoundsError} when `value` is outside `bounds` (see {@link checkJsonBounds}). */
export function assertJsonBounds(value: unknown, bounds: JsonBounds = DEFAULT_JSON_BOUNDS): void {
  const violation = checkJsonBounds(value, bounds);
  if (violation !== null) throw new JsonBoundsError(violation);
}
