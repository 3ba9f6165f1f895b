/**
 * Cluster mode of `createServer` (`--redis`): the Redis broker, the source leases, snapshots read from Redis, node
 * stats shared through Redis, what the cluster-aware HTTP endpoints report (answered by `adapters/cluster-http.ts`), and
 * the reconciliation a source-leading node runs
 * when Redis comes back.
 *
 * @module
 */
import type { DataAggregator } from '../aggregator/data-aggregator.js';
import type { Source, SourceStatus } from '../aggregator/source.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { TopicRegistry } from '../protocol/topic-registry.js';
import type { WebSocketService } from '../gateway/websocket-service.js';
import { settleWithin } from './deadline.js';
import type { Lease } from './lease.js';
import { leasedSource } from './leased-source.js';
import { RedisBroker, type RedisBrokerState } from './redis-broker.js';

/** Options of {@link startClusterMode}. Durations in ms. */
export interface ClusterModeOptions {
  redisUrl: string;
  /** Default `citypulse:`. */
  keyPrefix?: string;
  nodeId?: string;
  historySize?: number;
  historyTtlMs?: number;
  /** Source lease lifetime; a dead holder is replaced within about this long. Default 5000. */
  leaseTtlMs?: number;
  /** How often this node writes its stats to Redis (they expire after 3 intervals). Default 2000. */
  statsIntervalMs?: number;
  /** How often topics nobody here listens to are unsubscribed. Default 2000. */
  sweepIntervalMs?: number;
  /** Longest wait for one Redis command and for a whole publish (then 503). Default 2000. */
  commandTimeoutMs?: number;
  /** How often Redis is PINGed to notice that it stopped answering (`/readyz` then 503). Default 1000. */
  healthCheckIntervalMs?: number;
  /** The topics served (the broker validates published UPDATEs with it). Default: the four city topics. */
  registry?: TopicRegistry;
  logger?: Logger;
  now?: () => number;
}

/** Per-node stats as written to Redis. */
export interface NodeStats {
  readonly nodeId: string;
  readonly clients: number;
  readonly topics: Record<string, number>;
  readonly published: number;
  readonly framesOut: number;
  readonly at: number;
}

/** What `GET /readyz` reports in cluster mode ({@link ClusterMode.readiness}). */
export interface ClusterReadiness {
  readonly ready: boolean;
  /** Why not ready; absent when ready. */
  readonly reason?: string;
  readonly nodeId: string;
  readonly redis: RedisBrokerState;
  readonly leading: string[];
  readonly sources: SourceStatus[];
}

/** The running cluster side of one node. */
export class ClusterMode {
  readonly broker: RedisBroker;
  readonly #options: ClusterModeOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #leased: (Source & { readonly lease: Lease })[] = [];
  #service: WebSocketService | null = null;
  #aggregator: DataAggregator | null = null;
  #statsTimer: NodeJS.Timeout | null = null;
  #offReconnect: (() => void) | null = null;
  #closed: Promise<void> | null = null;
  /** Sources this node has led (its aggregator holds their latest state as this node saw it). */
  readonly #ledBefore = new Set<string>();
  /** When Redis last came back (a re-acquired lease right after it reconciles too). */
  #reconnectedAt: number | null = null;

  constructor(broker: RedisBroker, options: ClusterModeOptions) {
    this.broker = broker;
    this.#options = options;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'cluster', nodeId: broker.nodeId });
    this.#now = options.now ?? Date.now;
  }

  get nodeId(): string {
    return this.broker.nodeId;
  }

  /** Wraps each source so it runs only on the node holding its lease. `create` makes a fresh instance. */
  leaseSources(factories: readonly (() => Source)[]): Source[] {
    return factories.map((create) => {
      const source = leasedSource(create, {
        redis: this.broker.redis,
        keyPrefix: this.broker.globalKey('lease:source:'),
        nodeId: this.broker.nodeId,
        ttlMs: this.#options.leaseTtlMs ?? 5000,
        releaseTimeoutMs: this.broker.goodbyeTimeoutMs,
        logger: this.#logger,
        onLeading: (name) => this.#onLeading(name),
      });
      this.#leased.push(source);
      return source;
    });
  }

  /** Names of the sources this node runs now. */
  leadingSources(): string[] {
    return this.#leased.filter((s) => s.lease.state === 'leading').map((s) => s.name);
  }

