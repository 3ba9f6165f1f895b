/**
 * `RedisBroker`: several citypulse nodes act as one service through Redis. This module composes the broker's parts
 * and implements the gateway's `Broker` seam with them:
 *
 * - Publish (`redis-publish.ts`): one Lua script takes the topic's next seq, appends the frame to the topic's
 *   stream, applies the entity change to the topic's state hash and PUBLISHes the frame on the topic's channel (see
 *   `redis-scripts.ts`), so the channel carries frames in seq order and the state always matches its seq.
 * - Delivery (`redis-subscriptions.ts`, `redis-delivery.ts`): a node SUBSCRIBEs to a topic's channel only while it
 *   has local subscribers (watch on demand, unwatch by a periodic sweep). Every frame, its own included, reaches
 *   local clients through the channel, so all nodes deliver in seq order. A frame at or below the last delivered
 *   seq is dropped (exactly once); a frame past a gap (pub/sub is at-most-once: a reconnect loses what was in
 *   flight) makes the node fill the gap from the stream first; a gap the stream no longer covers, or a new epoch
 *   (Redis lost its data), makes the node send its clients fresh snapshots.
 * - History and snapshots (`redis-history.ts`, `redis-snapshot.ts`) are read from Redis, after the channel is
 *   subscribed, so nothing falls between a snapshot (or a replay) and the live frames.
 * - A new epoch (Redis lost its data) starts with an empty state at seq 0: the node tells its clients so
 *   (`BrokerHost.restart`) and delivers the new epoch's frames from seq 1, read from the stream when they were not
 *   all received live, so no acknowledged frame of the new epoch is skipped.
 * - Every command has a deadline (`commandTimeoutMs`, the whole publish included), and a periodic PING notices a
 *   Redis that holds its connections open but answers nothing (frozen): the broker is then `stalled`, not `ready`
 *   (`redis-connection.ts`). When Redis is back (reconnected or answering again), every topic a local client needs
 *   is subscribed again, the streams fill what was missed, and the host retries the snapshots that failed
 *   (`BrokerHost.available`).
 * - `close()` never waits on Redis for longer than one good-bye deadline, then drops the connections.
 *
 * Key and channel names: `redis-keys.ts`; the state of a topic on this node: `redis-topic-channel.ts`.
 *
 * @module
 */
import { defaultTopicRegistry, type TopicRegistry } from '../protocol/topic-registry.js';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { StreamPosition } from '../protocol/messages.js';
import type { HistoryLookup } from '../gateway/topic-log.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { Broker, BrokerHost, SequencedMessage } from '../gateway/broker.js';
import { RedisConnection, type RedisBrokerState } from './redis-connection.js';
import { TopicDelivery } from './redis-delivery.js';
import { readHistory } from './redis-history.js';
import { RedisKeys, type TopicKeyPart } from './redis-keys.js';
import { RedisPublisher } from './redis-publish.js';
import { readSnapshot, type TopicSnapshot } from './redis-snapshot.js';
import { TopicSubscriptions } from './redis-subscriptions.js';

export { DEFAULT_COMMAND_TIMEOUT_MS, type RedisBrokerState } from './redis-connection.js';
export { newEpoch } from './redis-publish.js';

/** Options of {@link RedisBroker}. Durations in ms. */
export interface RedisBrokerOptions {
  /** `redis://host:port[/db]`. */
  url: string;
  /** Prefix of every key and channel. Default `citypulse:`. */
  keyPrefix?: string;
  /** This node's id. Default: a random UUID. */
  nodeId?: string;
  /** Entries kept per topic stream (approximate, `MAXLEN ~`). Default 1000. */
  historySize?: number;
  /** Oldest entry replayed on resume. Default 300000. */
  historyTtlMs?: number;
  /** How often topics without local subscribers are unsubscribed. Default 2000. */
  sweepIntervalMs?: number;
  /** Longest wait between reconnect attempts. Default 2000. */
  maxReconnectDelayMs?: number;
  /**
   * Longest wait for one Redis command (ioredis `commandTimeout`) and for a whole publish; a publish that gets no
   * answer within it rejects (HTTP 503). Default 2000.
   */
  commandTimeoutMs?: number;
  /** How often the command connection is PINGed to notice a Redis that stopped answering. Default 1000. */
  healthCheckIntervalMs?: number;
  /**
   * The topics' entity validators: an UPDATE published straight to the broker is refused by the same rule as the
   * service's (`UpdateRejectedError`). Default: the registry of the service it is attached to (before that, and
   * for a host without one, the four city topics' registry; other names: the base rule).
   */
  registry?: TopicRegistry;
  logger?: Logger;
  now?: () => number;
}

