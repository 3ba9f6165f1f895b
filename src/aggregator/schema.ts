/**
 * The aggregator's side of the entity schema: the defaults a reporter may leave out, then the topic's validator
 * from the topic registry (`src/protocol/topic-registry.ts`: the base rule and the topic's JSON Schema). Everything
 * a source or `POST /api/ingest` reports is `unknown` until the topic's validator accepts it; a failure names the
 * first bad field.
 *
 * @module
 */
import { aqiCategory } from '../protocol/topics.js';
import { stationAqi } from './aqi.js';
import { isRecord } from '../shared/json.js';
import type { ValidationResult } from '../protocol/state-model.js';
import type { TopicRegistry } from '../protocol/topic-registry.js';

/** What {@link withDefaults} fills in. */
export interface EntityDefaults {
  /** Name of the reporting source: the entity's `source` when it has none. */
  readonly source: string;
  /** Now (ms): the entity's `updatedAt` when it has none. */
  readonly now: number;
  /** The topic's id field (`TopicDefinition.idField`): a record without `id` takes `String(record[idField])`. */
  readonly idField?: string;
}

/**
 * Fills the fields a reporter may leave out before validation: `id` (from the topic's id field, when that holds a
 * string or a finite number), `source` (the reporting source's name), `updatedAt` (now) and, on `airQuality`, `aqi`
 * from `pm25`/`pm10` and `category` from `aqi`. Returns a new object; values that are not objects are returned
 * unchanged (the validator rejects them).
 */
export function withDefaults(topic: string, value: unknown, defaults: EntityDefaults): unknown {
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = { ...value };
  const idField = defaults.idField ?? 'id';
  if (out.id === undefined && idField !== 'id' && Object.hasOwn(out, idField)) {
    const key = out[idField];
    if (typeof key === 'string' || (typeof key === 'number' && Number.isFinite(key))) out.id = String(key);
  }
  if (out.source === undefined) out.source = defaults.source;
  if (out.updatedAt === undefined) out.updatedAt = new Date(defaults.now).toISOString();
  if (topic === 'airQuality') {
    if (out.aqi === undefined) {
      const computed = stationAqi({
        ...(typeof out.pm25 === 'number' ? { pm25: out.pm25 } : {}),
        ...(typeof out.pm10 === 'number' ? { pm10: out.pm10 } : {}),
      });
      if (computed !== null) out.aqi = computed.aqi;
    }
    if (out.category === undefined && typeof out.aqi === 'number' && Number.isFinite(out.aqi)) {
      out.category = aqiCategory(out.aqi);
    }
  }
  return out;
}

/**
 * Validates one entity of `topic` with the registry's validator, after {@link withDefaults} (the id field is the
 * topic definition's).
 */
export function validateEntity(
  registry: TopicRegistry,
  topic: string,
  value: unknown,
  defaults: Omit<EntityDefaults, 'idField'>,
): ValidationResult {
  const idField = registry.definition(topic)?.idField ?? 'id';
  return registry.validator(topic)(withDefaults(topic, value, { ...defaults, idField }));
}
