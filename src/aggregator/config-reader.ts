/**
 * Reading untrusted configuration objects with errors that name the bad field (`sources[2].url: must be an
 * http(s) URL`). Used by `config.ts` and by each parser and source factory for its own options.
 *
 * @module
 */
import { isRecord } from '../shared/json.js';

/** A configuration value is invalid. `field` is its path, e.g. `sources[2].url`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** Typed access to the fields of one configuration object at `path`. Every getter throws {@link ConfigError}. */
export class OptionReader {
  readonly value: Record<string, unknown>;

  constructor(
    value: unknown,
    readonly path: string,
  ) {
    if (!isRecord(value)) throw new ConfigError(path, 'must be an object');
    this.value = value;
  }

  /** Path of a field of this object. */
  at(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  /** Refuses keys other than `allowed` (catches typos such as `intervalMS`). */
  only(allowed: readonly string[]): this {
    for (const key of Object.keys(this.value)) {
      if (!allowed.includes(key))
        throw new ConfigError(this.at(key), `unknown option (allowed: ${allowed.join(', ')})`);
    }
    return this;
  }

  has(key: string): boolean {
    return this.value[key] !== undefined;
  }

  string(key: string): string;
  string(key: string, fallback: string): string;
  string(key: string, fallback: null): string | undefined;
  string(key: string, fallback?: string | null): string | undefined {
    const value = this.value[key];
    if (value === undefined) {
      if (fallback === undefined) throw new ConfigError(this.at(key), 'is required');
      return fallback ?? undefined;
    }
    if (typeof value !== 'string' || value.length === 0)
      throw new ConfigError(this.at(key), 'must be a non-empty string');
    return value;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const value = this.value[key] ?? fallback;
    if (value === undefined)
      throw new ConfigError(this.at(key), `is required (one of ${allowed.join(', ')})`);
    if (typeof value !== 'string' || !allowed.includes(value as T)) {
      throw new ConfigError(this.at(key), `must be one of ${allowed.join(', ')}`);
    }
    return value as T;
  }

  number(key: string, limits: { min?: number; max?: number; integer?: boolean }, fallback?: number): number {
    const value = this.value[key] ?? fallback;
    if (value === undefined) throw new ConfigError(this.at(key), 'is required');
    const { min = -Infinity, max = Infinity, integer = false } = limits;
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      value < min ||
      value > max ||
      (integer && !Number.isInteger(value))
    ) {
      const range = [Number.isFinite(min) ? `>= ${min}` : '', Number.isFinite(max) ? `<= ${max}` : '']
        .filter(Boolean)
        .join(' and ');
      throw new ConfigError(
        this.at(key),
        `must be ${integer ? 'an integer' : 'a number'}${range === '' ? '' : ` ${range}`}`,
      );
    }
    return value;
  }

  optionalNumber(key: string, limits: { min?: number; max?: number; integer?: boolean }): number | undefined {
    return this.has(key) ? this.number(key, limits) : undefined;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.value[key] ?? fallback;
    if (typeof value !== 'boolean') throw new ConfigError(this.at(key), 'must be true or false');
    return value;
  }

  /** An http(s) URL. */
  url(key: string, protocols: readonly string[] = ['http:', 'https:']): string {
    const value = this.value[key];
    const label = protocols.map((p) => p.replace(/:$/, '')).join('/');
    const message =
      protocols.length === 2 && protocols[0] === 'http:'
        ? 'must be an http(s) URL'
        : `must be a ${label} URL`;
    if (typeof value !== 'string') throw new ConfigError(this.at(key), message);
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new ConfigError(this.at(key), message);
    }
    if (!protocols.includes(parsed.protocol)) throw new ConfigError(this.at(key), message);
    return value;
  }

  /** A nested object (or `undefined` when absent and optional). */
  object(key: string): OptionReader;
  object(key: string, optional: true): OptionReader | undefined;
  object(key: string, optional = false): OptionReader | undefined {
    const value = this.value[key];
    if (value === undefined && optional) return undefined;
    if (value === undefined) throw new ConfigError(this.at(key), 'is required');
    return new OptionReader(value, this.at(key));
  }

  /** An object whose values are all strings. */
  stringMap(key: string): Record<string, string> | undefined {
    const reader = this.object(key, true);
    if (reader === undefined) return undefined;
    const out: Record<string, string> = {};
    for (const k of Object.keys(reader.value)) out[k] = reader.string(k);
    return out;
  }

  /** An array of non-empty strings (each one of `allowed`, when given), or `undefined` when absent. */
  stringList<T extends string = string>(key: string, allowed?: readonly T[]): T[] | undefined {
    return this.array(
      key,
      (value, path) => {
        if (allowed !== undefined && !allowed.includes(value as T)) {
          throw new ConfigError(path, `must be one of ${allowed.join(', ')}`);
        }
        if (typeof value !== 'string' || value.length === 0)
          throw new ConfigError(path, 'must be a non-empty string');
        return value as T;
      },
      true,
    );
  }

  /** An array, each item read by `item` with its indexed path. */
  array<T>(key: string, item: (value: unknown, path: string) => T, optional = false): T[] | undefined {
    const value = this.value[key];
    if (value === undefined && optional) return undefined;
    if (!Array.isArray(value)) throw new ConfigError(this.at(key), 'must be an array');
    return value.map((v, i) => item(v, `${this.at(key)}[${i}]`));
  }
}
