/**
 * The `topics` section of the config file: topics defined in config alone, and catalog topics (`transit`,
 * `bikes`, the four city topics) listed to serve or tune them. The structure is checked by
 * `citypulse.schema.json` first; this module adds what a schema cannot say: a name outside the catalog needs a
 * full definition (`schema`), a catalog name takes overrides only, rule names are unique, and the defaults. The
 * result must pass the topic registry's own checks (`src/protocol/topic-registry.ts`: the entity schema within
 * the JSON bounds, compiled in strict mode, no remote `$ref`, bounded `pattern`s).
 *
 * @module
 */
import type {
  DisplayField,
  JsonSchema,
  ThresholdRule,
  TopicDefinition,
  TopicDisplay,
} from '../protocol/topic-definition.js';
import { TopicRegistryError, createTopicRegistry } from '../protocol/topic-registry.js';
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

/** Keys a catalog topic may override. */
const CATALOG_OVERRIDES = ['ttlMs', 'display', 'alerts', 'idField'] as const;

/** Base fields every entity has; not listed as default display fields. */
const BASE_FIELDS = new Set(['id', 'updatedAt', 'source']);

/**
 * Checks a config-defined topic with the topic registry's own rules (one source of truth: bounded schema, only
 * local `$ref`s, bounded `pattern`s, strict compile). Throws {@link ConfigError} at `topics.<name>.<path>`.
 */
export function checkTopicDefinition(definition: TopicDefinition, path: string): void {
  try {
    createTopicRegistry([definition]);
  } catch (error) {
    if (!(error instanceof TopicRegistryError)) throw error;
    const prefix = `topic ${JSON.stringify(error.topic)}${error.path === '' ? '' : ` ${error.path}`}: `;
    const reason = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
    throw new ConfigError(error.path === '' ? path : `${path}.${error.path}`, reason.slice(0, 300));
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
    const properties = isRecord(schema.properties) ? schema.properties : {};
    const locationField =
      entry.locationField === null || typeof entry.locationField === 'string'
        ? entry.locationField
        : Object.prototype.hasOwnProperty.call(properties, 'location')
          ? 'location'
          : null;
    const color = TOPIC_PALETTE[paletteIndex % TOPIC_PALETTE.length] as string;
    paletteIndex += 1;
    const definition: TopicDefinition = {
      name,
      idField: typeof entry.idField === 'string' ? entry.idField : 'id',
      locationField,
      display: displayOf(entry.display, { label: name, color, fields: defaultFields(schema) }),
      schema,
      ttlMs: typeof entry.ttlMs === 'number' ? entry.ttlMs : CONFIG_TOPIC_TTL_MS,
      alerts: rulesOf(entry.alerts, `${path}.alerts`) ?? [],
    };
    checkTopicDefinition(definition, path);
    return definition;
  });
}
