/**
 * Limits that keep one client (or one address) from taking the server down: a per-connection frame-rate token
 * bucket with a sustained-abuse detector, a connection counter in total and per IP, the client address behind a
 * trusted proxy, and a deadline for the asynchronous part of a handshake.
 *
 * Everything here is plain state driven by an injected clock; nothing holds a timer except {@link withDeadline},
 * which clears its own.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';

/** The defaults citypulse runs with; every one is configurable (see `docs/operations.md`). */
export const DEFAULT_LIMITS = Object.freeze({
  /** Client frames per second a connection may sustain (`--rate-limit`). */
  ratePerSec: 20,
  /**
   * Frames a connection may send at once (`--rate-burst`): a client catching up (a few subscribes, a resume, a burst
   * of pings) must not meet the limit.
   */
  burst: 100,
  /** Rejected frames within {@link DEFAULT_LIMITS.abuseWindowMs} that close the connection with 4429. */
  abuseRejections: 100,
  /** Window of the sustained-abuse detector. */
  abuseWindowMs: 10_000,
  /** Connections in total (`--max-connections`); beyond it the upgrade is answered 503. */
  maxConnections: 10_000,
  /**
   * Connections per client IP (`--max-connections-per-ip`); beyond it the upgrade is answered 429. High enough for a
   * large office behind one NAT or proxy; lower it when clients have their own addresses.
   */
  maxConnectionsPerIp: 1_000,
  /** Milliseconds the server waits for the asynchronous part of a handshake (token verification). */
  handshakeTimeoutMs: 5_000,
  /**
   * TCP connections that have not (yet) become WebSockets, in total (`--max-pending-connections`): plain HTTP
   * requests, keep-alive sockets and sockets that never send a request. Beyond it a new socket is answered 503.
   */
  maxPendingConnections: 1_024,
  /** The same per client address (`--max-pending-per-ip`); beyond it a new socket is answered 429. */
  maxPendingPerIp: 256,
  /** Milliseconds a connection has to send a complete request head (`--headers-timeout`); then 408 and closed. */
  headersTimeoutMs: 5_000,
  /** Milliseconds a whole HTTP request (head and body) may take (`--request-timeout`); then 408 and closed. */
  requestTimeoutMs: 15_000,
  /** Milliseconds a request body may go without a byte before it is answered 408 and the connection closed. */
  bodyIdleTimeoutMs: 5_000,
});

