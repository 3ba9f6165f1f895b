/**
 * The client's connection: the state machine, one socket per attempt with its transport epoch, the connect
 * timeout, and reconnection with full-jitter backoff.
 *
 * Connection state machine (changed only in `#setState`, which reports `{newState, oldState}`):
 *
 * ```
 *  connecting ──CONNECTED──▶ connected ──link lost (retryable)──▶ reconnecting ──CONNECTED──▶ connected
 *      │  └─attempt failed (retryable)──────────────────────────▶ reconnecting
 *      └───── close() / fatal close code / retries exhausted (from any state) ──▶ closed (final)
 * ```
 *
 * Every socket gets a transport epoch; callbacks of a socket that is no longer current are ignored, so a late
 * `close` from a replaced socket can never tear down its successor.
 *
 * @module
 */
import { CloseCode, isRetryableClose } from '../protocol/messages.js';
import type { ClientMessage } from '../protocol/messages.js';
import { backoffDelay } from '../shared/backoff.js';
import { isRecord } from '../shared/json.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { ConnectionState, StateChange } from './events.js';
import type { ResolvedClientOptions } from './options.js';
import { SOCKET_OPEN } from './transport.js';
import type { SocketCloseEvent, SocketMessageEvent, WebSocketLike } from './transport.js';

/** Close code reported for a link the client dropped itself (connect or heartbeat timeout). */
const ABNORMAL_CLOSURE = 1006;

/** What the {@link Connection} asks of the client that owns it. */
export interface ConnectionHooks {
  /** The URL of one attempt, sent with `token`. May throw (the client then closes with a config error). */
  connectUrl(token: string | null | undefined): string;
  /** A frame arrived on the current socket. */
  onFrame(data: unknown): void;
  /** The current socket is being dropped: what lives per connection (heartbeat, pending resumes) ends. */
  onTransportDown(): void;
  /** Final teardown, after the socket is gone and before the state becomes `closed`. */
  onShutdown(): void;
  /** The state changed. */
  onStateChange(change: StateChange): void;
  reportError(error: ClientError): void;
}

/** One connection to a server, kept alive across failures until closed. */
export class Connection {
  readonly #options: ResolvedClientOptions;
  readonly #hooks: ConnectionHooks;

  #state: ConnectionState = 'connecting';
  /** Incremented whenever the current socket is replaced or dropped; stale callbacks compare against it. */
  #transportEpoch = 0;
  #socket: WebSocketLike | null = null;
  /** Consecutive failed attempts since the last `CONNECTED`. */
  #failures = 0;
  #reconnectTimer: unknown = undefined;
  #connectTimer: unknown = undefined;

