/**
 * Small helpers for untrusted JSON values, shared by the schema, config, parsers and sources.
 *
 * @module
 */

/** Whether `value` is a plain JSON object (not `null`, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
