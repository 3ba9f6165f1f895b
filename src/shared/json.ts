/**
 * Small helpers for untrusted JSON values, shared by the schema, config, parsers and sources.
 *
 * @module
 */

/** Whether `value` is a plain JSON object (not `null`, not an array); the protocol layer's one definition. */
export { isRecord } from '../protocol/json-value.js';
