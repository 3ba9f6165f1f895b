/**
 * Constant-time comparison of publish API keys (`--publish-key`).
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Whether `given` equals one of `keys`, in time independent of where they differ: both sides are hashed to
 * equal-length SHA-256 digests and compared with `crypto.timingSafeEqual`, and every key is compared (no early
 * exit), so neither the content nor the position of a match leaks. Empty `given` or `keys` never match, and
 * empty keys in the list are ignored.
 */
export function safeEqualKey(given: string | undefined, keys: readonly string[]): boolean {
  if (given === undefined || given === '') return false;
  const givenDigest = digest(given);
  let match = false;
  for (const key of keys) {
    if (key === '') continue;
    match = timingSafeEqual(givenDigest, digest(key)) || match;
  }
  return match;
}
