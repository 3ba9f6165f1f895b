/**
 * The state model of a topic, once for every implementation (the aggregator, the cluster's Redis state, the client
 * SDK's `TopicStore`, the dashboard): what identifies an entity, what a valid entity of each topic is, what a valid
 * UPDATE is, and how an UPDATE changes a topic's state.
 *
 * A topic's state is a set of entities keyed by `id` (the order of entities in a snapshot carries no meaning). An
 * UPDATE's `data` is a change `{ upserts, removes }`:
 * - **all or nothing**: every upsert must be a valid entity of the topic (its schema below) and every remove a valid
 *   id, or the whole UPDATE is refused (`parseUpdate` names the first bad field; nothing is applied, no `seq` taken);
 * - **whole entities**: an upsert replaces the entity with that id; there are no partial upserts, so a bare
 *   `{ id: 'x' }` is valid only when it passes the topic's schema (for the city topics it does not);
 * - **duplicate ids** in `upserts`: the last one wins; duplicate `removes` count once;
 * - **upserts, then removes**: an id both upserted and removed in one UPDATE ends removed;
 * - **unknown removes** (ids not in the state) are valid and change nothing.
 * `parseUpdate` returns the change normalised by these rules (each id at most once, and never in both lists), so
 * every consumer applies it mechanically with `applyChange`.
 *
 * @module
 */
import { AQI_CATEGORIES, aqiCategory } from './topics.js';
import type { AqiCategory, EntityBase, EntityChange } from './topics.js';
import { checkJsonBounds } from './json-bounds.js';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

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

/** `cameras`: see {@link import('./topics.js').Camera}. */
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

/** `weather`: see {@link import('./topics.js').WeatherReading}. */
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

/** `accidents`: see {@link import('./topics.js').Accident}. */
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

/** `airQuality`: see {@link import('./topics.js').AirQualityStation}. The category must match the AQI. */
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

// ---------------------------------------------------------------------------------------------------------------
// Entity identity and the change of an UPDATE
// ---------------------------------------------------------------------------------------------------------------

/** Whether `value` is a valid entity id: a non-empty string of at most {@link MAX_ID_LENGTH} characters. */
export function isEntityId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}

/** Result of {@link parseUpdate}: the normalised change, or the first bad field (a path such as `upserts[2].id`). */
export type ChangeResult =
  | { readonly ok: true; readonly change: EntityChange }
  | { readonly ok: false; readonly field: string; readonly error: string };

/**
 * Whether an UPDATE's `data` claims to be an entity change: an object with an `upserts` or a `removes` key. Only the
 * library API may publish UPDATEs that are not (opaque messages, which change no state anywhere).
 */
export function isChangeShaped(data: unknown): boolean {
  return isRecord(data) && (Object.hasOwn(data, 'upserts') || Object.hasOwn(data, 'removes'));
}

/** The change with each id at most once: last upsert wins, removes applied after upserts. */
function normalise(upserts: readonly EntityBase[], removes: readonly string[]): EntityChange {
  const byId = new Map<string, EntityBase>();
  for (const entity of upserts) {
    byId.delete(entity.id); // the last one wins, and takes the last place
    byId.set(entity.id, entity);
  }
  const removed = new Set<string>();
  for (const id of removes) {
    byId.delete(id);
    removed.add(id);
  }
  return { upserts: [...byId.values()], removes: [...removed] };
}

/**
 * Validates an UPDATE's `data` as a change of `topic`'s state (see the module rules) and returns it normalised.
 * `data` must be an object with `upserts` (array of entities) and/or `removes` (array of ids) and no other key.
 */
export function parseUpdate(topic: string, data: unknown): ChangeResult {
  if (!isRecord(data)) return { ok: false, field: '', error: 'must be an object { upserts, removes }' };
  if (!isChangeShaped(data)) return { ok: false, field: '', error: 'must have "upserts" and/or "removes"' };
  for (const key of Object.keys(data)) {
    if (key !== 'upserts' && key !== 'removes') return { ok: false, field: key, error: 'unknown field' };
  }
  const rawUpserts = data.upserts ?? [];
  const rawRemoves = data.removes ?? [];
  if (!Array.isArray(rawUpserts))
    return { ok: false, field: 'upserts', error: 'must be an array of entities' };
  if (!Array.isArray(rawRemoves)) return { ok: false, field: 'removes', error: 'must be an array of ids' };
  const validate = validatorFor(topic);
  const upserts: EntityBase[] = [];
  for (const [i, raw] of rawUpserts.entries()) {
    const result = validate(raw);
    if (!result.ok) {
      return {
        ok: false,
        field: result.field === '' ? `upserts[${i}]` : `upserts[${i}].${result.field}`,
        error: result.error,
      };
    }
    upserts.push(result.entity);
  }
  for (const [i, id] of rawRemoves.entries()) {
    if (!isEntityId(id)) {
      return {
        ok: false,
        field: `removes[${i}]`,
        error: `must be a non-empty string of at most ${MAX_ID_LENGTH} characters`,
      };
    }
  }
  return { ok: true, change: normalise(upserts, rawRemoves as string[]) };
}

/**
 * Applies a change (as {@link parseUpdate} returns it) to a topic's entities in place: upserts replace, then removes
 * delete (unknown ids are ignored). The one fold every implementation uses.
 */
export function applyChange<E extends EntityBase>(entities: Map<string, E>, change: EntityChange<E>): void {
  for (const entity of change.upserts) entities.set(entity.id, entity);
  for (const id of change.removes) entities.delete(id);
}

/**
 * Folds one UPDATE's raw `data` into a copy of `entities`: a valid change is applied, anything else (an invalid or
 * opaque `data`) leaves the state as it was. Returns the new map, or the same one when nothing applied.
 */
export function foldUpdate(
  topic: string,
  entities: ReadonlyMap<string, EntityBase>,
  data: unknown,
): ReadonlyMap<string, EntityBase> {
  const parsed = parseUpdate(topic, data);
  if (!parsed.ok) return entities;
  const next = new Map(entities);
  applyChange(next, parsed.change);
  return next;
}

/** Thrown by the library's `publish` / `broadcastToTopic` for an UPDATE whose change-shaped `data` is invalid. */
export class UpdateRejectedError extends Error {
  /** Stable code, as the HTTP API answers it. */
  readonly code = 'BAD_UPDATE';
  constructor(
    /** Path of the first bad field inside `data` (`''`: `data` itself). */
    readonly field: string,
    /** What is wrong with it. */
    readonly reason: string,
  ) {
    super(`UPDATE refused: ${field === '' ? 'data' : `data.${field}`} ${reason}`);
    this.name = 'UpdateRejectedError';
  }
}
