/**
 * The `topics` section of the config file: topics defined in config alone, and catalog topics (`transit`,
 * `bikes`, the four city topics) listed to serve or tune them. The structure is checked by
 * `citypulse.schema.json` first; this module adds what a schema cannot say: a name outside the catalog needs a
 * full definition (`schema`), a catalog name takes overrides only, the entity schema must compile (no remote
 * `$ref`, bounded `pattern`s), rule names are unique, and it fills the defaults.
 *
 * @module
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FormatsPlugin } from 'ajv-formats';
import { checkJsonBounds, resolveJsonBounds } from '../protocol/json-bounds.js';
import type {
  DisplayField,
  JsonSchema,
  ThresholdRule,
  TopicDefinition,
  TopicDisplay,
} from '../protocol/topic-definition.js';
import { isRecord } from '../shared/json.js';
import { ConfigError } from './config-reader.js';

/** Default TTL of a config-defined topic (ms): 30 minutes. */
export const CONFIG_TOPIC_TTL_MS = 30 * 60_000;

/** Colours given, in order, to config-defined topics without `display.color`. */
export const TOPIC_PALETTE: readonly string[] = [
  '#9b51e0',
  '#f2994a',
  '#2d9cdb',
  '#219653',
  '#bb6bd9',
  '#f2c94c',
  '#56ccf2',
  '#eb5757',
];

/** Most fields a default `display.fields` lists (the first scalar properties of the schema). */
export const DEFAULT_DISPLAY_FIELDS = 4;

/** Longest `pattern` (or `patternProperties` key) an entity schema may hold. */
export const MAX_SCHEMA_PATTERN_LENGTH = 256;

/** Bounds of one entity schema, tighter than those of the whole config: ajv generates code per node. */
const SCHEMA_BOUNDS = resolveJsonBounds({ maxDepth: 32, maxNodes: 5_000, maxSize: 256 * 1024 });

/** Keys a catalog topic may override. */
const CATALOG_OVERRIDES = ['ttlMs', 'display', 'alerts', 'idField'] as const;

/** Base fields every entity has; not listed as default display fields. */
const BASE_FIELDS = new Set(['id', 'updatedAt', 'source']);

const addFormats = addFormatsModule as unknown as FormatsPlugin;

/** Walks a schema (iteratively; it is within the bounds already) and refuses remote refs and long patterns. */
function checkSchemaKeywords(schema: JsonSchema, path: string): void {
  const stack: { value: unknown; path: string }[] = [{ value: schema, path }];
  while (stack.length > 0) {
    const { value, path: at } = stack.pop() as { value: unknown; path: string };
    if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push({ value: v, path: `${at}[${i}]` }));
      continue;
    }
    if (!isRecord(value)) continue;
    for (const [key, v] of Object.entries(value)) {
      const here = `${at}.${key}`;
      if ((key === '$ref' || key === '$dynamicRef') && typeof v === 'string' && !v.startsWith('#'))
        throw new ConfigError(
          here,
          `only local references ("#/...") are allowed, not ${JSON.stringify(v.slice(0, 80))}`,
        );
      if (key === 'pattern' && typeof v === 'string' && v.length > MAX_SCHEMA_PATTERN_LENGTH)
        throw new ConfigError(here, `longer than ${MAX_SCHEMA_PATTERN_LENGTH} characters`);
      if (key === 'patternProperties' && isRecord(v)) {
        const long = Object.keys(v).find((p) => p.length > MAX_SCHEMA_PATTERN_LENGTH);
        if (long !== undefined)
          throw new ConfigError(here, `a pattern is longer than ${MAX_SCHEMA_PATTERN_LENGTH} characters`);
      }
      stack.push({ value: v, path: here });
    }
  }
}

/**
 * Checks that an entity schema is bounded and compiles. Throws {@link ConfigError} at `path`
 * (`topics.parking.schema: ...`).
 */
export function checkEntitySchema(schema: JsonSchema, path: string): void {
  const violation = checkJsonBounds(schema, SCHEMA_BOUNDS);
  if (violation !== null) throw new ConfigError(path, `refused (${violation.code}): ${violation.message}`);
  checkSchemaKeywords(schema, path);
  try {
    const ajv = new Ajv2020({ allErrors: false, strict: true, allowUnionTypes: true });
    addFormats(ajv);
    ajv.compile(schema);
  } catch (error) {
    throw new ConfigError(path, `not a valid JSON Schema: ${(error as Error).message.slice(0, 300)}`);
  }
}

