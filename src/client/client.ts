/**
 * The citypulse client: one connection to a citypulse server, kept alive across failures, with the converged
 * entity state of every subscribed topic.
 *
 * The client composes its parts and routes the server's frames between them: the connection state machine and
 * its sockets (`connection.ts`), the heartbeat (`watchdog.ts`), the subscriptions and their state
 * (`subscriptions.ts`), sequence recovery (`recovery.ts`) and the typed events (`events.ts`, emitted here).
 *
 * @module
 */
import {
  ClientMessageType,
  ErrorCode,
  ServerMessageType,
  assertNever,
  parseServerMessage,
} from '../protocol/messages.js';
import type {
  AlertMessage,
  ClientMessage,
  ConnectedMessage,
  ErrorMessage,
  SnapshotMessage,
  UpdateMessage,
} from '../protocol/messages.js';
import { readAlert, type AlertView } from '../protocol/payloads.js';
import { isRecord } from '../shared/json.js';
import { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { ClientEvents, ConnectionState, EntityOf, ServerInfo, TopicHandler } from './events.js';
import { resolveClientOptions } from './options.js';
import type { ClientOptions } from './options.js';
import { Recovery } from './recovery.js';
import { Subscriptions, validateTopic } from './subscriptions.js';
import { toEntityChange, toSnapshotContent } from './topic-store.js';
import type { EntityValidator } from '../protocol/state-model.js';
import { buildConnectUrl } from './transport.js';
import { Watchdog } from './watchdog.js';

export type {
  AlertEvent,
  ClientEvents,
  ConnectionState,
  EntityOf,
  ServerInfo,
  SnapshotEvent,
  StateChange,
  TopicEvent,
  TopicHandler,
  UpdateEvent,
} from './events.js';
export type { ClientOptions } from './options.js';

const EMPTY_MAP: ReadonlyMap<string, never> = new Map<string, never>();

/** A live connection to a citypulse server. Create it with {@link createClient}. */
export class CityPulseClient {
  readonly #events = new Emitter<ClientEvents>((error, event) =>
    this.#reportListenerError(error, String(event)),
  );
  readonly #subscriptions: Subscriptions;
  readonly #recovery: Recovery;
  readonly #watchdog: Watchdog;
  readonly #connection: Connection;
  #serverInfo: ServerInfo | null = null;
  /** The validator UPDATEs are folded with, per topic (`undefined`: the base rule). */
  readonly #entityValidator: ((topic: string) => EntityValidator) | undefined;

  constructor(options: ClientOptions) {
    const resolved = resolveClientOptions(options);
    this.#entityValidator = resolved.entityValidator;
    const send = (message: ClientMessage) => this.#connection.send(message);
    const reportError = (error: ClientError) => this.#reportError(error);
    this.#subscriptions = new Subscriptions({
      onFirstHold: (topic) => send({ type: ClientMessageType.Subscribe, topics: [topic] }),
      onLastRelease: (topic) => {
        this.#recovery.settle(topic);
        send({ type: ClientMessageType.Unsubscribe, topics: [topic] });
      },
      onHandlerError: (error, where) => this.#reportListenerError(error, where),
    });
    this.#recovery = new Recovery(resolved.recoveryTimeoutMs, { now: resolved.now, send, reportError });
    this.#watchdog = new Watchdog({
      pingIntervalMs: resolved.pingIntervalMs,
      heartbeatTimeoutMs: resolved.heartbeatTimeoutMs,
      now: resolved.now,
      setTimer: resolved.setTimer,
      clearTimer: resolved.clearTimer,
      send,
      reportError,
      onExpired: () => this.#connection.drop('heartbeat timeout'),
    });
    this.#connection = new Connection(resolved, {
      connectUrl: (token) =>
        buildConnectUrl({
          url: resolved.url,
          topics: this.topics,
          resume: this.#subscriptions.resumePositions(),
          token,
        }),
      onFrame: (data) => this.#onFrame(data),
      onTransportDown: () => {
        this.#watchdog.stop();
        this.#recovery.onTransportDown();
      },
      onShutdown: () => this.#recovery.onShutdown(),
      onStateChange: (change) => this.#events.emit('state', change),
      reportError,
    });
    for (const topic of options.topics ?? []) this.#subscriptions.hold(topic);
    this.#connection.connect();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Public API
  // -------------------------------------------------------------------------------------------------------------

  /** The connection state. */
  get connectionState(): ConnectionState {
    return this.#connection.state;
  }

  /** What the server announced in the last `CONNECTED`, or `null` before the first connection. */
  get serverInfo(): ServerInfo | null {
    return this.#serverInfo;
  }

  /** Topics the client is subscribed to (or will subscribe to on the next connection). */
  get topics(): string[] {
    return this.#subscriptions.topics;
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
    const subscription = this.#subscriptions.hold(topic);
    const entry = handler === undefined ? undefined : (handler as TopicHandler);
    if (entry !== undefined) subscription.handlers.add(entry);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      if (entry !== undefined) subscription.handlers.delete(entry);
      this.#subscriptions.release(topic);
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

  /**
   * The alerts active on `topic` (every subscribed topic, in subscription order, when `topic` is omitted), oldest
   * first, each read by `readAlert` as an {@link AlertView}: the alerts the server held when the topic's last
   * snapshot was taken (on connect, subscribe or a resume that fell back to a snapshot), folded with every ALERT
   * after it by the protocol's rule (`applyAlert`). Empty before the first snapshot and for a topic not subscribed.
   */
  activeAlerts(topic?: string): AlertView[] {
    const topics = topic === undefined ? this.#subscriptions.topics : [topic];
    const out: AlertView[] = [];
    for (const name of topics) {
      const store = this.#subscriptions.get(name)?.store;
      for (const data of store?.alerts.values() ?? []) out.push(readAlert(data, name));
    }
    return out;
  }

  /** The stream position of `topic`'s state (`seq`, and `epoch` when the server sends one). */
  position(topic: string): { readonly seq: number; readonly epoch: string | undefined } | undefined {
    return this.#subscriptions.position(topic);
  }

  /** Closes the connection for good (code 1000) and clears every timer. Idempotent. */
  close(): void {
    this.#connection.close();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Frames
  // -------------------------------------------------------------------------------------------------------------

  #onFrame(data: unknown): void {
    this.#watchdog.touch();
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
    const connection = this.#connection;
    connection.acknowledge();
    this.#serverInfo = message.data;
    this.#recovery.onConnected();
    // Reconcile: topics added or dropped while this connection was being set up.
    // The server rejects a whole subscription when one topic is unknown, so only known topics are asked for.
    const onServer = new Set(Array.isArray(message.data.subscribed) ? message.data.subscribed : []);
    const served = new Set(Array.isArray(message.data.topics) ? message.data.topics : this.topics);
    const unknown = this.topics.filter((topic) => !served.has(topic));
    const missing = this.topics.filter((topic) => served.has(topic) && !onServer.has(topic));
    const extra = [...onServer].filter((topic) => !this.#subscriptions.has(topic));
    const epoch = connection.epoch;
    this.#watchdog.start(message.data, () => epoch === connection.epoch);
    connection.markConnected();
    if (missing.length > 0) connection.send({ type: ClientMessageType.Subscribe, topics: missing });
    if (extra.length > 0) connection.send({ type: ClientMessageType.Unsubscribe, topics: extra });
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
    this.#recovery.settle(topic);
    const entities = subscription.store.entities;
    this.#events.emit('snapshot', { topic, message, entities });
    this.#subscriptions.dispatch(subscription, { type: 'snapshot', topic, message, entities });
  }

  #validatorOf(topic: string | undefined): EntityValidator | undefined {
    return topic === undefined ? undefined : this.#entityValidator?.(topic);
  }

  #onUpdate(message: UpdateMessage): void {
    const topic = message.topic;
    const change = toEntityChange(message.data, topic, this.#validatorOf(topic));
    if (topic === undefined) {
      this.#events.emit('update', { topic, message, change });
      return;
    }
    const subscription = this.#subscriptions.get(topic);
    if (subscription === undefined) return;
    if (this.#recovery.fold(topic, subscription.store, message, change) !== 'applied') return;
    this.#events.emit('update', { topic, message, change });
    this.#subscriptions.dispatch(subscription, {
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
    if (this.#recovery.fold(topic, subscription.store, message, null) !== 'applied') return;
    this.#events.emit('alert', { topic, message, alert });
    this.#subscriptions.dispatch(subscription, {
      type: 'alert',
      topic,
      message,
      alert,
      entities: subscription.store.entities,
    });
  }

  #onServerError(message: ErrorMessage): void {
    const code = message.data?.code;
    if (this.#recovery.onServerError(code)) return;
    this.#reportError(
      new ClientError(ClientErrorCode.Server, `server error ${code}: ${message.data?.message ?? ''}`.trim(), {
        serverCode: code,
        topics: message.data?.topics,
      }),
    );
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
