/**
 * The state model of a topic, once for every implementation (the aggregator, the cluster's Redis state, the client
 * SDK's `TopicStore`, the dashboard): what identifies an entity, the base rule every entity of every topic passes
 * (each topic's own schema is the topic registry's, `src/protocol/topic-registry.ts`), what a valid UPDATE is, and
 * how an UPDATE changes a topic's state.
 *
 * A topic's state is a set of entities keyed by `id` (the order of entities in a snapshot carries no meaning). An
 * UPDATE's `data` is a change `{ upserts, removes }`:
 * - **all or nothing**: every upsert must be a valid entity of the topic (the base rule {@link validateBase}, then
 *   the topic's schema, both checked by the validator the topic registry compiles) and every remove a valid id, or
 *   the whole UPDATE is refused (`parseUpdate` names the first bad field; nothing is applied, no `seq` taken);
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
import type { EntityBase, EntityChange } from './topics.js';
import { checkJsonBounds } from './json-bounds.js';
import { isRecord } from './json-value.js';

/** Outcome of validating one entity. `field` is a dotted path such as `location.lat`. */
export type ValidationResult =
  | { readonly ok: true; readonly entity: EntityBase }
  | { readonly ok: false; readonly field: string; readonly error: string };

/** A validator for one topic's entities (the topic registry compiles one per topic: `TopicRegistry.validator`). */
export type EntityValidator = (value: unknown) => ValidationResult;

/** Longest entity id accepted. */
export const MAX_ID_LENGTH = 256;
/** Longest free-text field (names, descriptions, `source`) accepted. */
export const MAX_TEXT_LENGTH = 2000;
/** Longest ISO-8601 date-time string accepted. */
export const MAX_DATE_TIME_LENGTH = 64;

/**
 * Whether `value` is an ISO-8601 date-time as entities carry them (`updatedAt`, `reportedAt`...): at most
 * {@link MAX_DATE_TIME_LENGTH} characters, starting `YYYY-MM-DDT`, and a time `Date.parse` reads. Topic schemas name
 * this rule as the format `iso-date-time`.
 */
export function isIsoDateTime(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length <= MAX_DATE_TIME_LENGTH &&
    /^\d{4}-\d\d-\d\dT/.test(value) &&
    !Number.isNaN(Date.parse(value))
  );
}

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_TEXT_LENGTH;
}

/**
 * The base rule every entity of every topic passes before its topic's schema: a JSON value within the JSON bounds
 * (checked first: an entity is stored and then encoded into every snapshot, extra fields included), an object, an
 * `id` ({@link isEntityId}), an `updatedAt` ({@link isIsoDateTime}) and a `source` (non-empty text of at most
 * {@link MAX_TEXT_LENGTH} characters). It is the whole rule of a topic without a schema, and what the client SDK
 * folds with (the server has already checked the topic's schema).
 */
export const validateBase: EntityValidator = (value) => {
  const violation = checkJsonBounds(value);
  if (violation !== null) return { ok: false, field: '', error: `${violation.code}: ${violation.message}` };
  if (!isRecord(value)) return { ok: false, field: '', error: 'an entity must be a JSON object' };
  if (!isEntityId(value.id)) {
    return {
      ok: false,
      field: 'id',
      error: `must be a non-empty string of at most ${MAX_ID_LENGTH} characters`,
    };
  }
  if (!isIsoDateTime(value.updatedAt)) {
    return { ok: false, field: 'updatedAt', error: 'must be an ISO-8601 date-time string' };
  }
  if (!isText(value.source)) {
    return {
      ok: false,
      field: 'source',
      error: `must be a non-empty string of at most ${MAX_TEXT_LENGTH} characters`,
    };
  }
  return { ok: true, entity: value as unknown as EntityBase };
};

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
 * `data` must be an object with `upserts` (array of entities, each accepted by `validate`: the topic's validator
 * from the topic registry, or {@link validateBase}) and/or `removes` (array of ids) and no other key.
 */
export function parseUpdate(_topic: string, data: unknown, validate: EntityValidator): ChangeResult {
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
 * Folds one UPDATE's raw `data` into a copy of `entities`: a valid change (by {@link parseUpdate} with `validate`)
 * is applied, anything else (an invalid or opaque `data`) leaves the state as it was. Returns the new map, or the
 * same one when nothing applied.
 */
export function foldUpdate(
  topic: string,
  entities: ReadonlyMap<string, EntityBase>,
  data: unknown,
  validate: EntityValidator,
): ReadonlyMap<string, EntityBase> {
  const parsed = parseUpdate(topic, data, validate);
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
