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
import { createSimulator } from '../aggregator/simulator.js';
import type { Source } from '../aggregator/source.js';
import { DEFAULT_TOPICS, WS_PATH } from '../protocol.js';
import { createRequestHandler } from './http-api.js';
import { silentLogger, type Logger } from './logger.js';
import { defaultWebRoot } from './static-files.js';
import { WebSocketService, type WebSocketServiceOptions } from './websocket-service.js';
import {
  createAuthenticator,
  createUpgradeGate,
  redactToken,
  rejectUpgrade,
  selectSubprotocol,
  type AuthenticatorOptions,
} from './auth.js';
import { ConnectionLimiter } from './limits.js';
import { createMetrics, type Metrics } from './metrics.js';
import { startClusterMode, type ClusterMode } from '../cluster/cluster-mode.js';

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** The path of a request target, without parsing the whole URL. */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Options of {@link createServer}. Durations in milliseconds. */
export interface CityPulseServerOptions extends Omit<
  WebSocketServiceOptions,
  'logger' | 'now' | 'authenticator' | 'metrics'
> {
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
  /** Most WebSocket connections per client IP; more are answered 429 at upgrade. Default 100. */
  maxConnectionsPerIp?: number;
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
  const topics = options.topics ?? DEFAULT_TOPICS;
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
              now,
            }),
        ]);
  const sources =
    cluster === null ? sourceFactories.map((create) => create()) : cluster.leaseSources(sourceFactories);
  const aggregator = new DataAggregator({ ...options.aggregator, topics, sources, now, logger });
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
    maxPayloadBytes,
    logger,
    now,
    ...(cluster === null ? {} : { broker: cluster.broker }),
  });
  service.setSnapshotProvider(() => aggregator.getSnapshot());
  aggregator.attach(service);
  cluster?.attach(service, aggregator); // snapshots from Redis, stats, reconciliation

  let closing = false;
  const handleRequest = createRequestHandler({
    service,
    aggregator,
    publishKeys: options.publishKeys ?? [],
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    webRoot: options.webRoot ?? defaultWebRoot(),
    now,
    startedAt: now(),
    isClosing: () => closing,
    metrics,
  });
  metrics?.bindSubscriptions(() => service.topics.map((t) => [t, service.getTopicSubscribers(t)] as const));
  metrics?.bindSources(() =>
    aggregator.sourceStatus().map((s) => ({
      name: s.name,
      healthy: s.state === 'running',
      lastSuccessAt: s.lastSuccessAt === null ? null : Date.parse(s.lastSuccessAt),
    })),
  );
  // Cluster mode answers /readyz, /api/stats?scope=cluster and /api/snapshot itself.
  const http = createHttpServer((req, res) => {
    if (cluster === null || !cluster.handleHttp(req, res, () => closing)) handleRequest(req, res);
  });
  http.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    // A module-level listener: a closure here would keep `req` alive for the connection's whole life.
    socket.on('error', destroyOnError);
    const pathname = pathOf(req.url);
    if (closing || pathname !== WS_PATH) {
      rejectUpgrade(
        socket,
        closing ? 503 : 404,
        closing ? 'server shutting down' : 'no WebSocket endpoint here',
      );
      return;
    }
    void gate.admit(req).then((admission) => {
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
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 8080, host, () => {
      http.off('error', reject);
      resolve();
    });
  }).catch(async (error: unknown) => {
    await cluster?.close(); // do not leak the Redis connections when the port is taken
    throw error;
  });
  await aggregator.start();
  const port = (http.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  logger.info({ port, host, topics, sources: sources.map((s) => s.name) }, 'citypulse listening');

  let closed: Promise<void> | null = null;
  async function shutdown(): Promise<void> {
    closing = true;
    const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
    await aggregator.stop();
    await service.close({ drainMs: options.drainMs });
    await cluster?.close();
    wss.close();
    http.closeAllConnections();
    await httpClosed;
    if (ownsMetrics) metrics?.close();
    logger.info({ port }, 'citypulse stopped');
  }

  return {
    port,
    url: `http://${urlHost}:${port}`,
    wsUrl: `ws://${urlHost}:${port}${WS_PATH}`,
    http,
    wss,
    service,
    aggregator,
    close: () => (closed ??= shutdown()),
  };
}
