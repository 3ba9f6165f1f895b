/**
 * `RedisBroker`: several citypulse nodes act as one service through Redis.
 *
 * - Publish: one Lua script takes the topic's next seq, appends the frame to the topic's stream, applies the entity
 *   change to the topic's state hash and PUBLISHes the frame on the topic's channel (see `redis-scripts.ts`), so the
 *   channel carries frames in seq order and the state always matches its seq.
 * - Delivery: a node SUBSCRIBEs to a topic's channel only while it has local subscribers (watch on demand, unwatch
 *   by a periodic sweep). Every frame, its own included, reaches local clients through the channel, so all nodes
 *   deliver in seq order. A frame at or below the last delivered seq is dropped (exactly once); a frame past a gap
 *   (pub/sub is at-most-once: a reconnect loses what was in flight) makes the node fill the gap from the stream
 *   first; a gap the stream no longer covers, or a new epoch (Redis lost its data), makes the node send its clients
 *   fresh snapshots.
 * - History and snapshots are read from Redis, after the channel is subscribed, so nothing falls between a
 *   snapshot (or a replay) and the live frames.
 * - A new epoch (Redis lost its data) starts with an empty state at seq 0: the node tells its clients so
 *   (`BrokerHost.restart`) and delivers the new epoch's frames from seq 1, read from the stream when they were not
 *   all received live, so no acknowledged frame of the new epoch is skipped.
 * - Every command has a deadline (`commandTimeoutMs`, the whole publish included), and a periodic PING notices a
 *   Redis that holds its connections open but answers nothing (frozen): the broker is then `stalled`, not `ready`.
 *   When Redis is back (reconnected or answering again), every topic a local client needs is subscribed again, the
 *   streams fill what was missed, and the host retries the snapshots that failed (`BrokerHost.available`).
 * - `close()` never waits on Redis for longer than one good-bye deadline, then drops the connections.
 *
 * States of a topic on this node: `idle` -> `subscribing` (SUBSCRIBE sent; frames buffered) -> `active` (frames
 * delivered) -> `unsubscribing` -> `idle`.
 *
 * @module
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { StreamPosition } from '../protocol/messages.js';
import type { EntityChange } from '../protocol/topics.js';
import { isChangeShaped, parseUpdate, UpdateRejectedError } from '../protocol/state-model.js';
import type { HistoryLookup, LogEntry } from '../gateway/topic-log.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { Broker, BrokerHost, SequencedMessage } from '../gateway/broker.js';
import { isTimeout, settleWithin, withDeadline } from './deadline.js';
import { HISTORY, PUBLISH, SNAPSHOT, runScript } from './redis-scripts.js';

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
  logger?: Logger;
  now?: () => number;
}

type TopicState = 'idle' | 'subscribing' | 'active' | 'unsubscribing';

/** A frame as it arrives on a channel. */
interface ChannelFrame {
  readonly seq: number;
  readonly epoch: string;
  readonly json: string;
}

/** A read (snapshot or history) waiting until this node has delivered up to the position it read. */
interface Waiter {
  readonly epoch: string;
  readonly seq: number;
  readonly resolve: () => void;
}

/** What this node knows of one topic. */
class TopicChannel {
  state: TopicState = 'idle';
  /** Resolves once the topic is `active` (rejects when the SUBSCRIBE failed). */
  ready: Promise<void> | null = null;
  /** Serialises SUBSCRIBE/UNSUBSCRIBE of this topic. */
  ops: Promise<void> = Promise.resolve();
  epoch: string | null = null;
  /** Last seq delivered locally (or known to be covered by the reads that follow a subscribe). */
  lastSeq = 0;
  /** Frames received while subscribing or while a gap is being filled, in arrival order. */
  buffer: ChannelFrame[] | null = null;
  /** Reads waiting for local delivery to reach the position they read (see `RedisBroker.#awaitDelivered`). */
  waiters: Waiter[] = [];
  /** A gap fill failed (Redis unreachable): `buffer` waits for the reconnection to retry it. */
  gapPending = false;
  constructor(readonly topic: string) {}
}