/** A {@link Broker} over Redis (ioredis). */
export class RedisBroker implements Broker {
  readonly nodeId: string;
  /** Longest wait for one command or a whole publish. */
  readonly commandTimeoutMs: number;
  /** Longest wait for one good-bye at shutdown (lease release, stats removal, QUIT): at most 1000 ms. */
  readonly goodbyeTimeoutMs: number;
  /** Commands (scripts, reads). Fails fast while Redis is unreachable (no offline queue). */
  readonly redis: Redis;
  readonly #connection: RedisConnection;
  readonly #keys: RedisKeys;
  readonly #subscriptions: TopicSubscriptions;
  readonly #publisher: RedisPublisher;
  readonly #historySize: number;
  readonly #historyTtlMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;
  #host: BrokerHost | null = null;
  readonly #readyListeners = new Set<() => void>();

  constructor(options: RedisBrokerOptions) {
    this.nodeId = options.nodeId ?? randomUUID();
    this.#keys = new RedisKeys(options.keyPrefix ?? 'citypulse:');
    this.#historySize = Math.max(1, options.historySize ?? 1000);
    this.#historyTtlMs = options.historyTtlMs ?? 300_000;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'redis-broker', nodeId: this.nodeId });
    this.#now = options.now ?? Date.now;
    const connection = new RedisConnection({
      url: options.url,
      nodeId: this.nodeId,
      maxReconnectDelayMs: options.maxReconnectDelayMs,
      commandTimeoutMs: options.commandTimeoutMs,
      healthCheckIntervalMs: options.healthCheckIntervalMs,
      logger: this.#logger,
      onRecover: () => this.#recover(),
    });
    this.#connection = connection;
    this.commandTimeoutMs = connection.commandTimeoutMs;
    this.goodbyeTimeoutMs = connection.goodbyeTimeoutMs;
    this.redis = connection.redis;
    const host = (): BrokerHost | null => this.#host;
    const keys = this.#keys;
    const logger = this.#logger;
    const delivery = new TopicDelivery({ connection, keys, historySize: this.#historySize, logger, host });
    this.#subscriptions = new TopicSubscriptions({
      connection,
      keys,
      delivery,
      logger,
      host,
      sweepIntervalMs: options.sweepIntervalMs ?? 2000,
    });
    this.#publisher = new RedisPublisher({
      connection,
      keys,
      nodeId: this.nodeId,
      historySize: this.#historySize,
      now: this.#now,
      registry: () => options.registry ?? this.#host?.registry ?? defaultTopicRegistry(),
    });
    connection.sub.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
  }

  /** Connects both connections; rejects when Redis cannot be reached at start. */
  async connect(): Promise<void> {
    await this.#connection.connect();
    await this.#connection.sub.subscribe(this.globalKey('broadcast'));
    await this.#connection.measureClock();
  }

  /** Publishes a to-everyone frame for the other nodes (each drops its own echo). */
  broadcast(json: string): void {
    this.redis.publish(this.globalKey('broadcast'), `${this.nodeId} ${json}`).catch((error: unknown) => {
      this.#logger.warn({ err: (error as Error).message }, 'broadcast to the cluster failed');
    });
  }

  /** `ready` when both connections are up and Redis answers. */
  get state(): RedisBrokerState {
    return this.#connection.state;
  }

  /** Whether Redis answers now (`state === 'ready'`). */
  isAvailable(): boolean {
    return this.state === 'ready';
  }

  /** Calls `listener` each time the broker becomes ready again after being down or stalled. Returns the unsubscriber. */
  onReconnect(listener: () => void): () => void {
    this.#readyListeners.add(listener);
    return () => this.#readyListeners.delete(listener);
  }

  /** The key of `topic`'s `part`. */
  key(topic: string, part: TopicKeyPart): string {
    return this.#keys.topic(topic, part);
  }

  /** A key of this deployment outside topics (leases, node stats). */
  globalKey(name: string): string {
    return this.#keys.global(name);
  }

  /** Binds the broker to its node's service (called once, by the service). */
  attach(host: BrokerHost): void {
    this.#host = host;
  }

  /** Sequences, stores and publishes `message` on `topic` (see `redis-publish.ts`); resolves to its position. */
  publish(topic: string, message: SequencedMessage): Promise<StreamPosition> {
    return this.#publisher.publish(topic, message);
  }

  /** The topic's position as delivered on this node (may lag the cluster's by the frames in flight). */
  position(topic: string): StreamPosition {
    return this.#subscriptions.position(topic);
  }

  /**
   * The frames after `position` from the topic's stream, once the topic is subscribed and this node has delivered up
   * to the last of them; not covered when the epoch moved on, the position is ahead, or the stream lost some.
   */
  async since(topic: string, position: StreamPosition): Promise<HistoryLookup> {
    this.#connection.failFast();
    await this.watch([topic]);
    const { epoch, seq, entries } = await readHistory(
      this.#connection,
      this.#keys,
      topic,
      position.seq + 1,
      this.#historySize + 1,
    );
    if (epoch === null || position.epoch !== epoch) return { covered: false, reason: 'epoch' };
    if (position.seq > seq) return { covered: false, reason: 'future' };
    if (position.seq === seq) return { covered: true, entries: [] };
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (first === undefined || last === undefined || first.seq !== position.seq + 1 || last.seq !== seq) {
      return { covered: false, reason: 'expired' };
    }
    if (first.at < this.#now() - this.#historyTtlMs) return { covered: false, reason: 'expired' };
    await this.#subscriptions.awaitDelivered(topic, epoch, seq);
    return { covered: true, entries };
  }

  /**
   * The shared state of `topics` (`{ <topic>: { entities, seq, epoch, alerts } }`), read from Redis after every topic
   * with local subscribers is subscribed, so every frame after the returned `seq` reaches this node.
   */
  async snapshot(topics: readonly string[]): Promise<Record<string, TopicSnapshot>> {
    this.#connection.failFast();
    const host = this.#host;
    await this.watch(host === null ? [] : topics.filter((t) => host.subscribers(t) > 0));
    return readSnapshot(this.#connection, this.#keys, topics, (topic, epoch, seq) =>
      this.#subscriptions.awaitDelivered(topic, epoch, seq),
    );
  }

  /** Subscribes to the channels of `topics` (those not yet subscribed); resolves once every one is active. */
  async watch(topics: readonly string[]): Promise<void> {
    await this.#subscriptions.watch(topics);
  }

  /** Topics whose channel this node is subscribed to. */
  activeTopics(): string[] {
    return this.#subscriptions.activeTopics();
  }

  /** Stops the sweep and the health check, forgets the host, and closes both connections. Idempotent. */
  close(): Promise<void> {
    if (this.#connection.state !== 'closed') {
      this.#subscriptions.stop();
      this.#readyListeners.clear();
      this.#host = null;
    }
    return this.#connection.close();
  }

  /** A message on the subscription connection: a topic's frame, or another node's broadcast. */
  #onMessage(channelName: string, message: string): void {
    if (this.#subscriptions.receive(channelName, message)) return;
    if (channelName !== this.globalKey('broadcast')) return;
    const space = message.indexOf(' ');
    // Our own broadcast was delivered locally already: drop the echo.
    if (space > 0 && message.slice(0, space) !== this.nodeId) this.#host?.broadcast(message.slice(space + 1));
  }

  /**
   * Redis answers again (reconnected, or no longer stalled): fill what the subscriptions missed from the streams,
   * subscribe again to every topic a local client needs whose SUBSCRIBE failed meanwhile, then let the host retry
   * the snapshots it could not send and the listeners reconcile.
   */
  #recover(): void {
    this.#subscriptions.recover();
    this.#host?.available();
    for (const listener of this.#readyListeners) listener();
  }
}
