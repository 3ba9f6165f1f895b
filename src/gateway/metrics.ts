/**
 * Prometheus metrics of one citypulse server, served at `GET /metrics`.
 *
 * Every server gets its own `prom-client` `Registry` (never the global one), so several servers in one process
 * (tests, embedding) do not clash. Hot-path calls are cheap: label children are created once per label set and
 * cached, broadcast sends are counted with one increment per publish (not per recipient), and gauges that mirror
 * server state (subscriptions per topic) are read at scrape time instead of being updated on every change.
 *
 * The metric names are listed in `docs/operations.md`; keep the two in step.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CloseCode } from '../protocol/messages.js';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Prefix of every citypulse metric name. Default `citypulse_`. */
  prefix?: string;
  /**
   * Also collect prom-client's default process metrics (`process_*`, `nodejs_*`: CPU, memory, handles, GC) into
   * this registry. Default `false`: prom-client starts observers it never stops, so enable it once per process
   * (the CLI does), not per server in a test run.
   */
  processMetrics?: boolean;
  /** Buckets of the publish latency histogram, seconds. Default 50 µs .. 1 s. */
  latencyBuckets?: readonly number[];
  /** Distinct topic label values kept before further topics are counted as `other`. Default 256. */
  maxTopicLabels?: number;
  /** Sampling resolution of the event-loop delay monitor, ms. Default 20. */
  eventLoopResolutionMs?: number;
  /** Labels added to every metric (e.g. `{ node: 'gw-1' }`). */
  defaultLabels?: Record<string, string>;
}

/** How a slow consumer was dealt with. */
export type SlowConsumerAction = 'snapshot' | 'close';

/** Why outbound messages were not sent as such. */
export type DropReason =
  /** An UPDATE replaced by a newer one for the same entity while the client was behind. */
  | 'conflated'
  /** Dropped because the client's queue was over its hard bound (it gets a fresh snapshot or is closed). */
  | 'overflow'
  /** The client was gone by the time the message was to be sent. */
  | 'closed';

/** What {@link Metrics.bindSources} reads per data source. */
export interface SourceHealth {
  readonly name: string;
  readonly healthy: boolean;
  /** When it last delivered data, ms since the epoch; `null`/absent if never. */
  readonly lastSuccessAt?: number | null;
}

/** The metrics of one server. Every method is safe to call at any rate; none throws. */
export interface Metrics {
  /** The registry holding every metric below. */
  readonly registry: Registry;
  /** `Content-Type` of {@link render}'s output. */
  readonly contentType: string;
  /** The exposition text for `GET /metrics`. */
  render(): Promise<string>;

  /** A WebSocket connection opened (after the upgrade). */
  connectionOpened(): void;
  /** A connection closed with `code` (codes citypulse does not define are counted as `other`). */
  connectionClosed(code: number): void;
  /** An upgrade was refused; `stage: 'auth'` also counts an auth failure with `reason`. */
  upgradeRejected(stage: 'origin' | 'limit' | 'auth', reason: string): void;
  /** A token was refused outside the upgrade (a `refresh` frame). */
  authFailure(reason: string): void;
  /** A connection was closed because its token expired without a refresh. */
  tokenExpired(): void;

  /**
   * Reads subscriptions per topic at scrape time, e.g. `() => topics.map((t) => [t, service.getTopicSubscribers(t)])`.
   * Replaces an earlier reader.
   */
  bindSubscriptions(read: () => Iterable<readonly [topic: string, count: number]>): void;