/**
 * Connection states of the broker as a whole: `stalled` means connected, but Redis did not answer a command or a
 * health PING within `commandTimeoutMs` (a frozen or overloaded server) and has not answered since.
 */
export type RedisBrokerState = 'connecting' | 'ready' | 'stalled' | 'down' | 'closed';

/** The default of {@link RedisBrokerOptions.commandTimeoutMs}. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/** A {@link Broker} over Redis (ioredis). */
export class RedisBroker implements Broker {
  readonly nodeId: string;
  /** Longest wait for one command or a whole publish. */
  readonly commandTimeoutMs: number;
  /** Longest wait for one good-bye at shutdown (lease release, stats removal, QUIT): at most 1000 ms. */
  readonly goodbyeTimeoutMs: number;
  /** Commands (scripts, reads). Fails fast while Redis is unreachable (no offline queue). */
  readonly redis: Redis;
  /** Subscriptions only. */
  readonly #sub: Redis;
  readonly #prefix: string;
  readonly #historySize: number;
  readonly #historyTtlMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #topics = new Map<string, TopicChannel>();
  readonly #channelTopics = new Map<string, string>();
  #host: BrokerHost | null = null;
  #sweepTimer: NodeJS.Timeout | null = null;
  #healthTimer: NodeJS.Timeout | null = null;
  #probing = false;
  /** Redis' clock minus ours (ms), measured by every health check. */
  #redisClockOffsetMs = 0;
  /** Redis did not answer within the deadline and has not answered since. */
  #stalled = false;
  #closed: Promise<void> | null = null;
  #wasDown = false;
  readonly #readyListeners = new Set<() => void>();

