/**
 * The aggregator's side of the entity schema: the defaults a reporter may leave out, then the topic's validator
 * from the protocol layer (`src/protocol/state-model.ts`, re-exported here). Everything a source or
 * `POST /api/ingest` reports is `unknown` until the topic's validator accepts it; a failure names the first bad
 * field.
 *
 * @module
 */
import { aqiCategory } from '../protocol/topics.js';
import { stationAqi } from './aqi.js';
import { isRecord } from '../shared/json.js';
import { validatorFor, type ValidationResult } from '../protocol/state-model.js';

// The per-topic validity is the protocol layer's (one rule for every implementation); the aggregator adds defaults.
export {
  MAX_ID_LENGTH,
  MAX_TEXT_LENGTH,
  validateAccident,
  validateAirQuality,
  validateCamera,
  validateGeneric,
  validateWeather,
  validatorFor,
  type EntityValidator,
  type ValidationResult,
} from '../protocol/state-model.js';

/**
 * Fills the fields a reporter may leave out before validation: `source` (the reporting source's name),
 * `updatedAt` (now) and, on `airQuality`, `aqi` from `pm25`/`pm10` and `category` from `aqi`. Returns a new object;
 * values that are not objects are returned unchanged (the validator rejects them).
 */
export function withDefaults(
  topic: string,
  value: unknown,
  defaults: { source: string; now: number },
): unknown {
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = { ...value };
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

/** Validates one entity of `topic` after {@link withDefaults}. */
export function validateEntity(
  topic: string,
  value: unknown,
  defaults: { source: string; now: number },
): ValidationResult {
  return validatorFor(topic)(withDefaults(topic, value, defaults));
}