  /** A client frame arrived; `type` is the parsed message type, or `invalid` / `rate-limited`. */
  messageIn(type: string): void;
  /**
   * One message went out to `recipients` clients (a broadcast is one call). `topic` undefined = to everyone.
   * `bytes` is the size of one encoded frame.
   */
  messagesOut(type: string, topic: string | undefined, recipients: number, bytes: number): void;
  /** `count` messages for `topic` were dropped or conflated. */
  dropped(reason: DropReason, topic: string | undefined, count?: number): void;
  /** A slow consumer got a fresh snapshot or was closed. */
  slowConsumer(action: SlowConsumerAction): void;
  /** A client frame was rejected by the rate limiter; `closed` when it also closed the connection. */
  rateLimited(closed: boolean): void;
  /** A connection was terminated for missing its heartbeat. */
  heartbeatTerminated(): void;
  /**
   * An input was refused by the JSON bounds before anything was stored or sequenced: `path` is where it came in
   * (`http`, `ws`, `library`), `reason` the bounds code (`TOO_DEEP`, `TOO_LARGE`, `NOT_JSON`).
   */
  inputRejected(path: string, reason: string): void;

  /** A timestamp for {@link publishFinished} (`performance.now()`). */
  publishStarted(): number;
  /** Observes publish-to-last-local-send latency of a publish on `topic` started at `startedAt`. */
  publishFinished(topic: string | undefined, startedAt: number): void;

  /**
   * Reads the health of the data sources at scrape time, e.g. from `aggregator.sourceStatus()`. Replaces an
   * earlier reader.
   */
  bindSources(read: () => Iterable<SourceHealth>): void;

  /** Stops the event-loop monitor and empties the registry. Idempotent. */
  close(): void;
}

const DEFAULT_LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/** Label value used for messages to everyone (no topic). `*` cannot be part of a topic name. */
export const ALL_TOPICS_LABEL = '*';
/** Label value of topics beyond `maxTopicLabels`, and of close codes citypulse does not define. */
export const OTHER_LABEL = 'other';

const KNOWN_CLOSE_CODES = new Set<number>([
  ...Object.values(CloseCode).filter((v): v is number => typeof v === 'number'),
  1005, // no status received
  1006, // abnormal closure (no close frame)
]);

