/**
 * The citypulse client: one connection to a citypulse server, kept alive across failures, with the converged
 * entity state of every subscribed topic.
 *
 * Connection state machine (changed only in `#setState`, which emits `state` with `{newState, oldState}`):
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
import {
  ClientMessageType,
  ErrorCode,
  ServerMessageType,
  TOPIC_NAME_PATTERN,
  assertNever,
  isRetryableClose,
  parseServerMessage,
  CloseCode,
} from '../protocol/messages.js';
import type {
  AlertMessage,
  ClientMessage,
  ConnectedMessage,
  ErrorMessage,
  ServerMessage,
  SnapshotMessage,
  StreamPosition,
  UpdateMessage,
} from '../protocol/messages.js';
import type { EntityBase, EntityChange, TopicEntityMap } from '../protocol/topics.js';
import { backoffDelay, resolveBackoff } from '../shared/backoff.js';
import type { BackoffOptions } from '../shared/backoff.js';
import { Emitter } from './emitter.js';
import { ClientError, ClientErrorCode } from './errors.js';
import { TopicStore, toEntityChange, toSnapshotContent } from './topic-store.js';
import { readAlert, type AlertView } from '../protocol/payloads.js';
import type { FoldResult } from './topic-store.js';
import { SOCKET_OPEN, buildConnectUrl } from './transport.js';
import type {
  SocketCloseEvent,
  SocketMessageEvent,
  WebSocketConstructorLike,
  WebSocketLike,
} from './transport.js';

/** States of the connection. `closed` is final. */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** Payload of the `state` event. */
export interface StateChange {
  readonly newState: ConnectionState;
  readonly oldState: ConnectionState;
}

/** The entity type of a topic: the city topics' own types, `EntityBase` for any other topic. */
export type EntityOf<T extends string> = T extends keyof TopicEntityMap ? TopicEntityMap[T] : EntityBase;

/** What the server said in `CONNECTED`. */
export type ServerInfo = ConnectedMessage['data'];

/** Payload of the `snapshot` event: a topic's state was replaced by a snapshot. */
export interface SnapshotEvent<E extends EntityBase = EntityBase> {
  readonly topic: string;
  /** The frame: a per-topic SNAPSHOT, or the full SNAPSHOT this topic was part of. */
  readonly message: SnapshotMessage;
  readonly entities: ReadonlyMap<string, E>;
}

/** Payload of the `update` event: an UPDATE was folded into its topic (or was broadcast without a topic). */
export interface UpdateEvent<E extends EntityBase = EntityBase> {
  readonly topic: string | undefined;
  readonly message: UpdateMessage;
  /** The entity change it carried, or `null` when its `data` is not one. */
  readonly change: EntityChange<E> | null;
}

/** Payload of the `alert` event. */
export interface AlertEvent {
  readonly topic: string | undefined;
  readonly message: AlertMessage;
  /** The alert's data read by the protocol (`readAlert`): one typed view of rule and published alerts. */
  readonly alert: AlertView;
}

/** Events of the client, by name. */
export interface ClientEvents {
  /** The connection state changed. */
  state: StateChange;
  /** A connection was established (after the state became `connected`). */
  connected: ServerInfo;
  snapshot: SnapshotEvent;
  update: UpdateEvent;
  alert: AlertEvent;
  /** Every valid frame, after the client processed it. */
  message: ServerMessage;
  error: ClientError;
}

/** What a subscription handler receives: every snapshot, update and alert of its topic, in order. */
export type TopicEvent<E extends EntityBase = EntityBase> =
  | {
      readonly type: 'snapshot';
      readonly topic: string;
      readonly message: SnapshotMessage;
      readonly entities: ReadonlyMap<string, E>;
    }
  | {
      readonly type: 'update';
      readonly topic: string;
      readonly message: UpdateMessage;
      readonly change: EntityChange<E> | null;
      readonly entities: ReadonlyMap<string, E>;
    }
  | {
      readonly type: 'alert';
      readonly topic: string;
      readonly message: AlertMessage;
      /** The alert's data read by the protocol (`readAlert`). */
      readonly alert: AlertView;
      readonly entities: ReadonlyMap<string, E>;
    };

/** A subscription handler. */
export type TopicHandler<E extends EntityBase = EntityBase> = (event: TopicEvent<E>) => void;

/** Options of {@link createClient}. Durations are in milliseconds. */
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
}

const EMPTY_MAP: ReadonlyMap<string, never> = new Map<string, never>();

