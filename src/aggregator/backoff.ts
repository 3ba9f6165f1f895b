/**
 * Exponential backoff with jitter, for retrying failed fetches and connections.
 *
 * @module
 */
import { backoffCeiling, resolveBackoff } from '../shared/backoff.js';

/** Backoff settings (the client SDK's, every field optional; defaults below). */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter (ms). Default 1000. */
  readonly initialMs?: number;
  /** Largest delay (ms). Default 300000 (5 minutes). */
  readonly maxMs?: number;
  /** Growth per failure. Default 2. */
  readonly factor?: number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): the client SDK's window `min(max, initial *
 * factor^(attempt-1))`, with "equal jitter" (a random point in its upper half) rather than the SDK's full jitter: a
 * fleet of pollers failing together still spreads out, but no poller ever retries a failing feed immediately.
 * `random` returns numbers in [0, 1).
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const initialMs = Math.max(1, options.initialMs ?? 1000);
  const resolved = resolveBackoff({
    initialMs,
    maxMs: Math.max(initialMs, options.maxMs ?? 300_000),
    factor: Math.max(1, options.factor ?? 2),
  });
  const ceiling = backoffCeiling(Math.min(attempt - 1, 64), resolved);
  return Math.round(ceiling / 2 + Math.min(1, Math.max(0, random())) * (ceiling / 2));
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
