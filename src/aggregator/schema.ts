/**
 * The entity schema of each city topic, as runtime validators. Everything a source or `POST /api/ingest` reports
 * is `unknown` until the topic's validator accepts it; a failure names the first bad field.
 *
 * The TypeScript types are in `src/protocol/topics.ts`; `docs/sources.md` is the prose. Entities may carry extra fields
 * (they are delivered as they are), but every documented field must be valid.
 *
 * @module
 */
import { AQI_CATEGORIES, aqiCategory } from '../protocol/topics.js';
import type { AqiCategory, EntityBase } from '../protocol/topics.js';
import { stationAqi } from './aqi.js';
import { isRecord } from '../shared/json.js';
import { checkJsonBounds } from '../protocol/json-bounds.js';

/** Outcome of validating one entity. `field` is a dotted path such as `location.lat`. */
export type ValidationResult =
  | { readonly ok: true; readonly entity: EntityBase }
  | { readonly ok: false; readonly field: string; readonly error: string };

/** A validator for one topic's entities. */
export type EntityValidator = (value: unknown) => ValidationResult;

/** Longest entity id accepted. */
export const MAX_ID_LENGTH = 256;
/** Longest free-text field (names, descriptions) accepted. */
export const MAX_TEXT_LENGTH = 2000;

const CAMERA_STATUSES = ['online', 'offline', 'unknown'] as const;

/** Thrown inside a validator to report the first bad field; caught by {@link check}. */
class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

type Fields = Record<string, unknown>;

function text(obj: Fields, field: string, optional = false): void {
  const value = obj[field];
  if (value === undefined && optional) return;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT_LENGTH) {
    throw new FieldError(field, `must be a non-empty string of at most ${MAX_TEXT_LENGTH} characters`);
  }
}

function isoTime(obj: Fields, field: string): void {
  const value = obj[field];
  if (
    typeof value !== 'string' ||
    value.length > 64 ||
    !/^\d{4}-\d\d-\d\dT/.test(value) ||
    Number.isNaN(Date.parse(value))
  ) {
    throw new FieldError(field, 'must be an ISO-8601 date-time string');
  }
}

function num(
  obj: Fields,
  field: string,
  min: number,
  max: number,
  options: { optional?: boolean; integer?: boolean } = {},
): void {
  const value = obj[field];
  if (value === undefined && options.optional === true) return;
  const integer = options.integer === true;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    throw new FieldError(field, `must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}`);
  }
}

function location(obj: Fields): void {
  const value = obj.location;
  if (!isRecord(value)) throw new FieldError('location', 'must be an object {lat, lon}');
  try {
    num(value, 'lat', -90, 90);
    num(value, 'lon', -180, 180);
  } catch (error) {
    if (error instanceof FieldError) throw new FieldError(`location.${error.field}`, error.message);
    throw error;
  }
}

function base(value: unknown): Fields {
  if (!isRecord(value)) throw new FieldError('', 'an entity must be a JSON object');
  const id = value.id;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw new FieldError('id', `must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);
  }
  isoTime(value, 'updatedAt');
  text(value, 'source');
  return value;
}

function check(value: unknown, body: (obj: Fields) => void): ValidationResult {
  // The JSON bounds first: an entity is stored and then encoded into every snapshot (extra fields included).
  const violation = checkJsonBounds(value);
  if (violation !== null) return { ok: false, field: '', error: `${violation.code}: ${violation.message}` };
  try {
    const obj = base(value);
    body(obj);
    return { ok: true, entity: obj as unknown as EntityBase };
  } catch (error) {
    if (error instanceof FieldError) return { ok: false, field: error.field, error: error.message };
    throw error;
  }
}

/** `cameras`: see {@link import('../protocol/topics.js').Camera}. */
export const validateCamera: EntityValidator = (value) =>
  check(value, (obj) => {
    text(obj, 'name');
    location(obj);
    if (!CAMERA_STATUSES.includes(obj.status as (typeof CAMERA_STATUSES)[number])) {
      throw new FieldError('status', `must be one of ${CAMERA_STATUSES.join(', ')}`);
    }
    if (obj.imageUrl !== undefined) {
      if (
        typeof obj.imageUrl !== 'string' ||
        !/^https?:\/\/[^\s]+$/i.test(obj.imageUrl) ||
        obj.imageUrl.length > MAX_TEXT_LENGTH
      ) {
        throw new FieldError('imageUrl', 'must be an http(s) URL');
      }
    }
    text(obj, 'area', true);
  });

/** `weather`: see {@link import('../protocol/topics.js').WeatherReading}. */
export const validateWeather: EntityValidator = (value) =>
  check(value, (obj) => {
    text(obj, 'name');
    location(obj);
    num(obj, 'temperatureC', -100, 70);
    num(obj, 'humidityPct', 0, 100, { optional: true });
    num(obj, 'windSpeedKmh', 0, 500, { optional: true });
    num(obj, 'windDirectionDeg', 0, 360, { optional: true });
    num(obj, 'precipitationMm', 0, 1000, { optional: true });
    text(obj, 'condition');
    num(obj, 'weatherCode', 0, 99, { optional: true, integer: true });
  });

/** `accidents`: see {@link import('../protocol/topics.js').Accident}. */
export const validateAccident: EntityValidator = (value) =>
  check(value, (obj) => {
    location(obj);
    num(obj, 'severity', 1, 5, { integer: true });
    text(obj, 'description');
    text(obj, 'kind');
    text(obj, 'roadName', true);
    num(obj, 'lanesBlocked', 0, 64, { optional: true, integer: true });
    isoTime(obj, 'reportedAt');
  });

/** `airQuality`: see {@link import('../protocol/topics.js').AirQualityStation}. The category must match the AQI. */
export const validateAirQuality: EntityValidator = (value) =>
  check(value, (obj) => {
    text(obj, 'name');
    location(obj);
    num(obj, 'aqi', 0, 500);
    if (!AQI_CATEGORIES.includes(obj.category as AqiCategory)) {
      throw new FieldError('category', `must be one of ${AQI_CATEGORIES.join(', ')}`);
    }
    if (obj.category !== aqiCategory(obj.aqi as number)) {
      throw new FieldError(
        'category',
        `must be "${aqiCategory(obj.aqi as number)}" for aqi ${String(obj.aqi)}`,
      );
    }
    for (const field of ['pm25', 'pm10', 'no2', 'o3']) num(obj, field, 0, 10_000, { optional: true });
  });

/** Topics other than the four city topics: any object with the base fields (`id`, `updatedAt`, `source`). */
export const validateGeneric: EntityValidator = (value) => check(value, () => {});

const VALIDATORS: Readonly<Record<string, EntityValidator>> = {
  cameras: validateCamera,
  weather: validateWeather,
  accidents: validateAccident,
  airQuality: validateAirQuality,
};

/** The validator of `topic` (the generic one for topics outside the four city topics). */
export function validatorFor(topic: string): EntityValidator {
  return Object.prototype.hasOwnProperty.call(VALIDATORS, topic)
    ? (VALIDATORS[topic] as EntityValidator)
    : validateGeneric;
}

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
  const out: Fields = { ...value };
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
