/**
 * `WebSocketService`: the design document's class. Tracks clients and their topic subscriptions, sends a snapshot on
 * connect, fans UPDATE / ALERT out to everyone or to one topic's subscribers, answers pings, and drops connections
 * that stay silent past the heartbeat timeout.
 *
 * Fast path: a published message is stamped with its topic's `seq`, serialised and framed once, then queued to each
 * subscriber of its topic (found through a topic index, no per-client filtering); every frame due to a socket within
 * one event-loop turn leaves in one write (see `outbound.ts`).
 *
 * @module
 */
import { isChangeShaped, parseUpdate, UpdateRejectedError } from '../protocol/state-model.js';
import type { EntityChange } from '../protocol/topics.js';
import { encodeEnvelope } from '../protocol/payloads.js';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import {
  ClientMessageType,
  CloseCode,
  DEFAULT_TOPICS,
  ErrorCode,
  ServerMessageType,
  assertNever,
  parseClientMessage,
  parseResumeQuery,
  type ClientMessage,
  type ProtocolError,
  type StreamPosition,
  type WebSocketMessage,
} from '../protocol/messages.js';
import { encodeTextFrame } from './frame.js';
import { ServerFrames, seqOf } from './frames.js';
import { Heartbeat } from './heartbeat.js';
import {
  DEFAULTS,
  type InputPath,
  type ServiceCounters,
  type ServiceState,
  type SnapshotProvider,
  type WebSocketServiceOptions,
} from './service-options.js';

import { FrameCompressor, negotiateDeflate, type DeflateAgreement } from './deflate.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { OutboundScheduler } from './outbound.js';
import { ClientSession, MAX_INBOX_FRAMES, type HeldFrame } from './client-session.js';
import { TopicIndex } from './topic-index.js';
import { encodeSequenced, type Broker, type SequencedMessage } from './broker.js'; // broker seam
import { InMemoryBroker } from './memory-broker.js';
import type { HistoryLookup } from './topic-log.js';
import { WsTransport } from './transport.js';
import { allowedTopics } from '../security/access.js';
import { ANONYMOUS, type Authenticator, type Principal } from '../security/auth.js';
import { ConnectionGuard } from '../security/connection-guard.js';
import { RateLimiter, type RateLimiterOptions } from '../security/limits.js';
import type { Metrics } from './metrics.js';
import {
  JsonBoundsError,
  checkJsonBounds,
  resolveJsonBounds,
  type JsonBounds,
  type JsonBoundsViolation,
} from '../protocol/json-bounds.js';

export type {
  InputPath,
  ServiceCounters,
  SnapshotProvider,
  WebSocketServiceOptions,
} from './service-options.js';

/**
 * Told of a valid state change published on `topic` (see {@link WebSocketService.onChange}): the normalised change,
 * the position it took, and the message as the publisher passed it (so a publisher can recognise its own).
 */