  constructor(options: ResolvedClientOptions, hooks: ConnectionHooks) {
    this.#options = options;
    this.#hooks = hooks;
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The epoch of the current socket: it changes whenever the socket is replaced or dropped. */
  get epoch(): number {
    return this.#transportEpoch;
  }

  /** Starts one connection attempt (asking `getToken` first, when given). */
  connect(): void {
    if (this.#state === 'closed') return;
    const epoch = ++this.#transportEpoch;
    if (this.#options.getToken === undefined) {
      this.#openSocket(epoch, undefined);
      return;
    }
    const getToken = this.#options.getToken;
    Promise.resolve()
      .then(() => getToken())
      .then(
        (token) => {
          if (epoch === this.#transportEpoch) this.#openSocket(epoch, token);
        },
        (error: unknown) => {
          if (epoch !== this.#transportEpoch) return;
          this.#hooks.reportError(
            new ClientError(ClientErrorCode.Token, 'getToken() failed', { cause: error }),
          );
          this.#onLinkLost(ABNORMAL_CLOSURE, 'no token');
        },
      );
  }

  /** `CONNECTED` arrived: the connect timeout ends and the failure count starts over. */
  acknowledge(): void {
    this.#options.clearTimer(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#failures = 0;
  }

  /** The connection is set up: the state becomes `connected`. */
  markConnected(): void {
    this.#setState('connected');
  }

  /** Sends `message` when connected; drops it otherwise. */
  send(message: ClientMessage): void {
    const socket = this.#socket;
    if (socket === null || socket.readyState !== SOCKET_OPEN || this.#state !== 'connected') return;
    socket.send(JSON.stringify(message));
  }

  /** Drops a link that went silent (`reason` says why) and reconnects. */
  drop(reason: string): void {
    this.#teardownTransport(4000, reason);
    this.#onLinkLost(ABNORMAL_CLOSURE, reason);
  }

  /** Final teardown: every timer, the socket, then `closed`. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#options.clearTimer(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#teardownTransport(CloseCode.Normal, 'client closed');
    this.#hooks.onShutdown();
    this.#setState('closed');
  }

  /** The one place the connection state changes. */
  #setState(next: ConnectionState): void {
    const previous = this.#state;
    if (previous === next || previous === 'closed') return;
    this.#state = next;
    this.#hooks.onStateChange({ newState: next, oldState: previous });
  }

  #openSocket(epoch: number, token: string | null | undefined): void {
    if (this.#state === 'closed') return;
    let socket: WebSocketLike;
    try {
      const url = this.#hooks.connectUrl(token);
      socket = new this.#options.WebSocket(url);
    } catch (error) {
      this.#hooks.reportError(
        new ClientError(ClientErrorCode.Config, 'could not create the WebSocket', { cause: error }),
      );
      this.close();
      return;
    }
    this.#socket = socket;
    socket.onmessage = (event: SocketMessageEvent) => {
      if (epoch === this.#transportEpoch) this.#hooks.onFrame(event.data);
    };
    socket.onclose = (event: SocketCloseEvent) => {
      if (epoch !== this.#transportEpoch) return;
      this.#teardownTransport();
      this.#onLinkLost(event.code, event.reason);
    };
    socket.onerror = (event: unknown) => {
      if (epoch !== this.#transportEpoch) return;
      const detail = isRecord(event) && typeof event.message === 'string' ? `: ${event.message}` : '';
      this.#hooks.reportError(
        new ClientError(ClientErrorCode.Transport, `WebSocket error${detail}`, { cause: event }),
      );
    };
    const connectTimeoutMs = this.#options.connectTimeoutMs;
    this.#connectTimer = this.#options.setTimer(() => {
      this.#connectTimer = undefined;
      if (epoch !== this.#transportEpoch) return;
      this.#hooks.reportError(
        new ClientError(ClientErrorCode.ConnectTimeout, `no CONNECTED within ${connectTimeoutMs} ms`),
      );
      this.#teardownTransport(4000, 'connect timeout');
      this.#onLinkLost(ABNORMAL_CLOSURE, 'connect timeout');
    }, connectTimeoutMs);
  }

  /**
   * Drops the current socket: bumps the transport epoch (its callbacks become no-ops), clears the per-connection
   * timers and closes it if still open (`terminate()` when the implementation has it, as `ws` does).
   */
  #teardownTransport(code?: number, reason?: string): void {
    this.#transportEpoch++;
    this.#options.clearTimer(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#hooks.onTransportDown();
    const socket = this.#socket;
    this.#socket = null;
    if (socket === null) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    // Keep an error listener: `ws` throws on an 'error' event nobody listens to.
    socket.onerror = () => {};
    if (code === undefined) return;
    try {
      const terminate = (socket as { terminate?: () => void }).terminate;
      if (code !== CloseCode.Normal && typeof terminate === 'function') terminate.call(socket);
      else socket.close(code, reason);
    } catch {
      // Closing a socket that is still connecting throws in some implementations; it is gone either way.
    }
  }

  /** The link is gone (socket closed, or dropped by a timeout): retry or give up. */
  #onLinkLost(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    if (!isRetryableClose(code)) {
      this.#hooks.reportError(
        new ClientError(ClientErrorCode.Fatal, `server closed the connection with ${code} ${reason}`.trim(), {
          closeCode: code,
          closeReason: reason,
        }),
      );
      this.close();
      return;
    }
    const options = this.#options;
    if (this.#failures >= options.maxRetries) {
      this.#hooks.reportError(
        new ClientError(ClientErrorCode.RetriesExhausted, `gave up after ${this.#failures} failed attempts`, {
          closeCode: code,
          closeReason: reason,
        }),
      );
      this.close();
      return;
    }
    let delay = backoffDelay(this.#failures, options.backoff, options.random);
    // A rate-limited client waits at least one full initial window.
    if (code === CloseCode.RateLimited) delay = Math.max(delay, options.backoff.initialMs);
    this.#failures++;
    this.#setState('reconnecting');
    options.clearTimer(this.#reconnectTimer);
    this.#reconnectTimer = options.setTimer(() => {
      this.#reconnectTimer = undefined;
      this.connect();
    }, delay);
  }
}
