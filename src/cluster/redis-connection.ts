/**
 * The Redis broker's two ioredis connections (commands, subscriptions) and their state: `connecting`, `ready`,
 * `stalled` (connected, but Redis stopped answering), `down`, `closed`.
 *
 * - Every command has a deadline (`commandTimeoutMs`); one that passes it marks Redis `stalled` until it answers
 *   again. A periodic health check (TIME on the command connection) notices a Redis that holds its connections open
 *   but answers nothing, and measures Redis' clock against ours (the publish deadline is set on Redis' clock).
 * - When Redis is back (both connections ready again after a loss, or answering again after a stall), the owner's
 *   `onRecover` runs once.
 * - `close()` sends a polite QUIT, waits for it at most one good-bye deadline (none while Redis does not answer),
 *   then drops both connections. Idempotent.
 *
 * @module
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../shared/logger.js';
import { isTimeout, settleWithin, withDeadline } from './deadline.js';

/**
 * Connection states of the broker as a whole: `stalled` means connected, but Redis did not answer a command or a
 * health PING within `commandTimeoutMs` (a frozen or overloaded server) and has not answered since.
 */
export type RedisBrokerState = 'connecting' | 'ready' | 'stalled' | 'down' | 'closed';

/** The default of `RedisBrokerOptions.commandTimeoutMs`. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/** Options of {@link RedisConnection}. Durations in ms. */
export interface RedisConnectionOptions {
  /** `redis://host:port[/db]`. */
  url: string;
  /** This node's id, in the connection names (`CLIENT LIST`). */
  nodeId: string;
  /** Longest wait between reconnect attempts. Default 2000. */
  maxReconnectDelayMs?: number;
  /** Longest wait for one command (and for whatever the owner bounds with it). Default 2000, at least 1. */
  commandTimeoutMs?: number;
  /** How often the command connection is PINGed (TIME) to notice a Redis that stopped answering. Default 1000. */
  healthCheckIntervalMs?: number;
  logger: Logger;
  /** Called each time Redis answers again after being down or stalled (never after `close()`). */
  onRecover: () => void;
}

/** The command and subscription connections to Redis, their state and health check. */
export class RedisConnection {
  /** Longest wait for one command or a whole publish. */
  readonly commandTimeoutMs: number;
  /** Longest wait for one good-bye at shutdown (lease release, stats removal, QUIT): at most 1000 ms. */
  readonly goodbyeTimeoutMs: number;
  /** Commands (scripts, reads). Fails fast while Redis is unreachable (no offline queue). */
  readonly redis: Redis;
  /** Subscriptions only (resubscribes by itself after a reconnection). */
  readonly sub: Redis;
  readonly #logger: Logger;
  readonly #onRecover: () => void;
  #healthTimer: NodeJS.Timeout | null = null;
  #probing = false;
  /** Redis' clock minus ours (ms), measured by every health check. */
  #redisClockOffsetMs = 0;
  /** Redis did not answer within the deadline and has not answered since. */
  #stalled = false;
  #closed: Promise<void> | null = null;
  #wasDown = false;

