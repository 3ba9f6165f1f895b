/**
 * `WebSocketService`: the design document's class. Tracks clients and their topic subscriptions, sends a snapshot on
 * connect, fans UPDATE / ALERT out to everyone or to one topic's subscribers, answers pings, and drops connections
 * that stay silent past the heartbeat timeout.
 *
 * The service is the public face and the lifecycle (publish, close, the one teardown path of a session); the work is
 * done by the parts it composes over one shared {@link ServiceContext}: `handshake.ts` (connect), `commands.ts`
 * (client frames), `snapshots.ts` (snapshots and the owed-snapshot retry), `resume.ts`, `fan-out.ts` (fan-out,
 * broadcasts, conflation) and `heartbeat.ts`.
 *
 * Fast path: a published message is stamped with its topic's `seq`, serialised and framed once, then queued to each
 * subscriber of its topic (found through a topic index, no per-client filtering); every frame due to a socket within
 * one event-loop turn leaves in one write (see `outbound.ts`).
 *
 * @module
 */
import { isChangeShaped, UpdateRejectedError } from '../protocol/state-model.js';
import { resolveTopicRegistry, type TopicRegistry } from '../protocol/topic-registry.js';
import type { EntityChange } from '../protocol/topics.js';
import { encodeEnvelope } from '../protocol/payloads.js';
import type { WebSocketServer } from 'ws';
import { CloseCode, assertNever, type StreamPosition, type WebSocketMessage } from '../protocol/messages.js';
import { ServerFrames } from './frames.js';
import { Heartbeat } from './heartbeat.js';
import {
  DEFAULTS,
  type InputPath,
  type ServiceCounters,
  type ServiceState,
  type SnapshotProvider,
  type WebSocketServiceOptions,
} from './service-options.js';

import { FrameCompressor } from './deflate.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { OutboundScheduler } from './outbound.js';
import type { ClientSession } from './client-session.js';
import { TopicIndex } from './topic-index.js';
import { encodeSequenced, type Broker, type SequencedMessage } from './broker.js'; // broker seam
import { InMemoryBroker } from './memory-broker.js';
import type { Metrics } from './metrics.js';
import {
  JsonBoundsError,
  checkJsonBounds,
  resolveJsonBounds,
  type JsonBounds,
  type JsonBoundsViolation,
} from '../protocol/json-bounds.js';
import {
  SessionSender,
  isPromiseLike,
  type MutableCounters,
  type ServiceContext,
} from './service-context.js';
import { Snapshots } from './snapshots.js';
import { Resumer } from './resume.js';
import { FanOut } from './fan-out.js';
import { Commands } from './commands.js';
import { Handshake } from './handshake.js';
export type {
  InputPath,
  ServiceCounters,
  SnapshotProvider,
  WebSocketServiceOptions,
} from './service-options.js';

/**
 * A sequenced message that may change a topic's state: an UPDATE's normalised entity change (by `parseUpdate`), or
 * an ALERT's `data` (its effect on the active alerts is the protocol's `applyAlert` rule).
 */
export type StateEvent =
  | { readonly type: 'UPDATE'; readonly change: EntityChange }
  | { readonly type: 'ALERT'; readonly data: unknown };

/**
 * Told of a state event published on `topic` (see {@link WebSocketService.onChange}): a valid entity change or an
 * ALERT, the position it took, and the message as the publisher passed it (so a publisher can recognise its own).
 */
export type ChangeListener = (
  topic: string,
  event: StateEvent,
  position: StreamPosition,
  message: WebSocketMessage,
) => void;

