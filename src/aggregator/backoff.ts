/**
 * Exponential backoff with jitter, for retrying failed fetches and connections.
 *
 * @module
 */

/** Backoff settings. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter (ms). Default 1000. */
  readonly initialMs?: number;
  /** Largest delay (ms). Default 300000 (5 minutes). */
  readonly maxMs?: number;
  /** Growth per failure. Default 2. */
  readonly multiplier?: number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): `initial * multiplier^(attempt-1)`, capped at `max`, then
 * "equal jitter" (a random point in the upper half), so many sources failing together do not retry in lockstep
 * yet never retry immediately. `random` returns numbers in [0, 1).
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const initial = Math.max(1, options.initialMs ?? 1000);
  const max = Math.max(initial, options.maxMs ?? 300_000);
  const multiplier = Math.max(1, options.multiplier ?? 2);
  const exponent = Math.max(0, Math.min(attempt - 1, 64));
  const base = Math.min(max, initial * multiplier ** exponent);
  return Math.round(base / 2 + random() * (base / 2));
}

/** The timer functions a poller uses, injectable so tests can observe the schedule. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process's own timers. */
export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