/** Close code reported for a link the client dropped itself (connect or heartbeat timeout). */
const ABNORMAL_CLOSURE = 1006;

/** Whether the server answered our `resume` requests on this connection. */
type ResumeSupport = 'unknown' | 'yes' | 'no';

interface Subscription {
  /** Holders: one per `subscribe()` call still active, plus one for a topic of `options.topics`. */
  refs: number;
  readonly handlers: Set<TopicHandler>;
  readonly store: TopicStore;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function validateTopic(topic: string): void {
  if (!TOPIC_NAME_PATTERN.test(topic)) throw new TypeError(`invalid topic name ${JSON.stringify(topic)}`);
}

/** A live connection to a citypulse server. Create it with {@link createClient}. */
export class CityPulseClient {
  readonly #url: string;
  readonly #WebSocket: WebSocketConstructorLike;
  readonly #backoff: BackoffOptions;
  readonly #maxRetries: number;
  readonly #getToken: ClientOptions['getToken'];
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #setTimer: (callback: () => void, ms: number) => unknown;
  readonly #clearTimer: (handle: unknown) => void;
  readonly #connectTimeoutMs: number;
  readonly #pingIntervalMs: number | undefined;
  readonly #heartbeatTimeoutMs: number | undefined;
  readonly #recoveryTimeoutMs: number;

  readonly #events = new Emitter<ClientEvents>((error, event) =>
    this.#reportListenerError(error, String(event)),
  );
  readonly #subscriptions = new Map<string, Subscription>();

  #state: ConnectionState = 'connecting';
  /** Incremented whenever the current socket is replaced or dropped; stale callbacks compare against it. */
  #transportEpoch = 0;
  #socket: WebSocketLike | null = null;
  /** Consecutive failed attempts since the last `CONNECTED`. */
  #failures = 0;
  #serverInfo: ServerInfo | null = null;
  #lastFrameAt = 0;
  #pingId = 0;
  #resumeSupport: ResumeSupport = 'unknown';
  /** Topics whose `resume` request awaits an answer. */
  readonly #resumePending = new Set<string>();
  /** Topic -> time its recovery was requested. */
  readonly #recovering = new Map<string, number>();

  #reconnectTimer: unknown = undefined;
  #connectTimer: unknown = undefined;
  #watchdogTimer: unknown = undefined;
  #pingTimer: unknown = undefined;