  /** Wires the node: snapshots from Redis, stats, reconciliation on reconnect. */
  attach(service: WebSocketService, aggregator: DataAggregator): void {
    this.#service = service;
    this.#aggregator = aggregator;
    service.setSnapshotProvider((topics) => this.broker.snapshot(topics));
    const interval = this.#options.statsIntervalMs ?? 2000;
    this.#statsTimer = setInterval(() => void this.#writeStats().catch(() => {}), interval);
    this.#statsTimer.unref();
    void this.#writeStats().catch(() => {});
    this.#offReconnect = this.broker.onReconnect(() => {
      this.#reconnectedAt = this.#now();
      void this.reconcile().catch((error: unknown) =>
        this.#logger.warn({ err: (error as Error).message }, 'reconcile failed'),
      );
    });
  }

  /**
   * A lease was acquired. Right after Redis came back (its data possibly lost), a source this node led before the
   * outage gets its state reconciled: nobody else can have led it meanwhile, since Redis was gone for all.
   */
  #onLeading(name: string): void {
    const ledBefore = this.#ledBefore.has(name);
    this.#ledBefore.add(name);
    const window = 3 * (this.#options.leaseTtlMs ?? 5000);
    if (!ledBefore || this.#reconnectedAt === null || this.#now() - this.#reconnectedAt > window) return;
    void this.reconcile([name]).catch((error: unknown) =>
      this.#logger.warn({ err: (error as Error).message }, 'reconcile failed'),
    );
  }

  /** Whether Redis is reachable (the node is ready only then). */
  isReady(): boolean {
    return this.broker.state === 'ready';
  }

  /**
   * Brings the shared state in line with the sources this node leads: one UPDATE per topic with the entities that
   * differ (changes made while Redis was unreachable, or everything after Redis lost its data).
   */
  async reconcile(sources: readonly string[] = this.leadingSources()): Promise<void> {
    const service = this.#service;
    const aggregator = this.#aggregator;
    if (service === null || aggregator === null) return;
    const leading = new Set(sources);
    if (leading.size === 0) return;
    const shared = await this.broker.snapshot(service.topics);
    for (const topic of service.topics) {
      const local = aggregator.getTopicSnapshot(topic).entities.filter((e) => leading.has(e.source));
      const remote = new Map<string, string>();
      for (const entity of shared[topic]?.entities ?? []) {
        const e = entity as { id: string; source?: string };
        if (e.source !== undefined && leading.has(e.source)) remote.set(e.id, JSON.stringify(entity));
      }
      const upserts = local.filter((e) => remote.get(e.id) !== JSON.stringify(e));
      const localIds = new Set(local.map((e) => e.id));
      const removes = [...remote.keys()].filter((id) => !localIds.has(id));
      if (upserts.length === 0 && removes.length === 0) continue;
      this.#logger.info(
        { topic, upserts: upserts.length, removes: removes.length },
        'reconciling shared state',
      );
      await service.publish(topic, {
        type: 'UPDATE',
        topic,
        data: { upserts, removes },
        timestamp: new Date(this.#now()).toISOString(),
      });
    }
  }

  /** This node's stats now. */
  localStats(): NodeStats {
    const service = this.#service;
    const topics: Record<string, number> = {};
    for (const topic of service?.topics ?? []) topics[topic] = service?.getTopicSubscribers(topic) ?? 0;
    const counters = service?.counters();
    return {
      nodeId: this.nodeId,
      clients: service?.getClientCount() ?? 0,
      topics,
      published: counters?.published ?? 0,
      framesOut: counters?.framesOut ?? 0,
      at: this.#now(),
    };
  }

  /** Every live node's stats (this one's fresh), and their sums. */
  async clusterStats(): Promise<{
    scope: 'cluster';
    nodes: number;
    clients: number;
    topics: Record<string, number>;
    messages: { published: number; framesOut: number };
    perNode: NodeStats[];
  }> {
    await this.#writeStats();
    const redis = this.broker.redis;
    const ids = await redis.zrangebyscore(this.broker.globalKey('nodes'), this.#now(), '+inf');
    const perNode: NodeStats[] = [];
    if (ids.length > 0) {
      const replies = await redis.mget(ids.map((id) => this.broker.globalKey(`node:${id}`)));
      for (const reply of replies) if (reply !== null) perNode.push(JSON.parse(reply) as NodeStats);
    }
    const topics: Record<string, number> = {};
    let clients = 0;
    let published = 0;
    let framesOut = 0;
    for (const node of perNode) {
      clients += node.clients;
      published += node.published;
      framesOut += node.framesOut;
      for (const [topic, n] of Object.entries(node.topics)) topics[topic] = (topics[topic] ?? 0) + n;
    }
    return {
      scope: 'cluster',
      nodes: perNode.length,
      clients,
      topics,
      messages: { published, framesOut },
      perNode,
    };
  }

  /**
   * Whether this node is ready, and what `GET /readyz` reports about it: not ready while closing, while Redis is
   * not ready, or before the sources started. The HTTP adapter (`adapters/cluster-http.ts`) answers with it.
   */
  readiness(closing: boolean): ClusterReadiness {
    const redis = this.broker.state;
    const reason = closing
      ? 'shutting down'
      : redis !== 'ready'
        ? REDIS_NOT_READY[redis]
        : (this.#aggregator?.isReady() ?? false)
          ? null
          : 'sources not started';
    return {
      ready: reason === null,
      ...(reason === null ? {} : { reason }),
      nodeId: this.nodeId,
      redis,
      leading: this.leadingSources(),
      sources: this.#aggregator?.sourceStatus() ?? [],
    };
  }

  /** The shared state of every topic this node serves, read from Redis (rejects when Redis does not answer). */
  sharedSnapshot(): ReturnType<RedisBroker['snapshot']> {
    return this.broker.snapshot(this.#service?.topics ?? []);
  }

  /**
   * Stops stats, releases the leases (the sources' stop started it), removes this node's stats, closes Redis.
   * Each good-bye waits at most `broker.goodbyeTimeoutMs` (none while Redis is known not to answer), so a frozen
   * Redis delays a shutdown by about one second at most. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      if (this.#statsTimer !== null) clearInterval(this.#statsTimer);
      this.#statsTimer = null;
      this.#offReconnect?.();
      const goodbyes = Promise.all([
        ...this.#leased.map((source) => source.lease.stop()),
        this.broker.redis.del(this.broker.globalKey(`node:${this.nodeId}`)),
        this.broker.redis.zrem(this.broker.globalKey('nodes'), this.nodeId),
      ]);
      await settleWithin(goodbyes, this.broker.isAvailable() ? this.broker.goodbyeTimeoutMs : 0);
      await this.broker.close();
    })();
    return this.#closed;
  }

  async #writeStats(): Promise<void> {
    const ttl = 3 * (this.#options.statsIntervalMs ?? 2000);
    const stats = this.localStats();
    await this.broker.redis
      .multi()
      .set(this.broker.globalKey(`node:${this.nodeId}`), JSON.stringify(stats), 'PX', ttl)
      .zadd(this.broker.globalKey('nodes'), stats.at + ttl, this.nodeId)
      .zremrangebyscore(this.broker.globalKey('nodes'), '-inf', stats.at)
      .exec();
  }
}

/** Why a node is not ready, by the broker's state. */
const REDIS_NOT_READY: Record<Exclude<RedisBrokerState, 'ready'>, string> = {
  connecting: 'redis connecting',
  down: 'redis unreachable',
  stalled: 'redis not answering (stalled)',
  closed: 'redis connection closed',
};

/** Connects to Redis and returns the cluster side of a node. Rejects when Redis is unreachable at start. */
export async function startClusterMode(options: ClusterModeOptions): Promise<ClusterMode> {
  const broker = new RedisBroker({
    url: options.redisUrl,
    keyPrefix: options.keyPrefix,
    nodeId: options.nodeId,
    historySize: options.historySize,
    historyTtlMs: options.historyTtlMs,
    sweepIntervalMs: options.sweepIntervalMs,
    commandTimeoutMs: options.commandTimeoutMs,
    healthCheckIntervalMs: options.healthCheckIntervalMs,
    registry: options.registry,
    logger: options.logger,
    now: options.now,
  });
  try {
    await broker.connect();
  } catch (error) {
    await broker.close();
    throw error;
  }
  return new ClusterMode(broker, options);
}