function scalarType(schema: unknown): boolean {
  if (!isRecord(schema)) return false;
  const type = schema.type;
  const scalar = (t: unknown): boolean =>
    t === 'string' || t === 'number' || t === 'integer' || t === 'boolean';
  if (Array.isArray(type)) return type.some(scalar);
  if (scalar(type)) return true;
  return Array.isArray(schema.enum) || schema.const !== undefined;
}

/** The first scalar properties of a schema (`display.fields` default). */
function defaultFields(schema: JsonSchema): DisplayField[] {
  const properties = isRecord(schema.properties) ? schema.properties : {};
  return Object.keys(properties)
    .filter((k) => !BASE_FIELDS.has(k) && scalarType(properties[k]))
    .slice(0, DEFAULT_DISPLAY_FIELDS)
    .map((field) => ({ field }));
}

function displayOf(value: unknown, fallback: TopicDisplay): TopicDisplay {
  if (!isRecord(value)) return fallback;
  const fields = Array.isArray(value.fields) ? (value.fields as DisplayField[]) : fallback.fields;
  return {
    label: typeof value.label === 'string' ? value.label : fallback.label,
    color: typeof value.color === 'string' ? value.color : fallback.color,
    ...(typeof value.icon === 'string'
      ? { icon: value.icon }
      : fallback.icon === undefined
        ? {}
        : { icon: fallback.icon }),
    fields: fields.map((f) => ({
      field: f.field,
      ...(f.label === undefined ? {} : { label: f.label }),
      ...(f.unit === undefined ? {} : { unit: f.unit }),
    })),
  };
}

function rulesOf(value: unknown, path: string): ThresholdRule[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const seen = new Set<string>();
  return value.map((raw, i) => {
    const rule = raw as ThresholdRule;
    if (seen.has(rule.name))
      throw new ConfigError(`${path}[${i}].name`, `duplicate rule name "${rule.name}" in this topic`);
    seen.add(rule.name);
    return {
      name: rule.name,
      field: rule.field,
      op: rule.op,
      value: rule.value,
      severity: rule.severity,
      message: rule.message,
    };
  });
}

/**
 * Resolves the `topics` section (structure already checked against the schema) into full definitions, in the
 * order listed. `catalog` holds the built-in definitions a listed name may refer to.
 */
export function resolveConfigTopics(
  value: Readonly<Record<string, unknown>>,
  catalog: ReadonlyMap<string, TopicDefinition>,
): TopicDefinition[] {
  let paletteIndex = 0;
  return Object.keys(value).map((name) => {
    const path = `topics.${name}`;
    const entry = value[name];
    if (!isRecord(entry)) throw new ConfigError(path, 'must be an object');
    const builtin = catalog.get(name);
    if (builtin !== undefined) {
      for (const key of Object.keys(entry)) {
        if (!(CATALOG_OVERRIDES as readonly string[]).includes(key))
          throw new ConfigError(
            `${path}.${key}`,
            `"${name}" is a catalog topic: it takes overrides only (allowed: ${CATALOG_OVERRIDES.join(', ')})`,
          );
      }
      return {
        ...builtin,
        ...(typeof entry.idField === 'string' ? { idField: entry.idField } : {}),
        ...(typeof entry.ttlMs === 'number' ? { ttlMs: entry.ttlMs } : {}),
        display: displayOf(entry.display, builtin.display),
        alerts: rulesOf(entry.alerts, `${path}.alerts`) ?? builtin.alerts,
      };
    }
    if (!isRecord(entry.schema))
      throw new ConfigError(
        `${path}.schema`,
        `is required for a topic outside the catalog (catalog: ${[...catalog.keys()].join(', ')})`,
      );
    const schema: JsonSchema = entry.schema;
    checkEntitySchema(schema, `${path}.schema`);
    const properties = isRecord(schema.properties) ? schema.properties : {};
    const locationField =
      entry.locationField === null || typeof entry.locationField === 'string'
        ? entry.locationField
        : Object.prototype.hasOwnProperty.call(properties, 'location')
          ? 'location'
          : null;
    const color = TOPIC_PALETTE[paletteIndex % TOPIC_PALETTE.length] as string;
    paletteIndex += 1;
    return {
      name,
      idField: typeof entry.idField === 'string' ? entry.idField : 'id',
      locationField,
      display: displayOf(entry.display, { label: name, color, fields: defaultFields(schema) }),
      schema,
      ttlMs: typeof entry.ttlMs === 'number' ? entry.ttlMs : CONFIG_TOPIC_TTL_MS,
      alerts: rulesOf(entry.alerts, `${path}.alerts`) ?? [],
    };
  });
}
