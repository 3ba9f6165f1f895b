/**
 * The published JSON Schema of the config file (`citypulse.schema.json` at the package root) is the source of
 * truth for its STRUCTURE: which keys exist, their types, enums and ranges. `checkConfigStructure` validates a
 * decoded config against it with ajv before the semantic checks of `config.ts` run (environment expansion, URL
 * schemes, cross-field rules), and turns ajv's first error into a {@link ConfigError} that names the path and,
 * where the schema lists them, the allowed values (`sources[0].intervalMS: unknown option (allowed: type, name,
 * ...)`).
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { ConfigError } from './config-reader.js';
import { isRecord } from '../shared/json.js';

/** Absolute path of `citypulse.schema.json` (shipped in the npm package, referenced by configs as `$schema`). */
export const CONFIG_SCHEMA_PATH: string = fileURLToPath(
  new URL('../../citypulse.schema.json', import.meta.url),
);

let compiled: ValidateFunction | null = null;
let schemaValue: Readonly<Record<string, unknown>> | null = null;

/** The config JSON Schema, parsed (read once). */
export function configSchema(): Readonly<Record<string, unknown>> {
  if (schemaValue === null) {
    const parsed: unknown = JSON.parse(readFileSync(CONFIG_SCHEMA_PATH, 'utf8'));
    if (!isRecord(parsed)) throw new Error(`${CONFIG_SCHEMA_PATH} is not a JSON Schema object`);
    schemaValue = parsed;
  }
  return schemaValue;
}

function validator(): ValidateFunction {
  if (compiled === null) {
    // allErrors off: stop at the first error (cheap on hostile input, and the first is the one reported).
    // verbose: errors carry their parentSchema, which lists the allowed keys of an object.
    const ajv = new Ajv2020({ allErrors: false, verbose: true, strict: true, allowUnionTypes: true });
    compiled = ajv.compile(configSchema());
  }
  return compiled;
}

/** `/sources/0/parser` -> `sources[0].parser`. */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(segment) ? `[${segment}]` : out === '' ? segment : `.${segment}`;
  }
  return out;
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  object: 'an object',
  array: 'an array',
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
  null: 'null',
};

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function list(values: readonly unknown[]): string {
  return values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');
}

/** One ajv error as a {@link ConfigError}: the path of the bad value, a message, the allowed values if known. */
export function configErrorOf(error: ErrorObject): ConfigError {
  const path = pointerToPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const parent = error.parentSchema as { properties?: Record<string, unknown> } | undefined;
      const allowed = Object.keys(parent?.properties ?? {});
      return new ConfigError(
        join(path, key),
        allowed.length === 0 ? 'unknown option' : `unknown option (allowed: ${allowed.join(', ')})`,
      );
    }
    case 'required':
      return new ConfigError(join(path, String(params.missingProperty)), 'is required');
    case 'enum':
      return new ConfigError(path, `unknown value (allowed: ${list(params.allowedValues as unknown[])})`);
    case 'const':
      return new ConfigError(
        path,
        params.allowedValue === false
          ? 'must be false or an object'
          : `must be ${JSON.stringify(params.allowedValue)}`,
      );
    case 'propertyNames':
      return new ConfigError(
        join(path, String(params.propertyName)),
        'invalid name (1-64 of A-Z a-z 0-9 _ . : -; not __proto__, constructor or prototype)',
      );
    case 'type': {
      const types = String(params.type).split(',');
      return new ConfigError(path, `must be ${types.map((t) => TYPE_NAMES[t] ?? t).join(' or ')}`);
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return new ConfigError(path, `must be a number ${String(params.comparison)} ${String(params.limit)}`);
    case 'minProperties':
      return new ConfigError(path, `must have at least ${String(params.limit)} key(s)`);
    case 'maxProperties':
      return new ConfigError(path, `must have at most ${String(params.limit)} keys`);
    case 'maxItems':
      return new ConfigError(path, `must list at most ${String(params.limit)}`);
    case 'minItems':
      return new ConfigError(path, `must list at least ${String(params.limit)}`);
    default:
      return new ConfigError(path, error.message ?? 'is invalid');
  }
}

/**
 * Validates the structure of a decoded config against `citypulse.schema.json`. Throws {@link ConfigError} naming
 * the first bad path. The value must already be within the JSON bounds.
 */
export function checkConfigStructure(value: unknown): void {
  const validate = validator();
  if (validate(value)) return;
  const errors = validate.errors ?? [];
  // `if` errors only say "must match then schema": the branch's own error (reported first) is the useful one.
  // A failing property name comes with the keyword error on the name itself; report the name.
  const names = errors.find((e) => e.keyword === 'propertyNames');
  const first = names ?? errors.find((e) => e.keyword !== 'if') ?? errors[0];
  if (first === undefined) throw new ConfigError('', 'does not match the config schema');
  throw configErrorOf(first);
}
