/**
 * `createServer()`: the whole product in one call: an HTTP server with the WebSocket endpoint at `/ws` (upgrade
 * handled here, in `noServer` mode), the HTTP API, the dashboard, a `WebSocketService` and a `DataAggregator` fed
 * by the configured sources (the built-in simulator by default).
 *
 * @module
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { DataAggregator, type DataAggregatorOptions } from '../aggregator/data-aggregator.js';
import { SIMULATOR_TOPICS, createSimulator } from '../aggregator/simulator.js';
import type { Source } from '../aggregator/source.js';
import { WS_PATH } from '../protocol/messages.js';
import { resolveTopicRegistry, type TopicsInput } from '../protocol/topic-registry.js';
import { createRequestHandler } from '../adapters/http-api.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { defaultWebRoot } from '../adapters/static-files.js';
import { WebSocketService, type WebSocketServiceOptions } from '../gateway/websocket-service.js';
import { createAuthenticator, type AuthenticatorOptions } from '../security/auth.js';
import { createUpgradeGate, rejectUpgrade } from '../security/upgrade-gate.js';
import { redactToken, selectSubprotocol } from '../security/tokens.js';
import { ConnectionLimiter } from '../security/limits.js';
import { createMetrics, serveMetrics, type Metrics } from '../gateway/metrics.js';
import {
  guardRequestListener,
  guardUpgradeListener,
  hardenHttpServer,
  httpServerTimeouts,
  parseRequestTarget,
  type ListenerErrorReporter,
} from '../adapters/http-guard.js';
import { sendError } from '../adapters/http-response.js';
import { createReadAuthorizer, readGuard } from '../adapters/read-access.js';
import { startClusterMode, type ClusterMode } from '../cluster/cluster-mode.js';
import { handleClusterHttp } from '../adapters/cluster-http.js';

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** How a bound interface appears in a URL: IPv6 bracketed, the wildcard as loopback. */
function urlHostOf(host: string): string {
  return host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
}

/** Options of {@link createServer}. Durations in milliseconds. */
export interface CityPulseServerOptions extends Omit<
  WebSocketServiceOptions,
  'logger' | 'now' | 'authenticator' | 'metrics' | 'topics'