/** The real-time hub between publishers (the aggregator, the HTTP API) and WebSocket clients. */
export class WebSocketService {
  readonly #wss: WebSocketServer;
  readonly #sessions = new Set<ClientSession>();
  readonly #index = new TopicIndex<ClientSession>();
  readonly #broker: Broker;
  readonly #outbound: OutboundScheduler<ClientSession>;
  readonly #topics: ReadonlySet<string>;
  readonly #topicList: readonly string[];
  /** The topics served and their entity validators. */
  readonly #registry: TopicRegistry;
  readonly #closeTimeoutMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #metrics: Metrics | undefined;
  /** Compressed forms of outgoing frames; `null` when compression is off. */
  readonly #compressor: FrameCompressor | null;
  /** Pings every session and terminates the silent ones. */
  readonly #heartbeat: Heartbeat<ClientSession>;
  /** Told of every valid state change and ALERT once it is sequenced (see {@link WebSocketService.onChange}). */
  readonly #changeListeners = new Set<ChangeListener>();
  readonly #jsonBounds: JsonBounds;
  /** Every frame this service encodes itself (CONNECTED, replies, snapshots, replays), and their caches. */
  readonly #frames: ServerFrames;
  /** Snapshots, and the subscriptions owed one after a failure. */
  readonly #snapshots: Snapshots;
  /** Fan-out, broadcasts and the slow-consumer policy. */
  readonly #fanOut: FanOut;
  /** The connect side: deflate agreement, session set-up, the initial snapshot. */
  readonly #handshake: Handshake;
  #state: ServiceState = 'running';
  #closed: Promise<void> | null = null;
  /** Set while `close()` waits for the last client to go. */
  #onAllClosed: (() => void) | null = null;
  readonly #counters: MutableCounters = {
    published: 0,
    framesOut: 0,
    framesIn: 0,
    errors: 0,
    heartbeatTerminations: 0,
    slowConsumerCloses: 0,
    conflatedFrames: 0,
    connectionsTotal: 0,
    rejected: 0,
  };

  /**
   * Attaches to `wss`: every connection it accepts from now on is served by this service.
   * @param wss a `ws` WebSocketServer (typically `noServer: true`, fed by an HTTP upgrade handler)
   */
  constructor(wss: WebSocketServer, options: WebSocketServiceOptions = {}) {
    this.#wss = wss;
    this.#registry = options.registry ?? resolveTopicRegistry(options.topics);
    this.#topicList = this.#registry.names;
    this.#topics = new Set(this.#topicList);
    const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs;
    const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? DEFAULTS.heartbeatTimeoutMs;
    const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULTS.maxPayloadBytes;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs;
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#metrics = options.metrics;
    this.#jsonBounds = resolveJsonBounds(options.jsonBounds);
    const compression = options.compression ?? DEFAULTS.compression;
    this.#compressor =
      compression === false ? null : new FrameCompressor(compression === true ? {} : compression);
    // The broker sequences UPDATE/ALERT and calls back `deliver` for local fan-out.
    this.#broker =
      options.broker ??
      new InMemoryBroker({
        historySize: options.historySize,
        historyTtlMs: options.historyTtlMs,
        now: this.#now,
        epoch: options.epoch,
      });
    this.#frames = new ServerFrames({
      topics: this.#topicList,
      heartbeatIntervalMs,
      heartbeatTimeoutMs,
      snapshotCacheSize: options.snapshotCacheSize ?? DEFAULTS.snapshotCacheSize,
      now: this.#now,
      position: (topic) => this.#broker.position(topic),
    });
    this.#outbound = new OutboundScheduler<ClientSession>({
      highWaterBytes: options.highWaterBytes,
      backlogBytes: options.backlogBytes,
      maxQueuedBytes: options.maxQueuedBytes,
      onOverflow: (session) => this.#fanOut.onSlowConsumer(session),
      onBacklog: (session) => this.#fanOut.conflate(session),
      onDrained: (session) => this.#fanOut.refreshStaleTopics(session),
    });
    const ctx: ServiceContext = {
      sessions: this.#sessions,
      index: this.#index,
      broker: this.#broker,
      outbound: this.#outbound,
      frames: this.#frames,
      compressor: this.#compressor,
      topics: this.#topics,
      topicList: this.#topicList,
      logger: this.#logger,
      now: this.#now,
      metrics: this.#metrics,
      counters: this.#counters,
      state: () => this.#state,
      countRejected: (path, code) => this.#countRejected(path, code),
      sender: new SessionSender(this.#outbound, this.#frames, this.#compressor, this.#counters),
    };
    this.#snapshots = new Snapshots(ctx, options.snapshotRetryMs ?? DEFAULTS.snapshotRetryMs);
    const resumer = new Resumer(ctx, this.#snapshots);
    this.#fanOut = new FanOut(ctx, this.#snapshots);
    const commands = new Commands(ctx, this.#snapshots, resumer, {
      maxPayloadBytes,
      maxSubscriptions: options.maxSubscriptionsPerClient ?? this.#topicList.length,
      jsonBounds: this.#jsonBounds,
    });
    this.#handshake = new Handshake(ctx, commands, this.#snapshots, resumer, {
      maxPayloadBytes,
      authenticator: options.authenticator,
      rateLimit: options.rateLimit ?? {},
      teardown: (session, reason, code) => this.#teardown(session, reason, code),
    });
    this.#broker.attach({
      deliver: (topic, seq, json) => this.#fanOut.fanOut(topic, seq, json),
      subscribers: (topic) => this.#index.count(topic),
      resync: (topic) => this.#snapshots.resync(topic),
      restart: (topic, epoch) => this.#snapshots.restart(topic, epoch),
      available: () => this.#snapshots.retryUnsynced(),
      broadcast: (json) => {
        if (this.#state === 'running') this.#fanOut.broadcastLocal(json);
      },
      registry: this.#registry,
    });
    this.#heartbeat = new Heartbeat<ClientSession>({
      intervalMs: heartbeatIntervalMs,
      timeoutMs: heartbeatTimeoutMs,
      now: this.#now,
      peers: () => this.#sessions,
      ping: (session) => session.transport.ping(),
      onExpired: (session, silentMs) => this.#onHeartbeatExpired(session, silentMs),
    });
    this.initialize();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Public API (the design's, then additions)
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Sets where snapshots come from: a function returning an object keyed by topic name -> that topic's state
   * (synchronously or as a Promise). A topic state that is an object with a numeric `seq` tells the service which
   * message it reflects; otherwise the topic's position when the provider was called is used. Return the same
   * object while nothing changed: its encoding is cached by identity.
   */
  setSnapshotProvider(provider: SnapshotProvider): void {
    this.#snapshots.setProvider(provider);
  }

  /**
   * The JSON bounds this service enforces (from the `jsonBounds` option). Other input paths of the same server
   * (the HTTP API) check against these through {@link checkInput}.
   */
  get jsonBounds(): JsonBounds {
    return this.#jsonBounds;
  }

  /**
   * Checks an untrusted decoded value against {@link jsonBounds}. A violation is counted (`counters().rejected`,
   * the `citypulse_inputs_rejected_total` metric under `path`) and returned; `null` means the value may be used.
   */
  checkInput(value: unknown, path: InputPath): JsonBoundsViolation | null {
    const violation = checkJsonBounds(value, this.#jsonBounds);
    if (violation !== null) this.#countRejected(path, violation.code);
    return violation;
  }

  #countRejected(path: InputPath, code: string): void {
    this.#counters.rejected++;
    this.#metrics?.inputRejected(path, code);
  }

  /** Throws (counted) before anything is sequenced or sent when `data` is outside the bounds. */
  #admit(data: unknown): void {
    const violation = this.checkInput(data, 'library');
    if (violation !== null) throw new JsonBoundsError(violation);
  }

  /**
   * The protocol's one rule for an UPDATE (`parseUpdate`): change-shaped `data` must be a valid change of the
   * topic's state and goes on normalised; other `data` is an opaque message that changes no state anywhere.
   */
  #admitUpdate(topic: string, message: WebSocketMessage): WebSocketMessage {
    if (!isChangeShaped(message.data)) return message;
    const parsed = this.#registry.parseUpdate(topic, message.data);
    if (parsed.ok) return { ...message, data: parsed.change };
    this.#countRejected('library', 'BAD_UPDATE');
    throw new UpdateRejectedError(parsed.field, parsed.error);
  }

  /**
   * Registers `listener` for every valid state change published on any topic (an UPDATE whose `data` is a change by
   * `parseUpdate`, normalised, and every ALERT, whose `data` may raise or end an active alert), called once the
   * message has its position (synchronously with the in-memory broker,
   * when the cluster store answered in cluster mode). The state holder (the `DataAggregator` attached to this
   * service) folds the library's publishes through it, so a late joiner's snapshot holds what the live clients
   * folded (entities and active alerts). Returns the function that unregisters it.
   */
  onChange(listener: ChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  #notifyChange(topic: string, event: StateEvent, position: StreamPosition, message: WebSocketMessage): void {
    for (const listener of this.#changeListeners) {
      try {
        listener(topic, event, position, message);
      } catch (error) {
        this.#logger.error({ err: error, topic }, 'change listener failed');
      }
    }
  }

  /**
   * Sends `message` to every connected client (no topic filter, no `seq`: not kept in history).
   * @throws JsonBoundsError (`code` `TOO_DEEP`, `TOO_LARGE` or `NOT_JSON`) when `data` is outside the JSON bounds;
   *   nothing is sent.
   */
  broadcast(message: WebSocketMessage): void {
    if (this.#state === 'closed') return;
    this.#admit(message.data);
    this.#counters.published++;
    const json = encodeEnvelope({
      type: message.type,
      topic: message.topic,
      data: message.data,
      timestamp: message.timestamp,
    });
    this.#fanOut.broadcastLocal(json);
    this.#broker.broadcast?.(json); // the other nodes' clients
  }

  /**
   * Sends `message` to the subscribers of `topic`; UPDATE and ALERT take the topic's next `seq`.
   * @throws as {@link publish} does.
   */
  broadcastToTopic(topic: string, message: WebSocketMessage): void {
    this.publish(topic, message);
  }

  /** Number of connected clients. */
  getClientCount(): number {
    return this.#sessions.size;
  }

  /** Number of clients subscribed to `topic`. */
  getTopicSubscribers(topic: string): number {
    return this.#index.count(topic);
  }

  /**
   * Publishes on `topic` and returns the position the message took. UPDATE and ALERT take the topic's next `seq`
   * and enter its history (through the broker: synchronously with the default in-memory broker, as a Promise with
   * a cluster broker, which may reject while the cluster store is unreachable); SNAPSHOT is stamped with the
   * current `seq`; PONG carries none.
   * @throws Error with `code: 'ERR_UNKNOWN_TOPIC'` when `topic` is not in the registry.
   * @throws JsonBoundsError (`code` `TOO_DEEP`, `TOO_LARGE` or `NOT_JSON`) when `data` is outside the JSON bounds;
   *   the message takes no `seq` (the next one published takes the next number, no hole) and is counted.
   * @throws UpdateRejectedError (`code` `BAD_UPDATE`, `field`) for an UPDATE whose `data` has `upserts`/`removes`
   *   but is not a valid change of the topic's state (`parseUpdate`); likewise no `seq`, counted. In every mode.
   */
  publish(topic: string, message: WebSocketMessage): StreamPosition | Promise<StreamPosition> {
    if (!this.#topics.has(topic)) {
      throw Object.assign(new Error(`unknown topic "${topic}"`), { code: 'ERR_UNKNOWN_TOPIC' });
    }
    if (this.#state === 'closed') return this.#broker.position(topic);
    this.#admit(message.data);
    const original = message;
    if (message.type === 'UPDATE') message = this.#admitUpdate(topic, message);
    this.#counters.published++;
    switch (message.type) {
      case 'UPDATE':
      case 'ALERT': {
        const position = this.#broker.publish(topic, message as SequencedMessage); // type narrowed by the case
        // A state event: a valid entity change (normalised by #admitUpdate) or an ALERT; opaque UPDATEs are none.
        const event: StateEvent | null =
          message.type === 'ALERT'
            ? { type: 'ALERT', data: message.data }
            : message !== original
              ? { type: 'UPDATE', change: message.data as EntityChange }
              : null;
        if (event !== null && this.#changeListeners.size > 0) {
          if (isPromiseLike(position)) {
            position.then(
              (p) => this.#notifyChange(topic, event, p, original),
              () => {},
            );
          } else {
            this.#notifyChange(topic, event, position, original);
          }
        }
        if (isPromiseLike(position)) {
          // Handled here (logged) so a caller that ignores the Promise never causes an unhandled rejection.
          position.catch((error: unknown) => this.#logger.warn({ err: error, topic }, 'publish failed'));
        }
        return position;
      }
      case 'SNAPSHOT':
      case 'PONG': {
        const { epoch, seq } = this.#broker.position(topic);
        const json =
          message.type === 'SNAPSHOT'
            ? encodeSequenced(topic, message, seq, epoch)
            : encodeEnvelope({ type: message.type, topic, data: message.data, timestamp: message.timestamp });
        this.#fanOut.fanOut(topic, seq, json);
        return { epoch, seq };
      }
      default:
        return assertNever(message.type);
    }
  }

  /** The topic's current position (its last `seq` and the epoch). */
  position(topic: string): StreamPosition {
    return this.#broker.position(topic);
  }

  /** The names of the topics served, in registry order. */
  get topics(): readonly string[] {
    return this.#topicList;
  }

  /** The topic registry: every topic served, its definition and its entity validator. */
  get registry(): TopicRegistry {
    return this.#registry;
  }

  /** The epoch of this service's topic sequences (of the first topic; with a cluster broker each topic has its own). */
  get epoch(): string {
    return this.#broker.position(this.#topicList[0] ?? '').epoch;
  }

  /** The broker this service publishes through. */
  get broker(): Broker {
    return this.#broker;
  }

  /** Counters since start. */
  counters(): ServiceCounters {
    return {
      ...this.#counters,
      bytesOut: this.#outbound.bytesWritten,
      writes: this.#outbound.writes,
      compressions: this.#compressor?.compressions ?? 0,
      queuedBytes: [...this.#sessions].reduce((n, session) => n + session.bytes, 0),
      snapshotCacheEntries: this.#frames.snapshotCacheEntries,
    };
  }

  /**
   * Stops the heartbeat, stops accepting connections, closes every client with 1001 (`drainMs` spreads the closes
   * evenly over that window so clients do not all reconnect elsewhere in the same millisecond) and waits, up to
   * `closeTimeoutMs` after the last close, for them to go, terminating stragglers. Idempotent.
   */
  close(options: { drainMs?: number } = {}): Promise<void> {
    this.#closed ??= this.#shutdown(Math.max(0, options.drainMs ?? 0));
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Lifecycle
  // -------------------------------------------------------------------------------------------------------------

  private initialize(): void {
    this.#wss.on('connection', this.#handshake.onConnection);
    if (this.#compressor !== null) this.#wss.on('headers', this.#handshake.onHeaders);
    this.#heartbeat.start();
  }

  /** A session silent past the heartbeat timeout: terminated (a dead peer never finishes a closing handshake). */
  #onHeartbeatExpired(session: ClientSession, silentMs: number): void {
    this.#counters.heartbeatTerminations++;
    this.#metrics?.heartbeatTerminated();
    this.#logger.info({ clientId: session.id, silentMs }, 'heartbeat timeout');
    session.transport.terminate();
    this.#teardown(session, 'heartbeat timeout');
  }

  async #shutdown(drainMs: number): Promise<void> {
    this.#state = 'closing';
    this.#snapshots.dispose();
    this.#wss.off('connection', this.#handshake.onConnection);
    this.#wss.off('headers', this.#handshake.onHeaders);
    this.#heartbeat.stop();
    const sessions = [...this.#sessions];
    const allGone = new Promise<'gone'>((resolve) => {
      this.#onAllClosed = () => resolve('gone');
      if (this.#sessions.size === 0) resolve('gone');
    });
    // Spread over `drainMs` in up to 50 slices; clients not yet told keep receiving meanwhile.
    const slices = drainMs > 0 ? Math.min(sessions.length, 50) : 1;
    for (let slice = 0; slice < slices; slice++) {
      const from = Math.floor((slice * sessions.length) / slices);
      const to = Math.floor(((slice + 1) * sessions.length) / slices);
      for (const session of sessions.slice(from, to)) {
        if (session.state === 'closed') continue;
        this.#outbound.flushNow(session);
        session.transport.close(CloseCode.GoingAway, 'server shutting down');
      }
      if (slice < slices - 1) await new Promise((resolve) => setTimeout(resolve, drainMs / slices));
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#closeTimeoutMs);
    });
    const outcome = await Promise.race([allGone, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      for (const session of this.#sessions) {
        session.transport.terminate();
        this.#teardown(session, 'shutdown timeout');
      }
    }
    this.#outbound.dispose();
    this.#state = 'closed';
  }

  /** The one teardown path of a session: out of every index and queue, counted and logged. Idempotent. */
  #teardown(session: ClientSession, reason: string, code = 1006): void {
    if (session.state === 'closed') return;
    session.state = 'closed';
    session.guard?.dispose();
    this.#metrics?.connectionClosed(code);
    this.#index.removeMember(session);
    this.#outbound.discard(session);
    this.#sessions.delete(session);
    this.#snapshots.forget(session);
    this.#logger.info(
      {
        clientId: session.id,
        ip: session.remoteAddress,
        reason,
        durationMs: this.#now() - session.connectedAt,
      },
      'client disconnected',
    );
    if (this.#sessions.size === 0) this.#onAllClosed?.();
  }
}
