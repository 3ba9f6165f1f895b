/**
 * Per-connection security state: the frame-rate limit and token refresh of one open connection.
 *
 * @module
 */
import type { AuthFailureReason, Authenticator, ExpiryWatch, Principal } from './auth.js';
import { watchExpiry } from './auth.js';

/** What {@link ConnectionGuard.admitFrame} decides for one client frame. */
export type FrameVerdict =
  /** Handle the frame. */
  | 'ok'
  /** Drop it and answer `ERROR RATE_LIMITED`. */
  | 'drop'
  /** Drop it and close the connection with `CloseCode.RateLimited` (4429): the client kept flooding. */
  | 'close';

/** Result of {@link ConnectionGuard.refresh}. Failures are answered `ERROR BAD_TOKEN`; the old token stays. */
export type RefreshResult =
  | {
      readonly ok: true;
      readonly principal: Principal;
      /** Subscribed topics the new token no longer allows (when asked, see `refresh`): unsubscribe them. */
      readonly lost: readonly string[];
    }
  | {
      readonly ok: false;
      readonly reason:
        | AuthFailureReason
        /** Auth is off on this server. */
        | 'auth-off'
        /** The new token names another `sub` than the connection's. */
        | 'subject-changed'
        /** A later refresh overtook this one, or the connection closed meanwhile. */
        | 'superseded';
    };

/** Options of {@link ConnectionGuard}. */
export interface ConnectionGuardOptions {
  /** From the upgrade ({@link Admission}); {@link ANONYMOUS} when auth is off. */
  principal: Principal;
  /** Verifies `refresh` tokens; absent when auth is off. */
  authenticator?: Authenticator;
  /** The connection's frame-rate limiter; absent: no rate limit. */
  rateLimiter?: { take(): boolean; readonly shouldClose: boolean };
  /** Called once when the token expires (plus the authenticator's clock tolerance) without a refresh. */
  onExpired: () => void;
  /** Let a refresh change the subject (`sub`). Default `false`: a connection keeps its identity. */
  allowSubjectChange?: boolean;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
}

/**
 * The security state of one connection in one object: who it is, what it may subscribe to, its frame-rate budget,
 * its token's expiry and refresh. Create it when the connection opens, call {@link dispose} from its teardown.
 */
export class ConnectionGuard {
  #principal: Principal;
  readonly #authenticator: Authenticator | undefined;
  readonly #limiter: ConnectionGuardOptions['rateLimiter'];
  readonly #expiry: ExpiryWatch;
  readonly #allowSubjectChange: boolean;
  #generation = 0;
  #disposed = false;

  constructor(options: ConnectionGuardOptions) {
    this.#principal = options.principal;
    this.#authenticator = options.authenticator;
    this.#limiter = options.rateLimiter;
    this.#allowSubjectChange = options.allowSubjectChange ?? false;
    this.#expiry = watchExpiry(
      options.principal.expiresAt,
      () => {
        if (!this.#disposed) options.onExpired();
      },
      { graceMs: options.authenticator?.clockToleranceMs ?? 0, now: options.now ?? Date.now },
    );
  }

  /** The connection's current principal (replaced by a successful refresh). */
  get principal(): Principal {
    return this.#principal;
  }

  /** Call for every client frame, before parsing it. */
  admitFrame(): FrameVerdict {
    if (this.#limiter === undefined) return 'ok';
    if (this.#limiter.shouldClose) return 'close'; // sticky, even if the bucket refilled meanwhile
    if (this.#limiter.take()) return 'ok';
    return this.#limiter.shouldClose ? 'close' : 'drop';
  }

  /** Whether the connection may subscribe to `topic`. */
  allows(topic: string): boolean {
    return this.#principal.topics.allows(topic);
  }

  /** The topics of `topics` the connection may not subscribe to (for `ERROR FORBIDDEN`). */
  forbidden(topics: Iterable<string>): string[] {
    const out: string[] = [];
    for (const topic of topics) if (!this.#principal.topics.allows(topic)) out.push(topic);
    return out;
  }

  /**
   * Handles a `refresh` frame: verifies `token` and, if good, makes it the connection's principal and moves the
   * expiry. `subscribed` (the connection's current topics) is checked against the new permission: the ones it no
   * longer allows come back in `lost`. Never rejects. Only the latest of overlapping refreshes applies.
   */
  async refresh(token: string, subscribed: Iterable<string> = []): Promise<RefreshResult> {
    if (this.#authenticator === undefined) return { ok: false, reason: 'auth-off' };
    const generation = ++this.#generation;
    const result = await this.#authenticator.verifyToken(token);
    if (this.#disposed || generation !== this.#generation) return { ok: false, reason: 'superseded' };
    if (!result.ok) return { ok: false, reason: result.reason };
    const next = result.principal;
    if (!this.#allowSubjectChange && next.subject !== this.#principal.subject) {
      return { ok: false, reason: 'subject-changed' };
    }
    this.#principal = next;
    this.#expiry.reschedule(next.expiresAt);
    const lost: string[] = [];
    for (const topic of subscribed) if (!next.topics.allows(topic)) lost.push(topic);
    return { ok: true, principal: next, lost };
  }

  /** Stops the expiry timer; later refreshes resolve `superseded`. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#expiry.cancel();
  }
}