> {
  /**
   * The topics served: a `TopicRegistry`, or names and `TopicDefinition`s in order (a name takes its catalog
   * definition, `src/protocol/catalog/`, when it has one, else the base schema only). `registry` wins when both are
   * given. Default: the four city topics.
   */
  topics?: TopicsInput;
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Interface to bind. Default `127.0.0.1`... set `0.0.0.0` to expose. */
  host?: string;
  /** Built-in data: `simulator` (default) or `none`. Ignored when `sources` is given. */
  source?: 'simulator' | 'none';
  /** Sources to run instead of the built-in choice (from a config file, say). */
  sources?: readonly Source[];
  /**
   * Factories of the sources to run (instead of `sources`): in cluster mode a source is re-created when its lease
   * moves to this node. `sourceFactoriesFromConfig(loadConfig(file))` gives these for a config file.
   */
  sourceFactories?: readonly (() => Source)[];
  /** Aggregator settings: TTLs per topic, alert rules, sweep interval (from a config file, say). */
  aggregator?: Pick<DataAggregatorOptions, 'ttlMs' | 'alerts' | 'sweepIntervalMs'>;
  /** Seed of the simulator. Default 42. */
  simulatorSeed?: number;
  /** Tick of the simulator. Default 1000. */
  simulatorIntervalMs?: number;
  /** Keys accepted on `POST /api/publish`, `/api/broadcast` and `/api/ingest`. Empty (default): writing is off. */
  publishKeys?: readonly string[];
  /** Largest HTTP request body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Directory of the dashboard files. Default: the package's `dist/web`. */
  webRoot?: string;
  logger?: Logger;
  /** Clock (ms since the epoch). Default `Date.now`. */
  now?: () => number;
  /** JWT authentication of WebSocket connections (HS256 secret and/or JWKS). Default: off (anonymous, all topics). */
  auth?: AuthenticatorOptions;
  /** Origins allowed to open WebSockets (`https://ops.example.com`, `*.example.com`). Default: any. */
  allowedOrigins?: readonly string[];
  /** Most WebSocket connections in total; more are answered 503 at upgrade. Default 10000. */
  maxConnections?: number;
  /** Most WebSocket connections per client IP; more are answered 429 at upgrade. Default 1000. */
  maxConnectionsPerIp?: number;
  /**
   * Most TCP connections that are not WebSockets (yet): plain HTTP, keep-alive, never a request. More are answered
   * 503 and closed. Default 1024.
   */
  maxPendingConnections?: number;
  /**
   * The same per socket address (429). Default 256; with `trustProxy` > 0 (every socket comes from the proxy) the
   * default is no per-address bound.
   */
  maxPendingPerIp?: number;
  /** Time a connection has to send a complete request head; then 408 and closed. Default 5000. */
  headersTimeoutMs?: number;
  /** Time a whole HTTP request (head and body) may take; then 408 and closed. Default 15000. */
  requestTimeoutMs?: number;
  /** A request body that sends nothing for this long is answered 408 and closed. Default 5000. */
  bodyIdleTimeoutMs?: number;
  /**
   * Serve `GET /metrics` on its own listener at this port (0: any free one) instead of the main port, where it then
   * answers 404. Without it `/metrics` is on the main port, behind a publish key when auth is on.
   */
  metricsPort?: number;
  /** Interface of the metrics listener. Default: `host`. */
  metricsHost?: string;
  /** Proxies in front that append to `X-Forwarded-For` (for per-IP limits and logs). Default 0. */
  trustProxy?: number;
  /** Bound on the asynchronous part of a handshake (token verification), ms. Default 5000. */
  handshakeTimeoutMs?: number;
  /** Prometheus metrics served at `/metrics`; pass your own to share a registry, or `false` for none. Default: new. */
  metrics?: Metrics | false;
  /** `close()` spreads the clients' 1001 closes over this many ms so they do not all reconnect at once. Default 0. */
  drainMs?: number;
  /** Cluster mode: `redis://host:port[/db]`. Nodes sharing a Redis and a key prefix act as one service. */
  redisUrl?: string;
  /** Prefix of every Redis key and channel. Default `citypulse:`. */
  redisKeyPrefix?: string;
  /** This node's id in the cluster. Default: a random UUID. */
  nodeId?: string;
  /** Cluster mode: a source lease's lifetime (a dead holder is replaced within about this long). Default 5000. */
  leaseTtlMs?: number;
  /** Cluster mode: how often node stats are written to Redis. Default 2000. */
  clusterStatsIntervalMs?: number;
  /** Cluster mode: longest wait for one Redis command and for a whole publish (then 503). Default 2000. */
  redisCommandTimeoutMs?: number;
  /** Cluster mode: how often Redis is PINGed to notice it stopped answering (`/readyz` 503). Default 1000. */
  redisHealthIntervalMs?: number;
}

/** A running citypulse server. */
export interface CityPulseServer {
  /** The port it listens on. */
  readonly port: number;
  /** `http://HOST:PORT`. */
  readonly url: string;
  /** `ws://HOST:PORT/ws`. */
  readonly wsUrl: string;
  readonly http: Server;
  /** `http://HOST:PORT/metrics` of the metrics listener, when `metricsPort` was given (and metrics are on). */
  readonly metricsUrl?: string;
  readonly wss: WebSocketServer;
  readonly service: WebSocketService;
  readonly aggregator: DataAggregator;
  /** Stops accepting, stops the sources, closes every client with 1001 and the HTTP server. Idempotent. */
  close(): Promise<void>;
}