  constructor(options: RedisConnectionOptions) {
    this.#logger = options.logger;
    this.#onRecover = options.onRecover;
    const maxDelay = options.maxReconnectDelayMs ?? 2000;
    this.commandTimeoutMs = Math.max(1, options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    this.goodbyeTimeoutMs = Math.min(this.commandTimeoutMs, 1000);
    const common: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: this.commandTimeoutMs,
      // Exponential backoff with full jitter, capped.
      retryStrategy: (times) =>
        Math.round(Math.random() * Math.min(maxDelay, 50 * 2 ** Math.min(times, 10))) + 20,
    };
    this.redis = new Redis(options.url, { ...common, connectionName: `citypulse:${options.nodeId}` });
    this.sub = new Redis(options.url, {
      ...common,
      connectionName: `citypulse-sub:${options.nodeId}`,
      autoResubscribe: true,
    });
    for (const connection of [this.redis, this.sub]) {
      connection.on('error', (error: Error) => this.#logger.debug({ err: error.message }, 'redis error'));
      connection.on('close', () => this.#onDown());
    }
    this.redis.on('ready', () => this.#onReady());
    this.sub.on('ready', () => this.#onReady());
    this.#healthTimer = setInterval(() => void this.#probe(), options.healthCheckIntervalMs ?? 1000);
    this.#healthTimer.unref();
  }

  /** Connects both connections; rejects when Redis cannot be reached. */
  async connect(): Promise<void> {
    await Promise.all([this.redis.connect(), this.sub.connect()]);
  }

  /** `ready` when both connections are up and Redis answers. */
  get state(): RedisBrokerState {
    if (this.#closed !== null) return 'closed';
    if (this.redis.status === 'ready' && this.sub.status === 'ready')
      return this.#stalled ? 'stalled' : 'ready';
    if (this.redis.status === 'connecting' || this.redis.status === 'wait') return 'connecting';
    return 'down';
  }

  /** Rejects at once while Redis is known not to answer (a joining client learns it now, not after a timeout). */
  failFast(): void {
    const state = this.state;
    if (state === 'stalled' || state === 'down' || state === 'closed')
      throw Object.assign(new Error(`the cluster store is ${state}`), { code: 'ERR_REDIS_UNAVAILABLE' });
  }

  /** `promise` within `commandTimeoutMs`; a timeout marks Redis stalled until it answers again. */
  bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return withDeadline(promise, this.commandTimeoutMs, what).catch((error: unknown) => {
      if (isTimeout(error)) this.#markStalled(what);
      throw error;
    });
  }

  /**
   * The instant, on Redis' clock (ms), past which Redis must refuse a command sent now: a margin before the sender
   * stops waiting for its reply (`commandTimeoutMs`).
   */
  redisDeadline(): number {
    return (
      Date.now() + this.#redisClockOffsetMs + this.commandTimeoutMs - Math.min(100, this.commandTimeoutMs / 4)
    );
  }

  /** Reads Redis' clock (TIME, within `commandTimeoutMs`) and keeps its offset from ours. */
  async measureClock(): Promise<void> {
    const sentAt = Date.now();
    const [sec, usec] = await this.bounded(this.redis.time(), 'health check');
    const receivedAt = Date.now();
    this.#redisClockOffsetMs =
      Number(sec) * 1000 + Math.floor(Number(usec) / 1000) - (sentAt + receivedAt) / 2;
  }

  /**
   * Stops the health check, QUITs both connections (waiting at most `goodbyeTimeoutMs`, and not at all while Redis
   * does not answer), then drops them. Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#healthTimer !== null) clearInterval(this.#healthTimer);
      this.#healthTimer = null;
      // A polite QUIT when Redis answers; a frozen one is not waited for past one good-bye deadline.
      await settleWithin(
        Promise.allSettled([this.sub.quit(), this.redis.quit()]),
        this.state === 'ready' ? this.goodbyeTimeoutMs : 0,
      );
      this.sub.disconnect();
      this.redis.disconnect();
    })();
    return this.#closed;
  }

  #onDown(): void {
    if (this.#closed !== null || this.#wasDown) return;
    this.#wasDown = true;
    this.#logger.warn({}, 'redis connection lost; serving connected clients, reconnecting');
  }

  #onReady(): void {
    if (this.#closed !== null || !this.#wasDown || this.state === 'down' || this.state === 'connecting')
      return;
    this.#wasDown = false;
    this.#stalled = false;
    this.#logger.info({}, 'redis connection back; catching up');
    this.#onRecover();
  }

  #markStalled(what: string): void {
    if (this.#stalled || this.#closed !== null) return;
    this.#stalled = true;
    this.#logger.warn({ what, timeoutMs: this.commandTimeoutMs }, 'redis stopped answering; not ready');
  }

  /** The health check: Redis' TIME within `commandTimeoutMs` on the command connection. */
  async #probe(): Promise<void> {
    if (this.#probing || this.#closed !== null || this.redis.status !== 'ready') return;
    this.#probing = true;
    try {
      await this.measureClock();
      if (this.#stalled && this.#closed === null) {
        this.#stalled = false;
        this.#logger.info({}, 'redis answers again; catching up');
        if (this.state === 'ready') this.#onRecover();
        // Otherwise a connection is down: its 'ready' event recovers.
      }
    } catch {
      // Marked stalled on a timeout; a refused PING means the connection is going down ('close' follows).
    } finally {
      this.#probing = false;
    }
  }
}