  constructor(options: ClientOptions) {
    const WebSocketImpl =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructorLike }).WebSocket ?? undefined;
    if (WebSocketImpl === undefined) {
      throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. `ws`) in this runtime');
    }
    // Validate the URL now so a typo fails at the call site.
    void new URL(options.url);
    this.#url = options.url;
    this.#WebSocket = WebSocketImpl;
    this.#backoff = resolveBackoff(options.backoff);
    this.#maxRetries = options.maxRetries ?? Number.POSITIVE_INFINITY;
    this.#getToken = options.getToken;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    const setTimer =
      options.setTimeout ?? ((callback: () => void, ms: number) => globalThis.setTimeout(callback, ms));
    const clearTimer =
      options.clearTimeout ??
      ((handle: unknown) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>));
    this.#setTimer = (callback, ms) => setTimer(callback, ms);
    this.#clearTimer = (handle) => clearTimer(handle);
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#pingIntervalMs = options.pingIntervalMs;
    this.#heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    this.#recoveryTimeoutMs = options.recoveryTimeoutMs ?? 5_000;
    for (const topic of options.topics ?? []) this.#addRef(topic);
    this.#connect();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Public API
  // -------------------------------------------------------------------------------------------------------------

  /** The connection state. */
  get connectionState(): ConnectionState {
    return this.#state;
  }

  /** What the server announced in the last `CONNECTED`, or `null` before the first connection. */
  get serverInfo(): ServerInfo | null {
    return this.#serverInfo;
  }

  /** Topics the client is subscribed to (or will subscribe to on the next connection). */
  get topics(): string[] {
    return [...this.#subscriptions.keys()];
  }

  /** Adds `listener` for `event`; returns the function that removes it. */
  on<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /**
   * Subscribes to `topic` (if not already) and calls `handler` (optional) with its snapshots, updates and
   * alerts. Returns the function that removes the handler; when no holder of the topic is left (topics given in
   * `options.topics` are always held), the client unsubscribes and forgets the topic's state. Throws `TypeError`
   * for an invalid topic name.
   */
  subscribe<T extends string>(topic: T, handler?: TopicHandler<EntityOf<T>>): () => void {
    validateTopic(topic);
    const subscription = this.#addRef(topic);
    const entry = handler === undefined ? undefined : (handler as TopicHandler);
    if (entry !== undefined) subscription.handlers.add(entry);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      if (entry !== undefined) subscription.handlers.delete(entry);
      this.#dropRef(topic);
    };
  }

  /**
   * The converged entities of `topic`, by id: the last snapshot folded with every UPDATE after it. Live (it
   * changes as frames arrive); empty when not subscribed or before the first snapshot.
   */
  state<T extends string>(topic: T): ReadonlyMap<string, EntityOf<T>> {
    const subscription = this.#subscriptions.get(topic);
    return (subscription?.store.entities ?? EMPTY_MAP) as ReadonlyMap<string, EntityOf<T>>;
  }

  /** The stream position of `topic`'s state (`seq`, and `epoch` when the server sends one). */
  position(topic: string): { readonly seq: number; readonly epoch: string | undefined } | undefined {
    const store = this.#subscriptions.get(topic)?.store;
    if (store === undefined || store.seq === undefined) return undefined;
    return { seq: store.seq, epoch: store.epoch };
  }

  /** Closes the connection for good (code 1000) and clears every timer. Idempotent. */
  close(): void {
    this.#shutdown();
  }

  // -------------------------------------------------------------------------------------------------------------
  // State machine
  // -------------------------------------------------------------------------------------------------------------

  /** The one place the connection state changes. */
  #setState(next: ConnectionState): void {
    const previous = this.#state;
    if (previous === next || previous === 'closed') return;
    this.#state = next;
    this.#events.emit('state', { newState: next, oldState: previous });
  }

  /** Final teardown: every timer, the socket, then `closed`. */
  #shutdown(): void {
    if (this.#state === 'closed') return;
    this.#clearTimer(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#teardownTransport(CloseCode.Normal, 'client closed');
    this.#recovering.clear();
    this.#setState('closed');
  }

  // -------------------------------------------------------------------------------------------------------------
  // Transport
  // -------------------------------------------------------------------------------------------------------------

  /** Starts one connection attempt (asking `getToken` first, when given). */
  #connect(): void {
    if (this.#state === 'closed') return;
    const epoch = ++this.#transportEpoch;
    if (this.#getToken === undefined) {
      this.#openSocket(epoch, undefined);
      return;
    }
    const getToken = this.#getToken;
    Promise.resolve()
      .then(() => getToken())
      .then(
        (token) => {
          if (epoch === this.#transportEpoch) this.#openSocket(epoch, token);
        },
        (error: unknown) => {
          if (epoch !== this.#transportEpoch) return;
          this.#reportError(new ClientError(ClientErrorCode.Token, 'getToken() failed', { cause: error }));
          this.#onLinkLost(ABNORMAL_CLOSURE, 'no token');
        },
      );
  }

  #openSocket(epoch: number, token: string | null | undefined): void {
    if (this.#state === 'closed') return;
    const resume: Record<string, StreamPosition> = {};
    for (const [topic, { store }] of this.#subscriptions) {
      const position = store.position;
      if (position !== undefined) resume[topic] = position;
    }
    let socket: WebSocketLike;
    try {
      const url = buildConnectUrl({ url: this.#url, topics: this.topics, resume, token });
      socket = new this.#WebSocket(url);
    } catch (error) {
      this.#reportError(
        new ClientError(ClientErrorCode.Config, 'could not create the WebSocket', { cause: error }),
      );
      this.#shutdown();
      return;
    }
    this.#socket = socket;
    socket.onmessage = (event: SocketMessageEvent) => {
      if (epoch === this.#transportEpoch) this.#onFrame(event.data);
    };
    socket.onclose = (event: SocketCloseEvent) => {
      if (epoch !== this.#transportEpoch) return;
      this.#teardownTransport();
      this.#onLinkLost(event.code, event.reason);
    };
    socket.onerror = (event: unknown) => {
      if (epoch !== this.#transportEpoch) return;
      const detail = isRecord(event) && typeof event.message === 'string' ? `: ${event.message}` : '';
      this.#reportError(
        new ClientError(ClientErrorCode.Transport, `WebSocket error${detail}`, { cause: event }),
      );
    };
    this.#connectTimer = this.#setTimer(() => {
      this.#connectTimer = undefined;
      if (epoch !== this.#transportEpoch) return;
      this.#reportError(
        new ClientError(ClientErrorCode.ConnectTimeout, `no CONNECTED within ${this.#connectTimeoutMs} ms`),
      );
      this.#teardownTransport(4000, 'connect timeout');
      this.#onLinkLost(ABNORMAL_CLOSURE, 'connect timeout');
    }, this.#connectTimeoutMs);
  }

  /**
   * Drops the current socket: bumps the transport epoch (its callbacks become no-ops), clears the per-connection
   * timers and closes it if still open (`terminate()` when the implementation has it, as `ws` does).
   */
  #teardownTransport(code?: number, reason?: string): void {
    this.#transportEpoch++;
    for (const timer of [this.#connectTimer, this.#watchdogTimer, this.#pingTimer]) this.#clearTimer(timer);
    this.#connectTimer = this.#watchdogTimer = this.#pingTimer = undefined;
    this.#resumePending.clear();
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
      this.#reportError(
        new ClientError(ClientErrorCode.Fatal, `server closed the connection with ${code} ${reason}`.trim(), {
          closeCode: code,
          closeReason: reason,
        }),
      );
      this.#shutdown();
      return;
    }
    if (this.#failures >= this.#maxRetries) {
      this.#reportError(
        new ClientError(ClientErrorCode.RetriesExhausted, `gave up after ${this.#failures} failed attempts`, {
          closeCode: code,
          closeReason: reason,
        }),
      );
      this.#shutdown();
      return;
    }
    let delay = backoffDelay(this.#failures, this.#backoff, this.#random);
    // A rate-limited client waits at least one full initial window.
    if (code === CloseCode.RateLimited) delay = Math.max(delay, this.#backoff.initialMs);
    this.#failures++;
    this.#setState('reconnecting');
    this.#clearTimer(this.#reconnectTimer);
    this.#reconnectTimer = this.#setTimer(() => {
      this.#reconnectTimer = undefined;
      this.#connect();
    }, delay);
  }

  #send(message: ClientMessage): void {
    const socket = this.#socket;
    if (socket === null || socket.readyState !== SOCKET_OPEN || this.#state !== 'connected') return;
    socket.send(JSON.stringify(message));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Heartbeat
  // -------------------------------------------------------------------------------------------------------------

  #startHeartbeat(info: ServerInfo): void {
    const advertised = info.heartbeat;
    const timeoutMs =
      this.#heartbeatTimeoutMs ??
      (advertised !== undefined && advertised.timeoutMs > 0 ? advertised.timeoutMs : 0);
    const pingMs =
      this.#pingIntervalMs ??
      (advertised !== undefined && advertised.intervalMs > 0
        ? Math.min(advertised.intervalMs, timeoutMs > 0 ? Math.floor(timeoutMs / 2) : advertised.intervalMs)
        : 0);
    const epoch = this.#transportEpoch;
    if (pingMs > 0) {
      const ping = () => {
        this.#pingTimer = undefined;
        if (epoch !== this.#transportEpoch) return;
        this.#send({ type: ClientMessageType.Ping, id: ++this.#pingId });
        this.#pingTimer = this.#setTimer(ping, pingMs);
      };
      this.#pingTimer = this.#setTimer(ping, pingMs);
    }
    if (timeoutMs > 0) {
      const check = () => {
        this.#watchdogTimer = undefined;
        if (epoch !== this.#transportEpoch) return;
        const silentFor = this.#now() - this.#lastFrameAt;
        if (silentFor < timeoutMs) {
          this.#watchdogTimer = this.#setTimer(check, timeoutMs - silentFor);
          return;
        }
        this.#reportError(
          new ClientError(
            ClientErrorCode.HeartbeatTimeout,
            `nothing received for ${silentFor} ms; reconnecting`,
          ),
        );
        this.#teardownTransport(4000, 'heartbeat timeout');
        this.#onLinkLost(ABNORMAL_CLOSURE, 'heartbeat timeout');
      };
      this.#watchdogTimer = this.#setTimer(check, timeoutMs);
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Frames
  // -------------------------------------------------------------------------------------------------------------

  #onFrame(data: unknown): void {
    this.#lastFrameAt = this.#now();
    const message = typeof data === 'string' ? parseServerMessage(data) : null;
    if (message === null) {
      this.#reportError(
        new ClientError(ClientErrorCode.BadFrame, 'ignored a frame that is not a server message'),
      );
      return;
    }
    switch (message.type) {
      case ServerMessageType.Connected:
        this.#onConnected(message);
        break;
      case ServerMessageType.Snapshot:
        this.#onSnapshot(message);
        break;
      case ServerMessageType.Update:
        this.#onUpdate(message);
        break;
      case ServerMessageType.Alert:
        this.#onAlert(message);
        break;
      case ServerMessageType.Error:
        this.#onServerError(message);
        break;
      case ServerMessageType.Pong:
      case ServerMessageType.Subscribed:
      case ServerMessageType.Unsubscribed:
        break;
      default:
        assertNever(message);
    }
    this.#events.emit('message', message);
  }

  #onConnected(message: ConnectedMessage): void {
    this.#clearTimer(this.#connectTimer);
    this.#connectTimer = undefined;
    this.#serverInfo = message.data;
    this.#failures = 0;
    this.#resumeSupport = 'unknown';
    this.#recovering.clear();
    // Reconcile: topics added or dropped while this connection was being set up.
    // The server rejects a whole subscription when one topic is unknown, so only known topics are asked for.
    const onServer = new Set(Array.isArray(message.data.subscribed) ? message.data.subscribed : []);
    const served = new Set(Array.isArray(message.data.topics) ? message.data.topics : this.topics);
    const unknown = this.topics.filter((topic) => !served.has(topic));
    const missing = this.topics.filter((topic) => served.has(topic) && !onServer.has(topic));
    const extra = [...onServer].filter((topic) => !this.#subscriptions.has(topic));
    this.#startHeartbeat(message.data);
    this.#setState('connected');
    if (missing.length > 0) this.#send({ type: ClientMessageType.Subscribe, topics: missing });
    if (extra.length > 0) this.#send({ type: ClientMessageType.Unsubscribe, topics: extra });
    if (unknown.length > 0) {
      this.#reportError(
        new ClientError(ClientErrorCode.Server, `the server does not serve: ${unknown.join(', ')}`, {
          serverCode: ErrorCode.UnknownTopic,
          topics: unknown,
        }),
      );
    }
    this.#events.emit('connected', message.data);
  }

  #onSnapshot(message: SnapshotMessage): void {
    if (message.topic !== undefined) {
      this.#applySnapshot(message.topic, message, message.data, message.seq, message.epoch);
      return;
    }
    if (!isRecord(message.data)) return;
    for (const [topic, data] of Object.entries(message.data)) {
      this.#applySnapshot(topic, message, data, undefined, undefined);
    }
  }

  #applySnapshot(
    topic: string,
    message: SnapshotMessage,
    data: unknown,
    seq: number | undefined,
    epoch: string | undefined,
  ): void {
    const subscription = this.#subscriptions.get(topic);
    if (subscription === undefined) return;
    if (!subscription.store.applySnapshot(toSnapshotContent(data, seq, epoch))) return;
    this.#recovering.delete(topic);
    this.#resumePending.delete(topic);
    const entities = subscription.store.entities;
    this.#events.emit('snapshot', { topic, message, entities });
    this.#dispatch(subscription, { type: 'snapshot', topic, message, entities });
  }

  #onUpdate(message: UpdateMessage): void {
    const topic = message.topic;
    const change = toEntityChange(message.data, topic);
    if (topic === undefined) {
      this.#events.emit('update', { topic, message, change });
      return;
    }
    const subscription = this.#subscriptions.get(topic);
    if (subscription === undefined) return;
    if (this.#fold(topic, subscription, message, change) !== 'applied') return;
    this.#events.emit('update', { topic, message, change });
    this.#dispatch(subscription, {
      type: 'update',
      topic,
      message,
      change,
      entities: subscription.store.entities,
    });
  }

  #onAlert(message: AlertMessage): void {
    const topic = message.topic;
    const alert = readAlert(message.data, topic);
    if (topic === undefined) {
      this.#events.emit('alert', { topic, message, alert });
      return;
    }
    const subscription = this.#subscriptions.get(topic);
    if (subscription === undefined) return;
    if (this.#fold(topic, subscription, message, null) !== 'applied') return;
    this.#events.emit('alert', { topic, message, alert });
    this.#dispatch(subscription, {
      type: 'alert',
      topic,
      message,
      alert,
      entities: subscription.store.entities,
    });
  }

  #fold(
    topic: string,
    subscription: Subscription,
    message: UpdateMessage | AlertMessage,
    change: EntityChange | null,
  ): FoldResult {
    const result = subscription.store.fold({ seq: message.seq, epoch: message.epoch, change });
    if (result === 'applied' && message.seq !== undefined) {
      this.#recovering.delete(topic);
      this.#resumePending.delete(topic);
      if (message.recovered === true) this.#resumeSupport = 'yes';
    } else if (result === 'gap') {
      this.#requestRecovery(topic, subscription.store, message);
    }
    return result;
  }

  /**
   * A gap (or a new epoch) in `topic`: ask for the missed frames with `resume` when the server may support it,
   * else re-subscribe for a fresh snapshot. Repeated at most once per `recoveryTimeoutMs`.
   */
  #requestRecovery(topic: string, store: TopicStore, message: UpdateMessage | AlertMessage): void {
    const now = this.#now();
    const since = this.#recovering.get(topic);
    if (since !== undefined && now - since < this.#recoveryTimeoutMs) return;
    this.#recovering.set(topic, now);
    this.#reportError(
      new ClientError(
        ClientErrorCode.Gap,
        `${topic}: expected seq ${(store.seq ?? 0) + 1}${store.epoch ? ` of epoch ${store.epoch}` : ''}, got ${message.seq}${message.epoch ? ` of epoch ${message.epoch}` : ''}; recovering`,
        { topic },
      ),
    );
    const position = store.position;
    if (position !== undefined && since === undefined && this.#resumeSupport !== 'no') {
      this.#resumePending.add(topic);
      this.#send({ type: ClientMessageType.Resume, topics: { [topic]: position } });
    } else {
      this.#resubscribe([topic]);
    }
  }

  /** Unsubscribe then subscribe again: the server answers the subscribe with a fresh per-topic SNAPSHOT. */
  #resubscribe(topics: string[]): void {
    this.#send({ type: ClientMessageType.Unsubscribe, topics });
    this.#send({ type: ClientMessageType.Subscribe, topics });
  }

  #onServerError(message: ErrorMessage): void {
    const code = message.data?.code;
    if (this.#resumePending.size > 0 && (code === ErrorCode.UnknownType || code === ErrorCode.BadMessage)) {
      // A server without resume support: fall back to fresh snapshots.
      this.#resumeSupport = 'no';
      const topics = [...this.#resumePending];
      this.#resumePending.clear();
      this.#resubscribe(topics);
      return;
    }
    this.#reportError(
      new ClientError(ClientErrorCode.Server, `server error ${code}: ${message.data?.message ?? ''}`.trim(), {
        serverCode: code,
        topics: message.data?.topics,
      }),
    );
  }

  // -------------------------------------------------------------------------------------------------------------
  // Subscriptions
  // -------------------------------------------------------------------------------------------------------------

  #addRef(topic: string): Subscription {
    validateTopic(topic);
    let subscription = this.#subscriptions.get(topic);
    if (subscription === undefined) {
      subscription = { refs: 0, handlers: new Set(), store: new TopicStore() };
      this.#subscriptions.set(topic, subscription);
      this.#send({ type: ClientMessageType.Subscribe, topics: [topic] });
    }
    subscription.refs++;
    return subscription;
  }

  #dropRef(topic: string): void {
    const subscription = this.#subscriptions.get(topic);
    if (subscription === undefined) return;
    subscription.refs--;
    if (subscription.refs > 0) return;
    this.#subscriptions.delete(topic);
    this.#recovering.delete(topic);
    this.#resumePending.delete(topic);
    subscription.store.reset();
    this.#send({ type: ClientMessageType.Unsubscribe, topics: [topic] });
  }

  #dispatch(subscription: Subscription, event: TopicEvent): void {
    for (const handler of [...subscription.handlers]) {
      try {
        handler(event);
      } catch (error) {
        this.#reportListenerError(error, `${event.topic} handler`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Errors
  // -------------------------------------------------------------------------------------------------------------

  #reportError(error: ClientError): void {
    this.#events.emit('error', error);
  }

  #reportListenerError(error: unknown, where: string): void {
    // An `error` listener that throws is not reported again (that could loop).
    if (where === 'error') return;
    this.#reportError(
      new ClientError(ClientErrorCode.Handler, `a ${where} listener threw`, { cause: error }),
    );
  }
}

/**
 * Creates a client and starts connecting. See {@link ClientOptions}.
 *
 * ```ts
 * const client = createClient({ url: 'ws://localhost:8080/ws', topics: ['weather'] });
 * client.subscribe('weather', () => console.log([...client.state('weather').values()]));
 * ```
 */
export function createClient(options: ClientOptions): CityPulseClient {
  return new CityPulseClient(options);
}