/** Creates the metrics of one server in a fresh registry. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const prefix = options.prefix ?? 'citypulse_';
  const maxTopicLabels = options.maxTopicLabels ?? 256;
  const registry = new Registry();
  if (options.defaultLabels !== undefined) registry.setDefaultLabels(options.defaultLabels);
  const registers = [registry];

  // --- label hygiene -------------------------------------------------------------------------------------------
  const topicLabels = new Set<string>();
  const topicLabel = (topic: string | undefined): string => {
    if (topic === undefined) return ALL_TOPICS_LABEL;
    if (topicLabels.has(topic)) return topic;
    if (topicLabels.size >= maxTopicLabels) return OTHER_LABEL;
    topicLabels.add(topic);
    return topic;
  };
  /** Caches `metric.labels(...)` children per label tuple. */
  const cached = <C>(make: (...values: string[]) => C): ((...values: string[]) => C) => {
    const cache = new Map<string, C>();
    return (...values) => {
      const key = values.join('\u0000');
      let child = cache.get(key);
      if (child === undefined) {
        child = make(...values);
        cache.set(key, child);
      }
      return child;
    };
  };

  // --- connections ---------------------------------------------------------------------------------------------
  const connections = new Gauge({
    name: `${prefix}connections`,
    help: 'Open WebSocket connections.',
    registers,
  });
  const opened = new Counter({
    name: `${prefix}connections_opened_total`,
    help: 'Connections opened.',
    registers,
  });
  const closedTotal = new Counter({
    name: `${prefix}connections_closed_total`,
    help: 'Connections closed, by close code.',
    labelNames: ['code'],
    registers,
  });
  const closedBy = cached((code = '') => closedTotal.labels(code));
  const rejected = new Counter({
    name: `${prefix}upgrades_rejected_total`,
    help: 'Upgrade requests refused, by stage (origin, limit, auth) and reason.',
    labelNames: ['stage', 'reason'],
    registers,
  });
  const rejectedBy = cached((stage = '', reason = '') => rejected.labels(stage, reason));
  const authFailures = new Counter({
    name: `${prefix}auth_failures_total`,
    help: 'Tokens refused (at upgrade or refresh), by reason.',
    labelNames: ['reason'],
    registers,
  });
  const authFailuresBy = cached((reason = '') => authFailures.labels(reason));
  const expired = new Counter({
    name: `${prefix}token_expired_closes_total`,
    help: 'Connections closed because their token expired without a refresh.',
    registers,
  });

  // --- subscriptions (read at scrape time) ---------------------------------------------------------------------
  let readSubscriptions: (() => Iterable<readonly [string, number]>) | undefined;
  new Gauge({
    name: `${prefix}subscriptions`,
    help: 'Subscribed clients per topic.',
    labelNames: ['topic'],
    registers,
    collect() {
      this.reset();
      if (readSubscriptions === undefined) return;
      for (const [topic, count] of readSubscriptions()) this.labels(topicLabel(topic)).set(count);
    },
  });

  // --- messages ------------------------------------------------------------------------------------------------
  const messagesIn = new Counter({
    name: `${prefix}messages_in_total`,
    help: 'Client frames received, by message type (invalid: failed validation).',
    labelNames: ['type'],
    registers,
  });
  const knownInTypes = new Set([
    'subscribe',
    'unsubscribe',
    'ping',
    'resume',
    'refresh',
    'invalid',
    'rate-limited',
  ]);
  const messagesInBy = cached((type = '') => messagesIn.labels(knownInTypes.has(type) ? type : OTHER_LABEL));
  const messagesOutTotal = new Counter({
    name: `${prefix}messages_out_total`,
    help: 'Frames sent to clients (one per recipient), by type and topic (* = to everyone).',
    labelNames: ['type', 'topic'],
    registers,
  });
  const messagesOutBy = cached((type = '', topic = '') => messagesOutTotal.labels(type, topic));
  const bytesOut = new Counter({
    name: `${prefix}bytes_out_total`,
    help: 'Payload bytes of frames sent to clients (one frame per recipient).',
    registers,
  });
  const droppedTotal = new Counter({
    name: `${prefix}messages_dropped_total`,
    help: 'Outbound messages not sent as such, by reason (conflated, overflow, closed) and topic.',
    labelNames: ['reason', 'topic'],
    registers,
  });
  const droppedBy = cached((reason = '', topic = '') => droppedTotal.labels(reason, topic));
  const slowConsumers = new Counter({
    name: `${prefix}slow_consumer_actions_total`,
    help: 'Slow consumers resynchronised with a snapshot or closed, by action.',
    labelNames: ['action'],
    registers,
  });
  const slowConsumerBy = cached((action = '') => slowConsumers.labels(action));
  const rateLimitedTotal = new Counter({
    name: `${prefix}rate_limited_total`,
    help: 'Client frames rejected by the per-connection rate limiter.',
    registers,
  });
  const rateLimitCloses = new Counter({
    name: `${prefix}rate_limit_closes_total`,
    help: 'Connections closed for sustained excess frame rate.',
    registers,
  });
  const heartbeat = new Counter({
    name: `${prefix}heartbeat_terminations_total`,
    help: 'Connections terminated for missing the heartbeat deadline.',
    registers,
  });
  const inputsRejected = new Counter({
    name: `${prefix}inputs_rejected_total`,
    help: 'Inputs refused by the JSON bounds (too deep, too large, not JSON) before being stored, by path and reason.',
    labelNames: ['path', 'reason'],
    registers,
  });

  // --- latency -------------------------------------------------------------------------------------------------
  const latency = new Histogram({
    name: `${prefix}publish_latency_seconds`,
    help: 'Time from publish to the last local send of the message, by topic.',
    labelNames: ['topic'],
    buckets: [...(options.latencyBuckets ?? DEFAULT_LATENCY_BUCKETS)],
    registers,
  });
  const latencyBy = cached((topic = '') => latency.labels(topic));

  // --- event loop ----------------------------------------------------------------------------------------------
  const loopDelay = monitorEventLoopDelay({ resolution: options.eventLoopResolutionMs ?? 20 });
  loopDelay.enable();
  new Gauge({
    name: `${prefix}event_loop_lag_seconds`,
    help: 'Event-loop delay since the previous scrape: mean, p50, p99 and max.',
    labelNames: ['stat'],
    registers,
    collect() {
      const empty = loopDelay.count === 0;
      const s = (ns: number): number => (empty || !Number.isFinite(ns) ? 0 : ns / 1e9);
      this.labels('mean').set(s(loopDelay.mean));
      this.labels('p50').set(s(loopDelay.percentile(50)));
      this.labels('p99').set(s(loopDelay.percentile(99)));
      this.labels('max').set(s(loopDelay.max));
      loopDelay.reset();
    },
  });

  // --- sources -------------------------------------------------------------------------------------------------
  let readSources: (() => Iterable<SourceHealth>) | undefined;
  new Gauge({
    name: `${prefix}source_up`,
    help: 'Whether a data source is healthy (1) or not (0).',
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      if (readSources === undefined) return;
      for (const source of readSources()) this.labels(source.name).set(source.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}source_last_update_seconds`,
    help: 'When a data source last delivered data, seconds since the epoch (absent if never).',
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      if (readSources === undefined) return;
      for (const source of readSources()) {
        const at = source.lastSuccessAt;
        if (typeof at === 'number' && Number.isFinite(at)) this.labels(source.name).set(at / 1000);
      }
    },
  });

  if (options.processMetrics === true) collectDefaultMetrics({ register: registry });

  let closed = false;
  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),

    connectionOpened() {
      connections.inc();
      opened.inc();
    },
    connectionClosed(code) {
      connections.dec();
      closedBy(KNOWN_CLOSE_CODES.has(code) ? String(code) : OTHER_LABEL).inc();
    },
    upgradeRejected(stage, reason) {
      rejectedBy(stage, reason).inc();
      if (stage === 'auth') authFailuresBy(reason).inc();
    },
    authFailure(reason) {
      authFailuresBy(reason).inc();
    },
    tokenExpired() {
      expired.inc();
    },
    bindSubscriptions(read) {
      readSubscriptions = read;
    },
    messageIn(type) {
      messagesInBy(type).inc();
    },
    messagesOut(type, topic, recipients, bytes) {
      if (recipients <= 0) return;
      messagesOutBy(type, topicLabel(topic)).inc(recipients);
      if (bytes > 0) bytesOut.inc(bytes * recipients);
    },
    dropped(reason, topic, count = 1) {
      if (count > 0) droppedBy(reason, topicLabel(topic)).inc(count);
    },
    slowConsumer(action) {
      slowConsumerBy(action).inc();
    },
    rateLimited(closedConnection) {
      rateLimitedTotal.inc();
      if (closedConnection) rateLimitCloses.inc();
    },
    heartbeatTerminated() {
      heartbeat.inc();
    },
    inputRejected(path, reason) {
      inputsRejected.labels(path, reason).inc();
    },
    publishStarted: () => performance.now(),
    publishFinished(topic, startedAt) {
      latencyBy(topicLabel(topic)).observe(Math.max(0, performance.now() - startedAt) / 1000);
    },
    bindSources(read) {
      readSources = read;
    },
    close() {
      if (closed) return;
      closed = true;
      loopDelay.disable();
      registry.clear();
    },
  };
}

/** Answers a `GET /metrics` request with `metrics`' exposition (500 if rendering fails). */
export async function serveMetrics(metrics: Metrics, res: ServerResponse): Promise<void> {
  try {
    const body = await metrics.render();
    res.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
    res.end(body);
  } catch {
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('metrics unavailable\n');
  }
}
