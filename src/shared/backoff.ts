/**
 * Full-jitter exponential backoff: the delay before reconnect attempt `n` (0-based) is drawn uniformly from
 * `[0, min(maxMs, initialMs * factor^n))`. Spreading reconnects over the whole window keeps a fleet of clients
 * from stampeding a restarted server.
 *
 * @module
 */

/** Backoff settings. */
export interface BackoffOptions {
  /** Upper bound of the first delay window. Default 500 ms. */
  readonly initialMs: number;
  /** Cap of every delay window. Default 30 000 ms. */
  readonly maxMs: number;
  /** Growth of the window per failed attempt. Default 2. */
  readonly factor: number;
}

/** Defaults of {@link BackoffOptions}. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2 };

/** Fills unset fields with defaults and checks the values. Throws `RangeError` on nonsense. */
export function resolveBackoff(options: Partial<BackoffOptions> | undefined): BackoffOptions {
  const resolved: BackoffOptions = { ...DEFAULT_BACKOFF, ...options };
  const { initialMs, maxMs, factor } = resolved;
  if (!(Number.isFinite(initialMs) && initialMs >= 0)) throw new RangeError('backoff.initialMs must be >= 0');
  if (!(Number.isFinite(maxMs) && maxMs >= initialMs))
    throw new RangeError('backoff.maxMs must be >= initialMs');
  if (!(Number.isFinite(factor) && factor >= 1)) throw new RangeError('backoff.factor must be >= 1');
  return resolved;
}

/** Upper bound of the delay window of attempt `attempt` (0-based): `min(maxMs, initialMs * factor^attempt)`. */
export function backoffCeiling(attempt: number, options: BackoffOptions): number {
  // Math.pow overflows to Infinity for large attempts, and min() then caps it.
  return Math.min(options.maxMs, options.initialMs * Math.pow(options.factor, Math.max(0, attempt)));
}

/**
 * The delay before attempt `attempt` (0-based): `random() * ceiling`, floored to whole milliseconds.
 * `random` must return values in `[0, 1)` like `Math.random`; values outside are clamped.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const r = Math.min(1, Math.max(0, random()));
  return Math.floor(r * backoffCeiling(attempt, options));
}
