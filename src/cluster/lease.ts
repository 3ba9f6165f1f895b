/**
 * A lease in Redis: at most one node holds it at a time. Acquired with `SET key nodeId NX PX ttl`, kept by a Lua
 * compare-and-extend every `renewMs`, released by a compare-and-delete. When the holder dies its lease expires
 * after `ttlMs` and another node's next attempt takes it, so a takeover happens within `ttlMs + renewMs`.
 *
 * A holder that cannot renew (Redis unreachable) gives the lease up itself once `ttlMs` has passed since its last
 * successful renewal, before anyone else can take it: two holders never overlap on the clock of one node.
 *
 * States: `stopped` -> `following` (trying to acquire) <-> `leading` (holding) -> `stopped`.
 *
 * `stop()` stops the holder's work at once (`onLost`) and then waits at most `releaseTimeoutMs` for Redis to
 * confirm the release: a frozen Redis never holds up a shutdown (the lease then simply expires).
 *
 * @module
 */
import type { Redis } from 'ioredis';
import { silentLogger, type Logger } from '../shared/logger.js';
import { settleWithin } from './deadline.js';
import { RELEASE_LEASE, RENEW_LEASE, runScript } from './redis-scripts.js';

/** Options of {@link Lease}. Durations in ms. */
export interface LeaseOptions {
  redis: Redis;
  key: string;
  nodeId: string;
  /** Lifetime of the lease without renewal. Default 5000. */
  ttlMs?: number;
  /** How often the holder renews and the others try to acquire. Default ttlMs / 3. */
  renewMs?: number;
  /** Longest wait for the release at `stop()`. Default 1000. */
  releaseTimeoutMs?: number;
  /** Called when this node becomes the holder. */
  onAcquired: () => void;
  /** Called when this node stops being the holder (lost, expired, or stopped). */
  onLost: () => void;
  logger?: Logger;
  now?: () => number;
}

/** Lease states. */
export type LeaseState = 'stopped' | 'following' | 'leading';

/** One lease, held or followed by this node. */
export class Lease {
  #state: LeaseState = 'stopped';
  #timer: NodeJS.Timeout | null = null;
  #lastRenewedAt = 0;
  #busy = false;
  #stopping: Promise<void> = Promise.resolve();
  readonly #options: LeaseOptions;
  readonly #ttlMs: number;
  readonly #renewMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;

  constructor(options: LeaseOptions) {
    this.#options = options;
    this.#ttlMs = options.ttlMs ?? 5000;
    this.#renewMs = options.renewMs ?? Math.max(10, Math.floor(this.#ttlMs / 3));
    this.#logger = (options.logger ?? silentLogger).child({ lease: options.key });
    this.#now = options.now ?? Date.now;
  }

  get state(): LeaseState {
    return this.#state;
  }

  /** Starts trying to acquire (at once, then every `renewMs`). */
  start(): void {
    if (this.#state !== 'stopped') return;
    this.#state = 'following';
    this.#timer = setInterval(() => void this.#tick(), this.#renewMs);
    this.#timer.unref();
    void this.#tick();
  }

  /**
   * Stops, releasing the lease when held (waiting at most `releaseTimeoutMs` for Redis). Idempotent: a second call
   * resolves with the first one's release.
   */
  stop(): Promise<void> {
    if (this.#state === 'stopped') return this.#stopping;
    const wasLeading = this.#state === 'leading';
    this.#state = 'stopped';
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (wasLeading) {
      this.#options.onLost();
      this.#stopping = settleWithin(
        runScript(this.#options.redis, RELEASE_LEASE, [this.#options.key], [this.#options.nodeId]),
        this.#options.releaseTimeoutMs ?? 1000,
      );
    }
    return this.#stopping;
  }

  async #tick(): Promise<void> {
    if (this.#busy || this.#state === 'stopped') return;
    this.#busy = true;
    try {
      if (this.#state === 'leading') await this.#renew();
      else await this.#acquire();
    } finally {
      this.#busy = false;
    }
  }

  async #acquire(): Promise<void> {
    let reply: string | null;
    try {
      reply = await this.#options.redis.set(this.#options.key, this.#options.nodeId, 'PX', this.#ttlMs, 'NX');
    } catch {
      return;
    }
    if (reply !== 'OK' || this.#state !== 'following') return;
    this.#state = 'leading';
    this.#lastRenewedAt = this.#now();
    this.#logger.info({ nodeId: this.#options.nodeId }, 'lease acquired');
    this.#options.onAcquired();
  }

  async #renew(): Promise<void> {
    const startedAt = this.#now();
    let held: boolean;
    try {
      held =
        (await runScript(
          this.#options.redis,
          RENEW_LEASE,
          [this.#options.key],
          [this.#options.nodeId, this.#ttlMs],
        )) === 1;
      if (held) this.#lastRenewedAt = startedAt;
    } catch {
      // Unreachable: keep leading only while the lease cannot have expired yet.
      held = this.#now() - this.#lastRenewedAt < this.#ttlMs - this.#renewMs;
    }
    if (held || this.#state !== 'leading') return;
    this.#state = 'following';
    this.#logger.warn({ nodeId: this.#options.nodeId }, 'lease lost');
    this.#options.onLost();
  }
}
