/**
 * The client's options and their defaults: {@link ClientOptions} as callers write it, resolved once (and checked)
 * into the {@link ResolvedClientOptions} the client's parts read.
 *
 * @module
 */
import { resolveBackoff } from '../shared/backoff.js';
import type { BackoffOptions } from '../shared/backoff.js';
import type { EntityValidator } from '../protocol/state-model.js';
import type { WebSocketConstructorLike } from './transport.js';

/** Options of `createClient`. Durations are in milliseconds. */
export interface ClientOptions {
  /** The server's WebSocket endpoint, e.g. `ws://localhost:8080/ws` (`http(s):` is accepted and converted). */
  url: string;
  /** Topics to subscribe to for the client's whole life (more can be added with `subscribe`). Default none. */
  topics?: readonly string[];
  /** WebSocket constructor. Default `globalThis.WebSocket` (browsers, Node 22+); in Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructorLike;
  /** Reconnect backoff (full jitter). Default `{initialMs: 500, maxMs: 30000, factor: 2}`. */
  backoff?: Partial<BackoffOptions>;
  /**
   * Consecutive failed attempts after which the client gives up and becomes `closed` (a successful connection
   * resets the count). Default `Infinity`.
   */
  maxRetries?: number;
  /** Called before every connection attempt; its result is sent as `?token=`. A 4401 close asks for a new one. */
  getToken?(): string | null | undefined | Promise<string | null | undefined>;
  /** Randomness of the backoff jitter, in `[0, 1)`. Default `Math.random`. */
  random?(): number;
  /** Clock in milliseconds. Default `Date.now`. */
  now?(): number;
  /** Timer functions. Default the global ones. */
  setTimeout?(callback: () => void, ms: number): unknown;
  /** Clears a handle returned by `setTimeout`. */
  clearTimeout?(handle: unknown): void;
  /** An attempt that has not received `CONNECTED` after this long is dropped and retried. Default 10 000. */
  connectTimeoutMs?: number;
  /** Interval of app-level pings. Default: `min(heartbeat.intervalMs, heartbeat.timeoutMs / 2)` from the server. */
  pingIntervalMs?: number;
  /** Silence after which the link counts as dead. Default: `heartbeat.timeoutMs` advertised by the server. */
  heartbeatTimeoutMs?: number;
  /** A recovery request not answered within this long is repeated (as a re-subscribe). Default 5 000. */
  recoveryTimeoutMs?: number;
  /**
   * The entity validator of a topic the client folds UPDATEs with. Default: the protocol's base rule
   * (`validateBase`: `id`, `updatedAt`, `source`, JSON bounds); the server has already checked the topic's schema.
   * A Node client may pass its topic registry's (`(topic) => registry.validator(topic)`).
   */
  entityValidator?(topic: string): EntityValidator;
}

/** {@link ClientOptions} with every default applied. */
export interface ResolvedClientOptions {
  readonly url: string;
  readonly WebSocket: WebSocketConstructorLike;
  readonly backoff: BackoffOptions;
  readonly maxRetries: number;
  readonly getToken: ClientOptions['getToken'];
  readonly random: () => number;
  readonly now: () => number;
  readonly setTimer: (callback: () => void, ms: number) => unknown;
  readonly clearTimer: (handle: unknown) => void;
  readonly connectTimeoutMs: number;
  /** `undefined`: derived from what the server advertises. */
  readonly pingIntervalMs: number | undefined;
  /** `undefined`: derived from what the server advertises. */
  readonly heartbeatTimeoutMs: number | undefined;
  readonly recoveryTimeoutMs: number;
  /** `undefined`: the base rule. */
  readonly entityValidator: ((topic: string) => EntityValidator) | undefined;
}

/**
 * Applies the defaults of `options`. Throws `TypeError` when no WebSocket implementation is available or the URL
 * is invalid (so a typo fails at the call site), `RangeError` for invalid backoff options.
 */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  const WebSocketImpl =
    options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket ?? undefined;
  if (WebSocketImpl === undefined) {
    throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. `ws`) in this runtime');
  }
  // Validate the URL now so a typo fails at the call site.
  void new URL(options.url);
  const setTimer =
    options.setTimeout ?? ((callback: () => void, ms: number) => globalThis.setTimeout(callback, ms));
  const clearTimer =
    options.clearTimeout ??
    ((handle: unknown) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>));
  return {
    url: options.url,
    WebSocket: WebSocketImpl,
    backoff: resolveBackoff(options.backoff),
    maxRetries: options.maxRetries ?? Number.POSITIVE_INFINITY,
    getToken: options.getToken,
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
    setTimer: (callback, ms) => setTimer(callback, ms),
    clearTimer: (handle) => clearTimer(handle),
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    pingIntervalMs: options.pingIntervalMs,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs,
    recoveryTimeoutMs: options.recoveryTimeoutMs ?? 5_000,
    entityValidator: options.entityValidator?.bind(options),
  };
}