function assertPositive(name: string, value: number, allowInfinity = false): void {
  const ok = allowInfinity ? value > 0 && !Number.isNaN(value) : value > 0 && Number.isFinite(value);
  if (!ok) throw new RangeError(`${name} must be a positive number, got ${String(value)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Per-connection frame rate
// ---------------------------------------------------------------------------------------------------------------

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Tokens added per second: the sustained frame rate. Default {@link DEFAULT_LIMITS.ratePerSec}. */
  ratePerSec?: number;
  /** Bucket size: how many frames may come at once. The bucket starts full. Default {@link DEFAULT_LIMITS.burst}. */
  burst?: number;
  /**
   * Rejections within `abuseWindowMs` after which {@link RateLimiter.shouldClose} turns (and stays) `true`.
   * Default {@link DEFAULT_LIMITS.abuseRejections}. `Infinity` never closes.
   */
  abuseRejections?: number;
  /** Window of the abuse detector, ms. Default {@link DEFAULT_LIMITS.abuseWindowMs}. */
  abuseWindowMs?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
}

/**
 * A token bucket for one connection's incoming frames, with a sustained-abuse detector.
 *
 * Call {@link take} for every frame: `false` means drop the frame and answer `ERROR RATE_LIMITED`; then check
 * {@link shouldClose}: `true` means the client kept flooding (`abuseRejections` drops within one `abuseWindowMs`
 * window) and the connection should be closed with `CloseCode.RateLimited` (4429). The window is a fixed one
 * that starts at the first rejection after the previous window ended.
 *
 * O(1) time and memory per frame; no timers.
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #abuseRejections: number;
  readonly #abuseWindowMs: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #rejectionsInWindow = 0;
  #rejectedTotal = 0;
  #abusive = false;

  constructor(options: RateLimiterOptions = {}) {
    this.#rate = (options.ratePerSec ?? DEFAULT_LIMITS.ratePerSec) / 1000;
    this.#burst = options.burst ?? DEFAULT_LIMITS.burst;
    this.#abuseRejections = options.abuseRejections ?? DEFAULT_LIMITS.abuseRejections;
    this.#abuseWindowMs = options.abuseWindowMs ?? DEFAULT_LIMITS.abuseWindowMs;
    this.#now = options.now ?? Date.now;
    assertPositive('ratePerSec', this.#rate);
    assertPositive('burst', this.#burst);
    assertPositive('abuseRejections', this.#abuseRejections, true);
    assertPositive('abuseWindowMs', this.#abuseWindowMs);
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }

  /** Takes `cost` tokens (default 1). `true`: let the frame through; `false`: drop it (counted as a rejection). */
  take(cost = 1): boolean {
    const now = this.#now();
    const elapsed = now - this.#last;
    // A clock that goes backwards adds nothing (and does not take either).
    if (elapsed > 0) {
      this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#rate);
      this.#last = now;
    }
    if (this.#tokens >= cost) {
      this.#tokens -= cost;
      return true;
    }
    this.#rejectedTotal += 1;
    if (now - this.#windowStart >= this.#abuseWindowMs) {
      this.#windowStart = now;
      this.#rejectionsInWindow = 0;
    }
    this.#rejectionsInWindow += 1;
    if (this.#rejectionsInWindow >= this.#abuseRejections) this.#abusive = true;
    return false;
  }

  /** `true` once the client sustained its flood (sticky): close with `CloseCode.RateLimited`. */
  get shouldClose(): boolean {
    return this.#abusive;
  }

  /** Frames rejected over the limiter's life. */
  get rejected(): number {
    return this.#rejectedTotal;
  }

  /** Tokens left at the last {@link take} (not refilled by reading). */
  get tokens(): number {
    return this.#tokens;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Connections in total and per IP
// ---------------------------------------------------------------------------------------------------------------

/** Options of {@link ConnectionLimiter}. `Infinity` disables a bound. */
export interface ConnectionLimiterOptions {
  /** Default {@link DEFAULT_LIMITS.maxConnections}. */
  maxTotal?: number;
  /** Default {@link DEFAULT_LIMITS.maxConnectionsPerIp}. */
  maxPerIp?: number;
}

/**
 * Result of {@link ConnectionLimiter.tryAcquire}. `ok` carries the `release` of this one connection: call it when
 * the connection ends (or the handshake fails); calling it again does nothing, so it is safe from every teardown
 * path. `total` should be answered 503, `per-ip` 429.
 */
export type ConnectionLease =
  | { readonly status: 'ok'; readonly release: () => void }
  | { readonly status: 'total' }
  | { readonly status: 'per-ip' };

/**
 * Counts open (and opening) connections, in total and per client address. Acquire at the start of the upgrade
 * (before any asynchronous check, so pending handshakes count too), release when the socket closes.
 */
export class ConnectionLimiter {
  readonly #maxTotal: number;
  readonly #maxPerIp: number;
  readonly #perIp = new Map<string, number>();
  #total = 0;

  constructor(options: ConnectionLimiterOptions = {}) {
    this.#maxTotal = options.maxTotal ?? DEFAULT_LIMITS.maxConnections;
    this.#maxPerIp = options.maxPerIp ?? DEFAULT_LIMITS.maxConnectionsPerIp;
    assertPositive('maxTotal', this.#maxTotal, true);
    assertPositive('maxPerIp', this.#maxPerIp, true);
  }

  /** Counts one more connection from `ip`, unless that would exceed a bound (nothing is counted then). */
  tryAcquire(ip: string): ConnectionLease {
    if (this.#total >= this.#maxTotal) return { status: 'total' };
    const current = this.#perIp.get(ip) ?? 0;
    if (current >= this.#maxPerIp) return { status: 'per-ip' };
    this.#total += 1;
    this.#perIp.set(ip, current + 1);
    let released = false;
    return {
      status: 'ok',
      release: () => {
        if (released) return;
        released = true;
        this.#total -= 1;
        const left = (this.#perIp.get(ip) ?? 1) - 1;
        if (left <= 0) this.#perIp.delete(ip);
        else this.#perIp.set(ip, left);
      },
    };
  }

  /** Connections counted now. */
  get total(): number {
    return this.#total;
  }

  /** Connections counted now for `ip`. */
  countFor(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  /** Distinct addresses counted now (the per-IP map never keeps zero entries). */
  get addresses(): number {
    return this.#perIp.size;
  }
}

/**
 * The client address of a request, for per-IP limits and logs. IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is unmapped.
 *
 * Behind reverse proxies pass `trustedProxies` = how many proxies in front of citypulse append to
 * `X-Forwarded-For` (1 for a single nginx): the address is then the entry that many places from the right. With 0
 * (the default) the header is ignored, because any client can send it. A missing or short header falls back to the
 * socket address.
 */
export function clientIp(req: IncomingMessage, trustedProxies = 0): string {
  const socketIp = unmapIpv4(req.socket.remoteAddress ?? 'unknown');
  if (trustedProxies <= 0) return socketIp;
  const header = req.headers['x-forwarded-for'];
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value === undefined || value === '') return socketIp;
  const hops = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const entry = hops[hops.length - trustedProxies];
  return entry === undefined ? socketIp : unmapIpv4(entry);
}

/** The peer address of a socket (IPv4-mapped IPv6 unmapped), for limits counted before any request arrives. */
export function socketIp(socket: { readonly remoteAddress?: string }): string {
  return unmapIpv4(socket.remoteAddress ?? 'unknown');
}

function unmapIpv4(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

// ---------------------------------------------------------------------------------------------------------------
// Handshake deadline
// ---------------------------------------------------------------------------------------------------------------

/** What {@link withDeadline} resolves to when the deadline passed first. */
export const DEADLINE_EXCEEDED: unique symbol = Symbol('citypulse.deadlineExceeded');

/**
 * Resolves to `promise`'s value, or to {@link DEADLINE_EXCEEDED} if it has not settled within `ms`. The timer is
 * cleared either way (no handle outlives the race); a rejection of `promise` passes through. The losing promise is
 * not cancelled; its late result is ignored.
 */
export async function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | typeof DEADLINE_EXCEEDED> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<typeof DEADLINE_EXCEEDED>((resolve) => {
    timer = setTimeout(resolve, ms, DEADLINE_EXCEEDED);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