export type ChangeListener = (
  topic: string,
  change: EntityChange,
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
  readonly #heartbeatIntervalMs: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #maxPayloadBytes: number;
  readonly #maxSubscriptions: number;
  readonly #closeTimeoutMs: number;
  readonly #snapshotRetryMs: number;
  /** Subscriptions still owed a snapshot (theirs failed): retried once the broker is available. */
  readonly #unsynced = new Map<ClientSession, Set<string>>();
  #snapshotRetry: NodeJS.Timeout | null = null;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #authenticator: Authenticator | undefined;
  readonly #rateLimit: RateLimiterOptions | false;
  readonly #metrics: Metrics | undefined;
  /** Compressed forms of outgoing frames; `null` when compression is off. */
  readonly #compressor: FrameCompressor | null;
  /** Agreements made in the handshake's `'headers'` event, read back in `'connection'` (same request). */
  readonly #agreements = new WeakMap<IncomingMessage, DeflateAgreement>();
  /** Pings every session and terminates the silent ones. */
  readonly #heartbeat: Heartbeat<ClientSession>;
  #snapshotProvider: SnapshotProvider | null = null;
  /** UPDATE frames -> their topic: what a backlog may drop (set once per publish, not per client). */
  readonly #conflatable = new WeakMap<Buffer, string>();
  /** Told of every valid state change once it is sequenced (see {@link WebSocketService.onChange}). */
  readonly #changeListeners = new Set<ChangeListener>();
  readonly #jsonBounds: JsonBounds;
  /** Every frame this service encodes itself (CONNECTED, replies, snapshots, replays), and their caches. */
  readonly #frames: ServerFrames;
  #state: ServiceState = 'running';
  #closed: Promise<void> | null = null;
  /** Set while `close()` waits for the last client to go. */
  #onAllClosed: (() => void) | null = null;
  #counters = {
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
    this.#topicList = [...(options.topics ?? DEFAULT_TOPICS)];
    this.#topics = new Set(this.#topicList);
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs;
    this.#heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? DEFAULTS.heartbeatTimeoutMs;
    this.#maxPayloadBytes = options.maxPayloadBytes ?? DEFAULTS.maxPayloadBytes;
    this.#maxSubscriptions = options.maxSubscriptionsPerClient ?? this.#topicList.length;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs;
    this.#snapshotRetryMs = options.snapshotRetryMs ?? DEFAULTS.snapshotRetryMs;
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#authenticator = options.authenticator;
    this.#rateLimit = options.rateLimit ?? {};
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
      heartbeatIntervalMs: this.#heartbeatIntervalMs,
      heartbeatTimeoutMs: this.#heartbeatTimeoutMs,
      snapshotCacheSize: options.snapshotCacheSize ?? DEFAULTS.snapshotCacheSize,
      now: this.#now,
      position: (topic) => this.#broker.position(topic),
    });
    this.#broker.attach({
      deliver: (topic, seq, json) => this.#fanOut(topic, seq, json),
      subscribers: (topic) => this.#index.count(topic),
      resync: (topic) => this.#resync(topic),
      restart: (topic, epoch) => this.#restart(topic, epoch),
      available: () => this.#retryUnsynced(),
      broadcast: (json) => {
        if (this.#state === 'running') this.#broadcastLocal(json);
      },
    });
    this.#heartbeat = new Heartbeat<ClientSession>({
      intervalMs: this.#heartbeatIntervalMs,
      timeoutMs: this.#heartbeatTimeoutMs,
      now: this.#now,
      peers: () => this.#sessions,
      ping: (session) => session.transport.ping(),
      onExpired: (session, silentMs) => this.#onHeartbeatExpired(session, silentMs),
    });
    this.#outbound = new OutboundScheduler<ClientSession>({
      highWaterBytes: options.highWaterBytes,
      backlogBytes: options.backlogBytes,
      maxQueuedBytes: options.maxQueuedBytes,
      onOverflow: (session) => this.#onSlowConsumer(session),
      onBacklog: (session) => this.#conflate(session),
      onDrained: (session) => this.#refreshStaleTopics(session),
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
    this.#snapshotProvider = provider;
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
    const parsed = parseUpdate(topic, message.data);
    if (parsed.ok) return { ...message, data: parsed.change };
    this.#countRejected('library', 'BAD_UPDATE');
    throw new UpdateRejectedError(parsed.field, parsed.error);
  }

  /**
   * Registers `listener` for every valid state change published on any topic (an UPDATE whose `data` is a change by
   * `parseUpdate`, normalised), called once the change has its position (synchronously with the in-memory broker,
   * when the cluster store answered in cluster mode). The state holder (the `DataAggregator` attached to this
   * service) folds the library's publishes through it, so a late joiner's snapshot holds what the live clients
   * folded. Returns the function that unregisters it.
   */
  onChange(listener: ChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  #notifyChange(
    topic: string,
    change: EntityChange,
    position: StreamPosition,
    message: WebSocketMessage,
  ): void {
    for (const listener of this.#changeListeners) {
      try {
        listener(topic, change, position, message);
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
    this.#broadcastLocal(json);
    this.#broker.broadcast?.(json); // the other nodes' clients
  }

  /** Sends an encoded frame to every local client (a broadcast from here or from another node). */
  #broadcastLocal(json: string): void {
    const frame = encodeTextFrame(json);
    for (const session of this.#sessions) {
      if (session.state === 'handshaking') (session.heldBroadcasts ??= []).push(frame);
      else this.#send(session, frame);
    }
    this.#metrics?.messagesOut(frameType(json), undefined, this.#sessions.size, frame.length);
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
        if (message !== original && this.#changeListeners.size > 0) {
          const change = message.data as EntityChange; // normalised by #admitUpdate
          if (isPromiseLike(position)) {
            position.then(
              (p) => this.#notifyChange(topic, change, p, original),
              () => {},
            );
          } else {
            this.#notifyChange(topic, change, position, original);
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
        this.#fanOut(topic, seq, json);
        return { epoch, seq };
      }
      default:
        return assertNever(message.type);
    }
  }

  /** Local fan-out of one encoded frame (the broker's `deliver`): encode once, hold or queue per member. */
  #fanOut(topic: string, seq: number, json: string): void {
    const members = this.#index.membersOf(topic);
    if (members === undefined) return;
    const metrics = this.#metrics;
    const startedAt = metrics?.publishStarted() ?? 0;
    const frame = encodeTextFrame(json);
    // UPDATEs may be conflated for a client that falls behind; ALERTs never are.
    const conflatable = json.startsWith('{"type":"UPDATE"');
    if (conflatable) this.#conflatable.set(frame, topic);
    let sent = 0;
    for (const session of members) {
      const held = session.held?.get(topic);
      if (held !== undefined) held.push({ seq, frame });
      else if (!(conflatable && session.stale?.has(topic) === true)) {
        this.#send(session, frame);
        sent++;
      }
    }
    if (metrics !== undefined) {
      metrics.messagesOut(frameType(json), topic, sent, frame.length);
      metrics.publishFinished(topic, startedAt);
    }
  }

  /** The topic's stream restarted or lost frames: a fresh snapshot (`recovered: false`) to its subscribers. */
  #resync(topic: string): void {
    const members = this.#index.membersOf(topic);
    if (members === undefined) return;
    for (const session of [...members]) {
      if (session.state === 'open' && !session.held?.has(topic))
        this.#sendTopicSnapshots(session, [topic], true);
    }
  }

  /**
   * The topic's stream began a new life at seq 0 of `epoch` with an empty state (the cluster store lost its data):
   * each subscriber that is not waiting for a snapshot gets the empty SNAPSHOT of that epoch (`recovered: false`),
   * then every frame of the new life from seq 1, ALERTs included. Those waiting for a snapshot get theirs.
   */
  #restart(topic: string, epoch: string): void {
    const members = this.#index.membersOf(topic);
    if (members === undefined) return;
    const frame = this.#frames.topicSnapshotFrame(
      { [topic]: { entities: [], seq: 0, epoch } },
      topic,
      0,
      true,
    );
    for (const session of [...members]) {
      if (session.state !== 'open' || session.held?.has(topic)) continue;
      session.stale?.delete(topic);
      this.#unsynced.get(session)?.delete(topic);
      this.#send(session, frame);
    }
  }

  /** Marks the `topics` of `session` whose snapshot failed as owed one; retried when the broker is back. */
  #markUnsynced(session: ClientSession, topics: readonly string[]): void {
    if (session.state === 'closed') return;
    const owed = topics.filter((topic) => this.#index.has(session, topic));
    if (owed.length === 0) return;
    let set = this.#unsynced.get(session);
    if (set === undefined) {
      set = new Set();
      this.#unsynced.set(session, set);
    }
    for (const topic of owed) set.add(topic);
    // The broker's `available` signal retries at once; this timer covers a failure that raced that signal.
    if (this.#snapshotRetry === null && this.#state === 'running') {
      this.#snapshotRetry = setInterval(() => {
        if (this.#broker.isAvailable?.() !== false) this.#retryUnsynced();
      }, this.#snapshotRetryMs);
      this.#snapshotRetry.unref();
    }
  }

  /** Sends the snapshots owed since a failure (`recovered: false`); a failure again keeps them owed, quietly. */
  #retryUnsynced(): void {
    if (this.#state !== 'running') return;
    const owed = [...this.#unsynced];
    this.#unsynced.clear();
    this.#stopSnapshotRetry();
    for (const [session, topics] of owed) {
      const due = [...topics].filter(
        (topic) => session.state === 'open' && this.#index.has(session, topic) && !session.held?.has(topic),
      );
      if (due.length > 0) this.#sendTopicSnapshots(session, due, true, true);
    }
  }

  #stopSnapshotRetry(): void {
    if (this.#snapshotRetry !== null) clearInterval(this.#snapshotRetry);
    this.#snapshotRetry = null;
  }

  /** The topic's current position (its last `seq` and the epoch). */
  position(topic: string): StreamPosition {
    return this.#broker.position(topic);
  }

  /** The topic registry. */
  get topics(): readonly string[] {
    return this.#topicList;
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
    this.#wss.on('connection', this.#onConnection);
    if (this.#compressor !== null) this.#wss.on('headers', this.#onHeaders);
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
    this.#stopSnapshotRetry();
    this.#unsynced.clear();
    this.#wss.off('connection', this.#onConnection);
    this.#wss.off('headers', this.#onHeaders);
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

  // -------------------------------------------------------------------------------------------------------------
  // Connections
  // -------------------------------------------------------------------------------------------------------------

  /** The handshake's answer: adds our permessage-deflate agreement when the client offered one we can honour. */
  readonly #onHeaders = (headers: string[], req: IncomingMessage): void => {
    // A WebSocketServer with its own perMessageDeflate answered already: leave it (our frames then go plain).
    if (headers.some((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'))) return;
    const agreement = negotiateDeflate(req.headers['sec-websocket-extensions']);
    if (agreement === null) return;
    headers.push(`Sec-WebSocket-Extensions: ${agreement.response}`);
    this.#agreements.set(req, agreement);
  };

  readonly #onConnection = (ws: WebSocket, req: IncomingMessage, principal: Principal = ANONYMOUS): void => {
    ws.on('error', (error) => this.#logger.debug({ err: error }, 'socket error'));
    if (this.#state !== 'running') {
      ws.close(CloseCode.GoingAway, 'server shutting down');
      return;
    }
    const agreement = this.#agreements.get(req);
    const session = new ClientSession(
      randomUUID(),
      new WsTransport(ws, agreement === undefined ? undefined : { maxPayload: this.#maxPayloadBytes }),
      req.socket.remoteAddress ?? 'unknown',
      this.#now(),
    );
    if (agreement !== undefined) {
      this.#agreements.delete(req);
      session.windowBits = agreement.windowBits;
    }
    session.guard = new ConnectionGuard({
      principal,
      authenticator: this.#authenticator,
      now: this.#now,
      rateLimiter:
        this.#rateLimit === false ? undefined : new RateLimiter({ ...this.#rateLimit, now: this.#now }),
      onExpired: () => {
        this.#metrics?.tokenExpired();
        this.#logger.info({ clientId: session.id }, 'token expired');
        this.#outbound.flushNow(session);
        session.transport.close(CloseCode.TokenExpired, 'token expired: reconnect with a fresh token');
      },
    });
    this.#sessions.add(session);
    this.#counters.connectionsTotal++;
    this.#metrics?.connectionOpened();
    ws.on('message', (data, isBinary) => this.#onFrame(session, data, isBinary));
    ws.on('pong', () => {
      session.lastSeenAt = this.#now();
    });
    ws.on('close', (code, reason) =>
      this.#teardown(session, `closed ${code} ${reason.toString()}`.trim(), code),
    );

    const query = queryOf(req.url);
    const requested = splitTopics(query.get('topics'));
    const resumeQuery = query.get('resume');
    const resume = resumeQuery === null ? {} : parseResumeQuery(resumeQuery);
    const wanted = [...new Set([...requested, ...Object.keys(resume ?? {})])];
    const problem =
      resume === null
        ? { code: ErrorCode.BadMessage, message: 'resume: expected <topic>:<epoch>:<seq>[,...]', topics: [] }
        : this.#checkTopics(session, wanted);
    const subscribed = problem === null ? wanted : [];
    for (const topic of subscribed) this.#index.add(session, topic);

    // At debug: a line per connect is a cost a bare server does not pay in a storm ('client disconnected' stays).
    this.#logger.debug(
      { clientId: session.id, ip: session.remoteAddress, topics: subscribed },
      'client connected',
    );
    this.#counters.framesOut++;
    this.#outbound.enqueue(session, this.#frames.connectedFrame(session.id, subscribed));

    // The initial snapshot: the ?topics= ones, or every topic when the client named none.
    const resumed = problem === null ? Object.keys(resume ?? {}) : [];
    const requestedSet = new Set(requested);
    // Canonical: registry order, each topic once (the raw ?topics= list may repeat and reorder them).
    const snapshotTopics =
      problem === null && wanted.length > 0
        ? this.#topicList.filter((t) => requestedSet.has(t) && !Object.hasOwn(resume ?? {}, t))
        : allowedTopics(principal.topics, this.#topicList);
    for (const topic of subscribed) session.holdTopic(topic);
    this.#withSnapshot(
      (snapshot, callTimeSeqs) => {
        if (session.state === 'closed') return;
        const seqs = snapshotTopics.map((topic) => seqOf(snapshot, topic, callTimeSeqs));
        this.#send(session, this.#frames.fullSnapshotFrame(snapshot, snapshotTopics, seqs));
        snapshotTopics.forEach((topic, i) => {
          if (session.held?.has(topic)) this.#releaseHeld(session, topic, seqs[i] ?? 0);
        });
        this.#openSession(session, problem, resume ?? {}, resumed);
      },
      (error) => {
        if (session.state === 'closed') return;
        this.#logger.warn({ err: error, clientId: session.id }, 'snapshot provider failed');
        this.#send(session, this.#frames.frame(ServerMessageType.Snapshot, {}));
        this.#sendError(
          session,
          ErrorCode.SnapshotUnavailable,
          'the snapshot could not be produced',
          snapshotTopics,
        );
        for (const topic of snapshotTopics)
          if (session.held?.has(topic)) this.#releaseHeld(session, topic, -1);
        this.#markUnsynced(session, snapshotTopics);
        this.#openSession(session, problem, resume ?? {}, resumed);
      },
      snapshotTopics, // only what this snapshot shows
    );
  };

  /** Ends the handshake: held broadcasts, the connect-time problem, resumed topics, then queued client frames. */
  #openSession(
    session: ClientSession,
    problem: { code: ErrorCode; message: string; topics: readonly string[] } | null,
    resume: Record<string, StreamPosition>,
    resumed: readonly string[],
  ): void {
    session.state = 'open';
    if (session.heldBroadcasts !== null) {
      for (const frame of session.heldBroadcasts) this.#send(session, frame);
      session.heldBroadcasts = null;
    }
    if (problem !== null) this.#sendError(session, problem.code, problem.message, problem.topics);
    if (resumed.length > 0) this.#resumeTopics(session, resumed, resume);
    const inbox = session.inbox;
    session.inbox = null;
    if (inbox !== null) for (const frame of inbox) this.#handleFrame(session, frame.data, frame.isBinary);
  }

  #teardown(session: ClientSession, reason: string, code = 1006): void {
    if (session.state === 'closed') return;
    session.state = 'closed';
    session.guard?.dispose();
    this.#metrics?.connectionClosed(code);
    this.#index.removeMember(session);
    this.#outbound.discard(session);
    this.#sessions.delete(session);
    this.#unsynced.delete(session);
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

  /** The client fell behind: drop its queued UPDATEs; their topics get a fresh snapshot once it drains. */
  #conflate(session: ClientSession): void {
    const stale = (session.stale ??= new Set());
    const dropped = this.#outbound.retain(session, (frame) => {
      const topic = this.#conflatable.get(this.#compressor?.plainOf(frame) ?? frame);
      if (topic === undefined) return true;
      stale.add(topic);
      this.#metrics?.dropped('conflated', topic);
      return false;
    });
    if (stale.size === 0) session.stale = null;
    this.#counters.conflatedFrames += dropped;
    if (dropped > 0)
      this.#logger.debug({ clientId: session.id, dropped, topics: [...stale] }, 'slow consumer conflated');
  }

  /** The client caught up: replace what was conflated with one fresh SNAPSHOT per topic (`recovered: false`). */
  #refreshStaleTopics(session: ClientSession): void {
    const stale = session.stale;
    if (stale === null) return;
    session.stale = null;
    this.#metrics?.slowConsumer('snapshot');
    this.#sendTopicSnapshots(session, [...stale], true);
  }

  #onSlowConsumer(session: ClientSession): void {
    this.#counters.slowConsumerCloses++;
    this.#metrics?.slowConsumer('close');
    this.#logger.warn({ clientId: session.id, queuedBytes: session.bytes }, 'slow consumer closed');
    this.#outbound.discard(session);
    session.transport.close(CloseCode.SlowConsumer, 'slow consumer: reconnect and resume');
  }

  // -------------------------------------------------------------------------------------------------------------
  // Client frames
  // -------------------------------------------------------------------------------------------------------------

  #onFrame(session: ClientSession, data: RawData, isBinary: boolean): void {
    if (session.state === 'closed') return;
    session.lastSeenAt = this.#now();
    this.#counters.framesIn++;
    if (rawLength(data) > this.#maxPayloadBytes) {
      session.transport.close(CloseCode.MessageTooBig, 'frame too big');
      return;
    }
    const verdict = session.guard?.admitFrame() ?? 'ok';
    if (verdict !== 'ok') {
      this.#metrics?.rateLimited(verdict === 'close');
      this.#metrics?.messageIn('rate-limited');
      if (verdict === 'close') {
        this.#outbound.flushNow(session);
        session.transport.close(CloseCode.RateLimited, 'rate limit exceeded');
      } else {
        this.#sendError(session, ErrorCode.RateLimited, 'too many frames; frame dropped');
      }
      return;
    }
    if (session.state === 'handshaking') {
      session.inbox ??= [];
      if (session.inbox.length >= MAX_INBOX_FRAMES) {
        this.#sendError(session, ErrorCode.RateLimited, 'too many frames before the snapshot; frame dropped');
      } else {
        session.inbox.push({ data, isBinary });
      }
      return;
    }
    this.#handleFrame(session, data, isBinary);
  }

  private handleClientMessage(session: ClientSession, message: ClientMessage): void {
    switch (message.type) {
      case ClientMessageType.Subscribe:
        this.#subscribe(session, message.topics);
        return;
      case ClientMessageType.Unsubscribe:
        this.#unsubscribe(session, message.topics);
        return;
      case ClientMessageType.Ping:
        this.#sendMessage(
          session,
          ServerMessageType.Pong,
          message.id === undefined ? {} : { id: message.id },
        );
        return;
      case ClientMessageType.Resume: {
        const topics = Object.keys(message.topics);
        const problem = this.#checkTopics(session, topics);
        if (problem !== null) {
          this.#sendError(session, problem.code, problem.message, problem.topics);
          return;
        }
        for (const topic of topics) this.#index.add(session, topic);
        this.#sendMessage(session, ServerMessageType.Subscribed, { topics });
        this.#resumeTopics(session, topics, message.topics);
        return;
      }
      case ClientMessageType.Refresh:
        this.#refresh(session, message.token);
        return;
      default:
        assertNever(message);
    }
  }

  #handleFrame(session: ClientSession, data: RawData, isBinary: boolean): void {
    if (session.state === 'closed') return;
    const result = parseClientMessage(isBinary ? data : rawToString(data), this.#jsonBounds);
    this.#metrics?.messageIn(result.ok ? result.message.type : 'invalid');
    if (!result.ok) {
      if (isBoundsError(result.error)) this.#countRejected('ws', result.error.code);
      this.#sendError(session, result.error.code, result.error.message);
      return;
    }
    try {
      this.handleClientMessage(session, result.message);
    } catch (error) {
      this.#logger.error({ err: error, clientId: session.id }, 'failed to handle a client message');
      this.#sendError(session, ErrorCode.Internal, 'the server failed to handle the message');
    }
  }

  /** Replaces the connection's token; topics the new token no longer allows are unsubscribed. */
  #refresh(session: ClientSession, token: string): void {
    const guard = session.guard;
    if (guard === null) return;
    guard.refresh(token, this.#index.topicsOf(session)).then(
      (result) => {
        if (session.state === 'closed') return;
        if (!result.ok) {
          if (result.reason === 'superseded') return;
          if (result.reason !== 'auth-off') this.#metrics?.authFailure(result.reason);
          this.#sendError(
            session,
            ErrorCode.BadToken,
            result.reason === 'auth-off'
              ? 'authentication is not enabled on this server'
              : `token refused: ${result.reason}`,
          );
          return;
        }
        if (result.lost.length > 0) this.#unsubscribe(session, result.lost);
      },
      (error: unknown) => this.#logger.error({ err: error, clientId: session.id }, 'token refresh failed'),
    );
  }

  /** Why `topics` cannot be added to `session`'s subscriptions, or null when they can. */
  #checkTopics(
    session: ClientSession,
    topics: readonly string[],
  ): { code: ErrorCode; message: string; topics: readonly string[] } | null {
    const unknown = topics.filter((t) => !this.#topics.has(t));
    if (unknown.length > 0) {
      return {
        code: ErrorCode.UnknownTopic,
        message: `unknown topic(s): ${unknown
          .map((t) => t.slice(0, 64))
          .join(', ')
          .slice(0, 512)}`,
        topics: unknown.slice(0, 16),
      };
    }
    const forbidden = session.guard?.forbidden(topics) ?? [];
    if (forbidden.length > 0) {
      return {
        code: ErrorCode.Forbidden,
        message: `not allowed by your token: ${forbidden.join(', ').slice(0, 512)}`,
        topics: forbidden.slice(0, 16),
      };
    }
    const current = this.#index.topicsOf(session);
    const added = new Set(topics.filter((t) => !current.has(t))).size;
    if (current.size + added > this.#maxSubscriptions) {
      return {
        code: ErrorCode.TooManySubscriptions,
        message: `at most ${this.#maxSubscriptions} subscriptions per client`,
        topics: [...topics],
      };
    }
    return null;
  }

  #subscribe(session: ClientSession, requested: readonly string[]): void {
    const topics = [...new Set(requested)];
    const problem = this.#checkTopics(session, topics);
    if (problem !== null) {
      this.#sendError(session, problem.code, problem.message, problem.topics);
      return;
    }
    const added = topics.filter((topic) => this.#index.add(session, topic));
    this.#sendMessage(session, ServerMessageType.Subscribed, { topics });
    if (added.length > 0) this.#sendTopicSnapshots(session, added, false);
  }

  #unsubscribe(session: ClientSession, requested: readonly string[]): void {
    const topics = [...new Set(requested)];
    const unknown = topics.filter((t) => !this.#topics.has(t));
    if (unknown.length > 0) {
      this.#sendError(
        session,
        ErrorCode.UnknownTopic,
        `unknown topic(s): ${unknown.join(', ').slice(0, 512)}`,
        unknown.slice(0, 16),
      );
      return;
    }
    for (const topic of topics) {
      this.#index.remove(session, topic);
      session.releaseTopic(topic);
    }
    this.#sendMessage(session, ServerMessageType.Unsubscribed, { topics });
  }

  /**
   * Continues `topics` from the client's positions: replays the missed frames (marked `recovered: true`) when history
   * covers them, otherwise sends a fresh per-topic SNAPSHOT (marked `recovered: false`). Runs synchronously against
   * the log, so no live frame can slip between the replay and the live stream.
   */
  #resumeTopics(
    session: ClientSession,
    topics: readonly string[],
    positions: Record<string, StreamPosition>,
  ): void {
    const fallback: string[] = [];
    for (const topic of topics) {
      if (session.held?.has(topic)) session.releaseTopic(topic);
      const position = positions[topic];
      const lookup = position === undefined ? null : this.#broker.since(topic, position);
      // a cluster broker answers later; live frames are held meanwhile, then deduplicated by seq.
      if (isPromiseLike(lookup)) {
        session.holdTopic(topic);
        lookup.then(
          (result) => this.#finishResume(session, topic, (position as StreamPosition).seq, result),
          (error: unknown) => {
            this.#logger.warn({ err: error, clientId: session.id, topic }, 'history lookup failed');
            this.#finishResume(session, topic, 0, { covered: false, reason: 'expired' });
          },
        );
        continue;
      }
      if (lookup === null || !lookup.covered) {
        fallback.push(topic);
        continue;
      }
      for (const entry of lookup.entries) {
        this.#send(session, this.#frames.recoveredFrame(entry));
      }
    }
    if (fallback.length > 0) this.#sendTopicSnapshots(session, fallback, true);
  }

  /** Completes an asynchronous resume of one held topic: the replay then the held frames after it. */
  #finishResume(session: ClientSession, topic: string, fromSeq: number, lookup: HistoryLookup): void {
    if (session.state === 'closed' || !this.#index.has(session, topic) || !session.held?.has(topic)) return;
    if (!lookup.covered) {
      this.#sendTopicSnapshots(session, [topic], true);
      return;
    }
    let last = fromSeq;
    for (const entry of lookup.entries) {
      this.#send(session, this.#frames.recoveredFrame(entry));
      last = entry.seq;
    }
    this.#releaseHeld(session, topic, last);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Snapshots
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Calls the provider and hands its result (and the topics' positions at call time) to `done`, synchronously when
   * the provider is synchronous. Provider failures, thrown or rejected, go to `failed`.
   */
  #withSnapshot(
    done: (snapshot: unknown, callTimeSeqs: Map<string, StreamPosition>) => void,
    failed: (error: unknown) => void,
    topics: readonly string[] = this.#topicList,
  ): void {
    const callTimeSeqs = new Map<string, StreamPosition>();
    for (const topic of this.#topicList) callTimeSeqs.set(topic, this.#broker.position(topic));
    let result: unknown;
    try {
      result = this.#snapshotProvider === null ? null : this.#snapshotProvider(topics);
    } catch (error) {
      failed(error);
      return;
    }
    // An encoding failure (a provider's state JSON cannot encode) is a provider failure, never a crash.
    const finish = (snapshot: unknown): void => {
      try {
        done(snapshot, callTimeSeqs);
      } catch (error) {
        failed(error);
      }
    };
    if (isPromiseLike(result)) result.then(finish, (error: unknown) => failed(error));
    else finish(result);
  }

  /**
   * Holds `topics`, fetches a snapshot and sends one per-topic SNAPSHOT each, then the frames held meanwhile. On
   * failure the client gets `SNAPSHOT_UNAVAILABLE` (not again when `retry`) and the topics stay owed a snapshot.
   */
  #sendTopicSnapshots(
    session: ClientSession,
    topics: readonly string[],
    recoveryFallback: boolean,
    retry = false,
  ): void {
    for (const topic of topics) session.holdTopic(topic);
    this.#withSnapshot(
      (snapshot, callTimeSeqs) => {
        for (const topic of topics) {
          if (session.state === 'closed' || !this.#index.has(session, topic) || !session.held?.has(topic))
            continue;
          const seq = seqOf(snapshot, topic, callTimeSeqs);
          this.#send(session, this.#frames.topicSnapshotFrame(snapshot, topic, seq, recoveryFallback));
          this.#releaseHeld(session, topic, seq);
        }
      },
      (error) => {
        if (session.state === 'closed') return;
        this.#logger.warn({ err: error, clientId: session.id, topics }, 'snapshot provider failed');
        if (!retry)
          this.#sendError(
            session,
            ErrorCode.SnapshotUnavailable,
            'the snapshot could not be produced',
            topics,
          );
        for (const topic of topics) if (session.held?.has(topic)) this.#releaseHeld(session, topic, -1);
        this.#markUnsynced(session, topics);
      },
      topics,
    );
  }

  /** Stops holding `topic` and sends the held frames newer than `afterSeq`. */
  #releaseHeld(session: ClientSession, topic: string, afterSeq: number): void {
    const held: HeldFrame[] = session.releaseTopic(topic);
    for (const { seq, frame } of held) if (seq > afterSeq) this.#send(session, frame);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Sending
  // -------------------------------------------------------------------------------------------------------------

  /** Queues `frame` (plain) for `session`, in the form the session takes: compressed once per message, shared. */
  #send(session: ClientSession, frame: Buffer): void {
    this.#counters.framesOut++;
    const compressor = this.#compressor;
    this.#outbound.enqueue(
      session,
      session.windowBits === 0 || compressor === null ? frame : compressor.formFor(frame, session.windowBits),
    );
  }

  /**
   * Sends a reply made for this one session (CONNECTED, SUBSCRIBED, ERROR, PONG...) plain: small, never shared, so
   * compressing it would cost a zlib set-up per frame (per connection for CONNECTED) for a few bytes saved.
   */
  #sendMessage(session: ClientSession, type: ServerMessageType, data: unknown): void {
    this.#counters.framesOut++;
    this.#outbound.enqueue(session, this.#frames.frame(type, data));
  }

  #sendError(session: ClientSession, code: ErrorCode, message: string, topics?: readonly string[]): void {
    this.#counters.errors++;
    this.#sendMessage(
      session,
      ServerMessageType.Error,
      topics === undefined ? { code, message } : { code, message, topics },
    );
  }
}

function isBoundsError(error: ProtocolError): boolean {
  return error.code === ErrorCode.TooDeep || error.code === ErrorCode.TooLarge;
}

/** The `type` of an encoded server frame (it is always the first key). */
function frameType(json: string): string {
  return json.slice(9, json.indexOf('"', 9));
}

/** The query of a request target (`/ws?topics=a,b`), without parsing a whole URL. */
function queryOf(url: string | undefined): URLSearchParams {
  if (url === undefined) return new URLSearchParams();
  const start = url.indexOf('?');
  if (start === -1) return new URLSearchParams();
  const hash = url.indexOf('#', start);
  return new URLSearchParams(hash === -1 ? url.slice(start + 1) : url.slice(start + 1, hash));
}

function splitTopics(value: string | null): string[] {
  if (value === null) return [];
  return value.split(',').filter((t) => t.length > 0);
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}

function rawLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data).toString('utf8');
}