  constructor(options: RedisBrokerOptions) {
    this.nodeId = options.nodeId ?? randomUUID();
    this.#prefix = options.keyPrefix ?? 'citypulse:';
    this.#historySize = Math.max(1, options.historySize ?? 1000);
    this.#historyTtlMs = options.historyTtlMs ?? 300_000;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'redis-broker', nodeId: this.nodeId });
    this.#now = options.now ?? Date.now;
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
    this.redis = new Redis(options.url, { ...common, connectionName: `citypulse:${this.nodeId}` });
    this.#sub = new Redis(options.url, {
      ...common,
      connectionName: `citypulse-sub:${this.nodeId}`,
      autoResubscribe: true,
    });
    for (const connection of [this.redis, this.#sub]) {
      connection.on('error', (error: Error) => this.#logger.debug({ err: error.message }, 'redis error'));
      connection.on('close', () => this.#onDown());
    }
    this.redis.on('ready', () => this.#onReady());
    this.#sub.on('ready', () => this.#onReady());
    this.#sub.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
    this.#sweepTimer = setInterval(() => this.#sweep(), options.sweepIntervalMs ?? 2000);
    this.#sweepTimer.unref();
    this.#healthTimer = setInterval(() => void this.#probe(), options.healthCheckIntervalMs ?? 1000);
    this.#healthTimer.unref();
  }

  /** Connects both connections; rejects when Redis cannot be reached at start. */
  async connect(): Promise<void> {
    await Promise.all([this.redis.connect(), this.#sub.connect()]);
    await this.#sub.subscribe(this.globalKey('broadcast'));
    await this.#measureClock();
  }

  /** Publishes a to-everyone frame for the other nodes (each drops its own echo). */
  broadcast(json: string): void {
    this.redis.publish(this.globalKey('broadcast'), `${this.nodeId} ${json}`).catch((error: unknown) => {
      this.#logger.warn({ err: (error as Error).message }, 'broadcast to the cluster failed');
    });
  }

  /** `ready` when both connections are up and Redis answers. */
  get state(): RedisBrokerState {
    if (this.#closed !== null) return 'closed';
    if (this.redis.status === 'ready' && this.#sub.status === 'ready')
      return this.#stalled ? 'stalled' : 'ready';
    if (this.redis.status === 'connecting' || this.redis.status === 'wait') return 'connecting';
    return 'down';
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
  key(topic: string, part: 'meta' | 'log' | 'state' | 'live'): string {
    return `${this.#prefix}{${topic}}:${part}`;
  }

  /** A key of this deployment outside topics (leases, node stats). */
  globalKey(name: string): string {
    return `${this.#prefix}${name}`;
  }

  attach(host: BrokerHost): void {
    this.#host = host;
  }

  async publish(topic: string, message: SequencedMessage): Promise<StreamPosition> {
    const change = message.type === 'UPDATE' ? entityChangeOf(topic, message.data) : null;
    const args: (string | number)[] = [
      newEpoch(),
      this.#historySize,
      message.type,
      JSON.stringify(message.timestamp),
      JSON.stringify(change ?? message.data) ?? 'null',
      JSON.stringify(topic),
      this.nodeId,
      this.#now(),
      // Redis refuses the script past this instant (its clock), a margin before we stop waiting for the reply.
      Date.now() +
        this.#redisClockOffsetMs +
        this.commandTimeoutMs -
        Math.min(100, this.commandTimeoutMs / 4),
    ];
    args.push(change?.upserts.length ?? 0);
    for (const entity of change?.upserts ?? []) args.push(entity.id, JSON.stringify(entity));
    args.push(change?.removes.length ?? 0);
    for (const id of change?.removes ?? []) args.push(id);
    const reply = (await this.#bounded(
      runScript(
        this.redis,
        PUBLISH,
        [this.key(topic, 'meta'), this.key(topic, 'log'), this.key(topic, 'state'), this.key(topic, 'live')],
        args,
      ),
      `publish on ${topic}`,
    )) as [number, string];
    return { seq: Number(reply[0]), epoch: String(reply[1]) };
  }

  position(topic: string): StreamPosition {
    const channel = this.#topics.get(topic);
    return { epoch: channel?.epoch ?? '', seq: channel?.lastSeq ?? 0 };
  }

  async since(topic: string, position: StreamPosition): Promise<HistoryLookup> {
    this.#failFast();
    await this.watch([topic]);
    const { epoch, seq, entries } = await this.#history(topic, position.seq + 1, this.#historySize + 1);
    if (epoch === null || position.epoch !== epoch) return { covered: false, reason: 'epoch' };
    if (position.seq > seq) return { covered: false, reason: 'future' };
    if (position.seq === seq) return { covered: true, entries: [] };
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (first === undefined || last === undefined || first.seq !== position.seq + 1 || last.seq !== seq) {
      return { covered: false, reason: 'expired' };
    }
    if (first.at < this.#now() - this.#historyTtlMs) return { covered: false, reason: 'expired' };
    await this.#awaitDelivered(topic, epoch, seq);
    return { covered: true, entries };
  }

  /**
   * The shared state of `topics` (`{ <topic>: { entities, seq, epoch } }`), read from Redis after every topic
   * with local subscribers is subscribed, so every frame after the returned `seq` reaches this node.
   */
  async snapshot(
    topics: readonly string[],
  ): Promise<Record<string, { entities: unknown[]; seq: number; epoch?: string }>> {
    this.#failFast();
    const host = this.#host;
    await this.watch(host === null ? [] : topics.filter((t) => host.subscribers(t) > 0));
    const keys: string[] = [];
    for (const topic of topics) keys.push(this.key(topic, 'meta'), this.key(topic, 'state'));
    const reply = (await this.#bounded(runScript(this.redis, SNAPSHOT, keys, []), 'snapshot')) as [
      string | null,
      number,
      string[],
    ][];
    const out: Record<string, { entities: unknown[]; seq: number; epoch?: string }> = {};
    const waits: Promise<void>[] = [];
    topics.forEach((topic, i) => {
      const [epoch, seq, flat] = reply[i] ?? [null, 0, []];
      const entities: unknown[] = [];
      for (let k = 1; k < flat.length; k += 2) entities.push(JSON.parse(flat[k] as string));
      out[topic] = epoch === null ? { entities, seq: Number(seq) } : { entities, seq: Number(seq), epoch };
      if (epoch !== null) waits.push(this.#awaitDelivered(topic, epoch, Number(seq)));
    });
    await Promise.all(waits);
    return out;
  }

  /** Subscribes to the channels of `topics` (those not yet subscribed); resolves once every one is active. */
  async watch(topics: readonly string[]): Promise<void> {
    await Promise.all(topics.map((topic) => this.#watchOne(topic)));
  }

  /** Topics whose channel this node is subscribed to. */
  activeTopics(): string[] {
    return [...this.#topics.values()].filter((c) => c.state === 'active').map((c) => c.topic);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#sweepTimer !== null) clearInterval(this.#sweepTimer);
      this.#sweepTimer = null;
      if (this.#healthTimer !== null) clearInterval(this.#healthTimer);
      this.#healthTimer = null;
      this.#readyListeners.clear();
      this.#host = null;
      // A polite QUIT when Redis answers; a frozen one is not waited for past one good-bye deadline.
      await settleWithin(
        Promise.allSettled([this.#sub.quit(), this.redis.quit()]),
        this.state === 'ready' ? this.goodbyeTimeoutMs : 0,
      );
      this.#sub.disconnect();
      this.redis.disconnect();
    })();
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Topic channels
  // -------------------------------------------------------------------------------------------------------------

  #channel(topic: string): TopicChannel {
    let channel = this.#topics.get(topic);
    if (channel === undefined) {
      channel = new TopicChannel(topic);
      this.#topics.set(topic, channel);
      this.#channelTopics.set(this.key(topic, 'live'), topic);
    }
    return channel;
  }

  #watchOne(topic: string): Promise<void> {
    const channel = this.#channel(topic);
    if (channel.state === 'active' || channel.state === 'subscribing')
      return channel.ready ?? Promise.resolve();
    channel.state = 'subscribing';
    channel.buffer = [];
    const ready = channel.ops.then(async () => {
      try {
        await this.#bounded(this.#sub.subscribe(this.key(topic, 'live')), `subscribe to ${topic}`);
        // Everything up to the current seq is covered by the reads the waiting clients make after this resolves.
        const { epoch, seq } = await this.#history(topic, 0, 0);
        channel.epoch = epoch;
        channel.lastSeq = seq;
        channel.state = 'active';
        this.#drain(channel);
        this.#settle(channel);
      } catch (error) {
        channel.state = 'idle';
        channel.buffer = null;
        this.#sub.unsubscribe(this.key(topic, 'live')).catch(() => {});
        throw error;
      }
    });
    channel.ready = ready;
    channel.ops = ready.catch(() => {});
    return ready;
  }

  /** Unsubscribes the topics nobody on this node listens to any more. */
  #sweep(): void {
    const host = this.#host;
    if (host === null) return;
    for (const channel of this.#topics.values()) {
      if (channel.state !== 'active' || channel.buffer !== null || host.subscribers(channel.topic) > 0)
        continue;
      channel.state = 'unsubscribing';
      channel.ready = null;
      channel.ops = channel.ops.then(async () => {
        try {
          await this.#sub.unsubscribe(this.key(channel.topic, 'live'));
        } catch (error) {
          this.#logger.debug({ err: (error as Error).message, topic: channel.topic }, 'unsubscribe failed');
        }
        if (channel.state === 'unsubscribing') channel.state = 'idle';
      });
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Delivery
  // -------------------------------------------------------------------------------------------------------------

  #onMessage(channelName: string, message: string): void {
    const topic = this.#channelTopics.get(channelName);
    if (topic === undefined) {
      if (channelName !== this.globalKey('broadcast')) return;
      const space = message.indexOf(' ');
      // Our own broadcast was delivered locally already: drop the echo.
      if (space > 0 && message.slice(0, space) !== this.nodeId)
        this.#host?.broadcast(message.slice(space + 1));
      return;
    }
    const channel = this.#topics.get(topic);
    if (channel === undefined) return;
    const a = message.indexOf(' ');
    const b = message.indexOf(' ', a + 1);
    const c = message.indexOf(' ', b + 1);
    if (a <= 0 || b <= a || c <= b) return;
    const frame: ChannelFrame = {
      seq: Number(message.slice(0, a)),
      epoch: message.slice(a + 1, b),
      json: message.slice(c + 1),
    };
    if (channel.buffer !== null) {
      if (channel.state === 'subscribing' || channel.state === 'active') channel.buffer.push(frame);
      return;
    }
    if (channel.state !== 'active') return;
    this.#accept(channel, frame);
  }

  /** Delivers `frame` if it is the next one; drops a duplicate; fills a gap or resyncs on a new epoch. */
  #accept(channel: TopicChannel, frame: ChannelFrame): void {
    if (channel.epoch === null) {
      // The topic's first life begins (nothing was published when this node subscribed): nothing to resync.
      channel.epoch = frame.epoch;
    } else if (frame.epoch !== channel.epoch) {
      // The topic's stream restarted (Redis lost its data): a new life from an empty state at seq 0. Its frames
      // follow from seq 1 (this one, or the stream fills the gap up to it).
      this.#restart(channel, frame.epoch);
    }
    if (frame.seq <= channel.lastSeq) return;
    if (frame.seq === channel.lastSeq + 1) {
      channel.lastSeq = frame.seq;
      this.#host?.deliver(channel.topic, frame.seq, frame.json);
      if (channel.waiters.length > 0) this.#settle(channel);
      return;
    }
    channel.buffer = [frame];
    void this.#fillGap(channel);
  }

  /** The topic's stream began a new life (`epoch`, empty state at seq 0): local clients start it from there. */
  #restart(channel: TopicChannel, epoch: string): void {
    this.#logger.warn({ topic: channel.topic, from: channel.epoch, to: epoch }, 'topic epoch changed');
    channel.epoch = epoch;
    channel.lastSeq = 0;
    this.#host?.restart(channel.topic, epoch);
  }

  /**
   * Reads the frames after `lastSeq` from the stream and delivers them, then what arrived meanwhile. When Redis
   * cannot be read, the buffered frames wait (`gapPending`) for the reconnection, which retries.
   */
  async #fillGap(channel: TopicChannel): Promise<void> {
    channel.gapPending = false;
    try {
      // Read in the epoch this node knows: when the topic moved to another one meanwhile, the read starts at its
      // seq 1 (not at our old position, which would skip the new life's first frames).
      const { epoch, seq, entries } = await this.#history(
        channel.topic,
        channel.lastSeq + 1,
        this.#historySize + 1,
        channel.epoch,
      );
      if (channel.state !== 'active') {
        this.#settle(channel);
        return;
      }
      if (epoch !== null && channel.epoch === null) {
        channel.epoch = epoch;
      } else if (epoch !== null && epoch !== channel.epoch) {
        this.#restart(channel, epoch);
      }
      const first = entries[0];
      if (first !== undefined && first.seq > channel.lastSeq + 1) {
        this.#logger.warn(
          { topic: channel.topic, from: channel.lastSeq, to: first.seq },
          'gap beyond history: resync',
        );
        channel.lastSeq = first.seq - 1;
        this.#host?.resync(channel.topic);
      }
      for (const entry of entries) {
        if (entry.seq !== channel.lastSeq + 1) continue;
        channel.lastSeq = entry.seq;
        this.#host?.deliver(channel.topic, entry.seq, entry.json);
      }
      if (seq > channel.lastSeq && entries.length === 0) {
        channel.lastSeq = seq;
        this.#host?.resync(channel.topic);
      }
    } catch (error) {
      this.#logger.warn(
        { err: (error as Error).message, topic: channel.topic },
        'gap fill failed; retried on reconnect',
      );
      channel.gapPending = true;
      return;
    }
    this.#drain(channel);
    this.#settle(channel);
  }

  /**
   * Resolves once this node has delivered `topic` up to `seq` of `epoch` (at once when the topic is not watched).
   * A snapshot or history is read on the command connection, which can be ahead of the subscription: releasing a
   * client before the subscription caught up would let a frame already in the read arrive again live.
   */
  #awaitDelivered(topic: string, epoch: string, seq: number): Promise<void> {
    const channel = this.#topics.get(topic);
    if (channel === undefined || channel.state !== 'active' || reached(channel, epoch, seq))
      return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(nudge);
        clearTimeout(fail);
        resolve();
      };
      // Frames in flight normally arrive within a millisecond; if not, they were lost: read them from the stream.
      const nudge = setTimeout(() => {
        if (channel.state === 'active' && channel.buffer === null) {
          channel.buffer = [];
          void this.#fillGap(channel);
        }
      }, 250);
      const fail = setTimeout(() => {
        channel.waiters = channel.waiters.filter((w) => w.resolve !== done);
        clearTimeout(nudge);
        reject(new Error(`delivery of ${topic} did not reach seq ${seq}`));
      }, 5000);
      nudge.unref();
      fail.unref();
      channel.waiters.push({ epoch, seq, resolve: done });
    });
  }

  /** Resolves the waiters whose position was delivered (or can no longer be: the topic stopped or moved on). */
  #settle(channel: TopicChannel): void {
    if (channel.waiters.length === 0) return;
    const waiting: Waiter[] = [];
    for (const waiter of channel.waiters) {
      if (channel.state !== 'active' || reached(channel, waiter.epoch, waiter.seq)) waiter.resolve();
      else waiting.push(waiter);
    }
    channel.waiters = waiting;
  }

  /** Delivers the buffered frames (in order) and resumes live delivery. */
  #drain(channel: TopicChannel): void {
    const buffered = channel.buffer ?? [];
    channel.buffer = null;
    for (let i = 0; i < buffered.length; i++) {
      if (channel.state !== 'active') return;
      this.#accept(channel, buffered[i] as ChannelFrame);
      if (channel.buffer !== null) {
        // A gap opened: the rest waits behind it.
        (channel.buffer as ChannelFrame[]).push(...buffered.slice(i + 1));
        return;
      }
    }
  }

  /** The topic's position and its frames from `fromSeq` of `knownEpoch` (from seq 1 when the epoch moved on). */
  async #history(
    topic: string,
    fromSeq: number,
    count: number,
    knownEpoch: string | null = null,
  ): Promise<{ epoch: string | null; seq: number; entries: LogEntry[] }> {
    const reply = (await this.#bounded(
      runScript(
        this.redis,
        HISTORY,
        [this.key(topic, 'meta'), this.key(topic, 'log')],
        [fromSeq, count, knownEpoch ?? ''],
      ),
      `history of ${topic}`,
    )) as unknown[];
    const entries: LogEntry[] = [];
    for (let i = 2; i + 2 < reply.length; i += 3) {
      const id = String(reply[i]);
      entries.push({
        seq: Number(id.slice(0, id.indexOf('-'))),
        json: String(reply[i + 1]),
        at: Number(reply[i + 2]),
      });
    }
    return {
      epoch: reply[0] === null || reply[0] === false ? null : String(reply[0]),
      seq: Number(reply[1]),
      entries,
    };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Connection state
  // -------------------------------------------------------------------------------------------------------------

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
    this.#recover();
  }

  /**
   * Redis answers again (reconnected, or no longer stalled): fill what the subscriptions missed from the streams,
   * subscribe again to every topic a local client needs whose SUBSCRIBE failed meanwhile, then let the host retry
   * the snapshots it could not send and the listeners reconcile.
   */
  #recover(): void {
    const host = this.#host;
    for (const channel of this.#topics.values()) {
      if (channel.state === 'idle' && host !== null && host.subscribers(channel.topic) > 0) {
        this.#watchOne(channel.topic).catch((error: unknown) =>
          this.#logger.warn({ err: (error as Error).message, topic: channel.topic }, 'resubscribe failed'),
        );
        continue;
      }
      if (channel.state !== 'active') continue;
      // Frames published while the subscription was down were lost in flight: fill from the streams.
      if (channel.buffer === null) channel.buffer = [];
      else if (!channel.gapPending) continue; // a fill is running; it reads up to the current seq
      void this.#fillGap(channel);
    }
    host?.available();
    for (const listener of this.#readyListeners) listener();
  }

  /** Rejects at once while Redis is known not to answer (a joining client learns it now, not after a timeout). */
  #failFast(): void {
    const state = this.state;
    if (state === 'stalled' || state === 'down' || state === 'closed')
      throw Object.assign(new Error(`the cluster store is ${state}`), { code: 'ERR_REDIS_UNAVAILABLE' });
  }

  /** `promise` within `commandTimeoutMs`; a timeout marks Redis stalled until it answers again. */
  #bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return withDeadline(promise, this.commandTimeoutMs, what).catch((error: unknown) => {
      if (isTimeout(error)) this.#markStalled(what);
      throw error;
    });
  }

  #markStalled(what: string): void {
    if (this.#stalled || this.#closed !== null) return;
    this.#stalled = true;
    this.#logger.warn({ what, timeoutMs: this.commandTimeoutMs }, 'redis stopped answering; not ready');
  }

  /** Reads Redis' clock (TIME, within `commandTimeoutMs`) and keeps its offset from ours. */
  async #measureClock(): Promise<void> {
    const sentAt = Date.now();
    const [sec, usec] = await this.#bounded(this.redis.time(), 'health check');
    const receivedAt = Date.now();
    this.#redisClockOffsetMs =
      Number(sec) * 1000 + Math.floor(Number(usec) / 1000) - (sentAt + receivedAt) / 2;
  }

  /** The health check: Redis' TIME within `commandTimeoutMs` on the command connection. */
  async #probe(): Promise<void> {
    if (this.#probing || this.#closed !== null || this.redis.status !== 'ready') return;
    this.#probing = true;
    try {
      await this.#measureClock();
      if (this.#stalled && this.#closed === null) {
        this.#stalled = false;
        this.#logger.info({}, 'redis answers again; catching up');
        if (this.state === 'ready') this.#recover();
        // Otherwise a connection is down: its 'ready' event recovers.
      }
    } catch {
      // Marked stalled on a timeout; a refused PING means the connection is going down ('close' follows).
    } finally {
      this.#probing = false;
    }
  }
}

/** Whether `channel` has delivered up to `seq` of `epoch` (or moved past that epoch). */
function reached(channel: TopicChannel, epoch: string, seq: number): boolean {
  if (channel.epoch !== epoch) return channel.epoch !== null && channel.epoch > epoch;
  return channel.lastSeq >= seq;
}

/** A fresh epoch candidate: time-ordered and random, letters and digits only. */
export function newEpoch(): string {
  return `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

/**
 * The entity change an UPDATE's data describes, by the protocol's one rule (`parseUpdate`), normalised so the Lua
 * applies it mechanically (HSET each upsert, then HDEL each remove); `null` for an opaque message (no state change).
 * The service has refused invalid changes already; one that reaches the broker directly is refused the same way.
 */
function entityChangeOf(topic: string, data: unknown): EntityChange | null {
  if (!isChangeShaped(data)) return null;
  const parsed = parseUpdate(topic, data);
  if (!parsed.ok) throw new UpdateRejectedError(parsed.field, parsed.error);
  return parsed.change;
}