/** Starts a citypulse server and resolves once it listens. */
export async function createServer(options: CityPulseServerOptions = {}): Promise<CityPulseServer> {
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const registry = options.registry ?? resolveTopicRegistry(options.topics);
  const topics = registry.names;
  const maxPayloadBytes = options.maxPayloadBytes ?? 64 * 1024;
  const host = options.host ?? '127.0.0.1';

  // Sources are made by factories, so a leased source can be restarted on another lease.
  const cluster: ClusterMode | null =
    options.redisUrl === undefined
      ? null
      : await startClusterMode({
          redisUrl: options.redisUrl,
          keyPrefix: options.redisKeyPrefix,
          nodeId: options.nodeId,
          historySize: options.historySize,
          historyTtlMs: options.historyTtlMs,
          leaseTtlMs: options.leaseTtlMs,
          statsIntervalMs: options.clusterStatsIntervalMs,
          commandTimeoutMs: options.redisCommandTimeoutMs,
          healthCheckIntervalMs: options.redisHealthIntervalMs,
          registry,
          logger,
          now,
        });
  const sourceFactories: readonly (() => Source)[] =
    options.sourceFactories ??
    options.sources?.map((source) => () => source) ??
    (options.source === 'none'
      ? []
      : [
          () =>
            createSimulator({
              seed: options.simulatorSeed ?? 42,
              intervalMs: options.simulatorIntervalMs ?? 1000,
              // Every served topic the simulator knows (the CLI's default serves transit: the fleet drives too).
              topics: SIMULATOR_TOPICS.filter((topic) => registry.has(topic)),
              now,
            }),
        ]);
  const sources =
    cluster === null ? sourceFactories.map((create) => create()) : cluster.leaseSources(sourceFactories);
  const aggregator = new DataAggregator({ ...options.aggregator, registry, sources, now, logger });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxPayloadBytes,
    perMessageDeflate: false,
    clientTracking: false,
    // A client may offer `citypulse.bearer.<token>` beside `citypulse.v1`; only the latter is ever echoed.
    handleProtocols: (protocols) => selectSubprotocol(protocols),
  });
  const metrics = options.metrics === false ? undefined : (options.metrics ?? createMetrics());
  const ownsMetrics = options.metrics === undefined;
  const authenticator = options.auth === undefined ? undefined : createAuthenticator(options.auth);
  const gate = createUpgradeGate({
    authenticator,
    allowedOrigins: options.allowedOrigins,
    trustedProxies: options.trustProxy,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    connectionLimiter: new ConnectionLimiter({
      maxTotal: options.maxConnections,
      maxPerIp: options.maxConnectionsPerIp,
    }),
  });
  const service = new WebSocketService(wss, {
    ...options,
    authenticator,
    metrics,
    topics,
    registry,
    maxPayloadBytes,
    logger,
    now,
    ...(cluster === null ? {} : { broker: cluster.broker }),
  });
  service.setSnapshotProvider(() => aggregator.getSnapshot());
  aggregator.attach(service);
  cluster?.attach(service, aggregator); // snapshots from Redis, stats, reconciliation

  let closing = false;
  const publishKeys = options.publishKeys ?? [];
  const reads = createReadAuthorizer({ authenticator, publishKeys, topics });
  const ownMetricsPort = options.metricsPort !== undefined && metrics !== undefined;
  const handleRequest = createRequestHandler({
    service,
    aggregator,
    publishKeys,
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    webRoot: options.webRoot ?? defaultWebRoot(),
    now,
    startedAt: now(),
    isClosing: () => closing,
    metrics: ownMetricsPort ? undefined : metrics,
    reads,
    bodyIdleTimeoutMs: options.bodyIdleTimeoutMs,
  });
  metrics?.bindSubscriptions(() => service.topics.map((t) => [t, service.getTopicSubscribers(t)] as const));
  metrics?.bindSources(() =>
    aggregator.sourceStatus().map((s) => ({
      name: s.name,
      healthy: s.state === 'running',
      lastSuccessAt: s.lastSuccessAt === null ? null : Date.parse(s.lastSuccessAt),
    })),
  );
  const report: ListenerErrorReporter = (error, where) =>
    logger.error({ err: error instanceof Error ? error.message : String(error), where }, 'listener failed');
  const guardOptions = {
    headersTimeoutMs: options.headersTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
    maxPendingConnections: options.maxPendingConnections,
    maxPendingPerIp:
      options.maxPendingPerIp ?? ((options.trustProxy ?? 0) > 0 ? Number.POSITIVE_INFINITY : undefined),
    onRefused: (ip: string, reason: string) => logger.info({ ip, reason }, 'connection refused'),
  };
  // Cluster mode answers /readyz, /api/stats?scope=cluster and /api/snapshot itself, with the same read rights.
  const guardReads = readGuard(reads);
  const http = createHttpServer(
    httpServerTimeouts(guardOptions),
    guardRequestListener((req, res) => {
      if (cluster === null || !handleClusterHttp(cluster, req, res, () => closing, guardReads))
        handleRequest(req, res);
    }, report),
  );
  const httpGuard = hardenHttpServer(http, guardOptions);
  http.on(
    'upgrade',
    guardUpgradeListener(async (req, socket, head) => {
      // A module-level listener: a closure here would keep `req` alive for the connection's whole life.
      socket.on('error', destroyOnError);
      // The head arrived: from here the upgrade gate (connection limits, handshake deadline) is in charge.
      httpGuard.upgraded(socket);
      const target = parseRequestTarget(req.url);
      if (closing || target?.pathname !== WS_PATH) {
        const [status, message] = closing
          ? [503, 'server shutting down']
          : target === null
            ? [400, 'bad request target']
            : [404, 'no WebSocket endpoint here'];
        rejectUpgrade(socket, status, message);
        return;
      }
      const admission = await gate.admit(req);
      if (!admission.ok) {
        metrics?.upgradeRejected(admission.stage, admission.reason);
        logger.info(
          {
            ip: admission.ip,
            status: admission.status,
            reason: admission.reason,
            url: redactToken(req.url ?? ''),
          },
          'upgrade refused',
        );
        rejectUpgrade(socket, admission.status, admission.reason);
        return;
      }
      if (closing || socket.destroyed) {
        admission.release();
        socket.destroy();
        return;
      }
      // The slot is given back when the TCP socket closes (ws may refuse the handshake itself and never call back).
      socket.once('close', admission.release);
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req, admission.principal));
    }, report),
  );

  // `/metrics` on its own listener (`metricsPort`): nothing else is served there.
  const metricsServer =
    ownMetricsPort && metrics !== undefined
      ? createHttpServer(
          httpServerTimeouts(guardOptions),
          guardRequestListener((req, res) => {
            const target = parseRequestTarget(req.url);
            if (target?.pathname === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
              serveMetrics(metrics, res).catch(() => res.destroy());
            } else {
              sendError(res, 404, 'NOT_FOUND', 'only GET /metrics is served here');
            }
          }, report),
        )
      : null;
  if (metricsServer !== null) hardenHttpServer(metricsServer, guardOptions);

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 8080, host, () => {
      http.off('error', reject);
      resolve();
    });
  })
    .then(async () => {
      if (metricsServer === null) return;
      await new Promise<void>((resolve, reject) => {
        metricsServer.once('error', reject);
        metricsServer.listen(options.metricsPort, options.metricsHost ?? host, () => {
          metricsServer.off('error', reject);
          resolve();
        });
      });
    })
    .catch(async (error: unknown) => {
      // Do not leak the Redis connections or a listener when a port is taken.
      if (http.listening) await new Promise<void>((resolve) => http.close(() => resolve()));
      await cluster?.close();
      throw error;
    });
  await aggregator.start();
  const port = (http.address() as AddressInfo).port;
  const urlHost = urlHostOf(host);
  logger.info({ port, host, topics, sources: sources.map((s) => s.name) }, 'citypulse listening');

  let metricsUrl: string | undefined;
  if (metricsServer !== null) {
    const address = metricsServer.address() as AddressInfo;
    metricsUrl = `http://${urlHostOf(options.metricsHost ?? host)}:${address.port}/metrics`;
  }

  let closed: Promise<void> | null = null;
  async function shutdown(): Promise<void> {
    closing = true;
    const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
    const metricsClosed =
      metricsServer === null
        ? Promise.resolve()
        : new Promise<void>((resolve) => metricsServer.close(() => resolve()));
    metricsServer?.closeAllConnections();
    await aggregator.stop();
    await service.close({ drainMs: options.drainMs });
    await cluster?.close();
    wss.close();
    http.closeAllConnections();
    await httpClosed;
    await metricsClosed;
    if (ownsMetrics) metrics?.close();
    logger.info({ port }, 'citypulse stopped');
  }

  return {
    port,
    url: `http://${urlHost}:${port}`,
    wsUrl: `ws://${urlHost}:${port}${WS_PATH}`,
    http,
    ...(metricsUrl === undefined ? {} : { metricsUrl }),
    wss,
    service,
    aggregator,
    close: () => (closed ??= shutdown()),
  };
}
