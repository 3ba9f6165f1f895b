/**
 * The shape test every reader of untrusted JSON starts with, once for the protocol, the server and the SDK
 * (`src/shared/json.ts` re-exports it for the layers above).
 *
 * @module
 */

/** Whether `value` is a plain JSON object (not `null`, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
