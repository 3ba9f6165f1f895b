/**
 * JSON Schema fragments the catalog's topic schemas share: text of the protocol's length, a date-time by the base
 * rule's format, a WGS-84 location, bounded numbers. The bounds themselves are the state model's
 * (`MAX_TEXT_LENGTH`), so a catalog schema and the base rule never disagree.
 *
 * @module
 */
import { MAX_TEXT_LENGTH } from '../state-model.js';
import type { JsonSchema } from '../topic-definition.js';

/** Non-empty text of at most `MAX_TEXT_LENGTH` characters. */
export const TEXT: JsonSchema = { type: 'string', minLength: 1, maxLength: MAX_TEXT_LENGTH };

/**
 * An ISO-8601 date-time by the protocol's rule (`isIsoDateTime` in `state-model.ts`), registered in every topic
 * registry as the format `iso-date-time`.
 */
export const DATE_TIME: JsonSchema = { type: 'string', format: 'iso-date-time' };

/** A number in `min..max` (finite: the registry refuses NaN and Infinity). */
export function range(min: number, max?: number): JsonSchema {
  return max === undefined
    ? { type: 'number', minimum: min }
    : { type: 'number', minimum: min, maximum: max };
}

/** An integer in `min..max`. */
export function integer(min?: number, max?: number): JsonSchema {
  return {
    type: 'integer',
    ...(min === undefined ? {} : { minimum: min }),
    ...(max === undefined ? {} : { maximum: max }),
  };
}

/** A WGS-84 position `{lat, lon}` (other keys allowed). */
export const LOCATION: JsonSchema = {
  type: 'object',
  required: ['lat', 'lon'],
  properties: { lat: range(-90, 90), lon: range(-180, 180) },
};
