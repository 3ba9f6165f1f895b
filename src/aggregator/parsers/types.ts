/**
 * What a feed parser is: a pure function from a decoded response body to one batch of readings for a topic.
 * Parsers map what they can; the aggregator validates every entity against the topic schema, so a reading the
 * parser could not complete is rejected and counted, not published.
 *
 * @module
 */
import { isRecord } from '../../shared/json.js';
import type { SourceBatch } from '../source.js';

/** What a parser may know about the moment it runs. */
export interface ParseContext {
  /** Clock, ms since the epoch. */
  readonly now: number;
  /** Name of the source the parser runs in. */
  readonly sourceName: string;
  /**
   * Counts one reading the parser refused on its own (e.g. a vehicle with a NaN position), logged against the
   * source; the rest of the batch goes on. Absent when nobody counts.
   */
  readonly reject?: (reason: string) => void;
}

/** A parser for one real feed format. */
export interface FeedParser {
  /** Format name as used in the config file, e.g. `open-meteo-weather`. */
  readonly format: string;
  /** The city topic it produces. */
  readonly topic: string;
  /**
   * What `parse` receives: `json` (default), the decoded JSON value within the JSON bounds, or `binary`, the raw
   * body as a `Buffer` (bounded by the source's `maxBytes`), for protobuf feeds.
   */
  readonly body?: 'json' | 'binary';
  /** Turns a decoded body into a batch. Throws {@link FeedFormatError} when the body is not this format. */
  parse(body: unknown, context: ParseContext): SourceBatch;
}

/** The body is not in the format the parser expects (the whole response is rejected). */
export class FeedFormatError extends Error {
  override readonly name = 'FeedFormatError';
}

export { isRecord } from '../../shared/json.js';

/** A finite number, or a numeric string turned into one; otherwise `undefined`. */
export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** A non-empty string, or a number turned into one; otherwise `undefined`. */
export function toId(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** An ISO-8601 string for a parseable time, otherwise `undefined`. */
export function toIso(value: unknown): string | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** Seconds since the epoch (GTFS-Realtime, GBFS v2) -> ISO-8601, only for plausible times; otherwise `undefined`. */
export function isoFromEpochSeconds(value: unknown): string | undefined {
  return typeof value === 'number' && value > 0 && value < 1e11
    ? new Date(value * 1000).toISOString()
    : undefined;
}

/** Reads a dotted path (`a.b.0.c`) inside a JSON value. */
export function getPath(value: unknown, path: string): unknown {
  let current: unknown = value;
  for (const part of path.split('.')) {
    if (Array.isArray(current)) current = current[Number(part)];
    else if (isRecord(current)) current = current[part];
    else return undefined;
  }
  return current;
}

/** Drops `undefined` fields so entities stay comparable and JSON-clean. */
export function compact<T extends Record<string, unknown>>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
  return out as T;
}
