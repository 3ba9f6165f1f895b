/**
 * Deadlines for the promises of the cluster store: one place that decides how a wait on Redis ends when Redis does
 * not answer (a frozen server keeps its TCP connection open, so nothing else would end it).
 *
 * @module
 */

/** The `code` of the error {@link withDeadline} rejects with. */
export const DEADLINE_EXCEEDED = 'ERR_DEADLINE_EXCEEDED';

/**
 * Settles like `promise`, or rejects with an Error whose `code` is {@link DEADLINE_EXCEEDED} once `ms` have passed.
 * The timer is cleared either way; a late settlement of `promise` is ignored (and never unhandled).
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: DEADLINE_EXCEEDED })),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Waits for `promise` to settle, for at most `ms`; never rejects. For good-byes at shutdown. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  await withDeadline(promise, ms, 'shutdown step').catch(() => {});
}

/**
 * Whether `error` says that Redis did not answer in time (ioredis' `commandTimeout`, or {@link withDeadline}), as
 * opposed to refusing (connection down, script error).
 */
export function isTimeout(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (error as { code?: unknown }).code === DEADLINE_EXCEEDED || error.message === 'Command timed out';
}
