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
import { DataAggregator } from '../aggregator/data-aggregator.js';
import { createSimulator } from '../aggregator/simulator.js';
import type { Source } from '../aggregator/source.js';
import { DEFAULT_TOPICS, WS_PATH } from '../protocol.js';
import { createRequestHandler } from './http-api.js';
import { silentLogger, type Logger } from './logger.js';
import { defaultWebRoot } from './static-files.js';
import { WebSocketService, type WebSocketServiceOptions } from './websocket-service.js';

/** Options of {@link createServer}. Durations in milliseconds. */
export interface CityPulseServerOptions extends Omit<WebSocketServiceOptions, 'logger' | 'now'> {
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Interface to bind. Default `127.0.0.1`... set `0.0.0.0` to expose. */
  host?: string;
  /** Built-in data: `simulator` (default) or `none`. Ignored when `sources` is given. */
  source?: 'simulator' | 'none';
  /** Sources to run instead of the built-in choice (from a config file, say). */
  sources?: readonly Source[];
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

  const sources =
    options.sources ??
    (options.source === 'none'
      ? []
      : [
          createSimulator({
            seed: options.simulatorSeed ?? 42,
            intervalMs: options.simulatorIntervalMs ?? 1000,
            now,
          }),
        ]);
  const aggregator = new DataAggregator({ topics, sources, now, logger });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxPayloadBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const service = new WebSocketService(wss, { ...options, topics, maxPayloadBytes, logger, now });
  service.setSnapshotProvider(() => aggregator.getSnapshot());
  aggregator.attach(service);

  let closing = false;
  const http = createHttpServer(
    createRequestHandler({
      service,
      aggregator,
      publishKeys: options.publishKeys ?? [],
      maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
      webRoot: options.webRoot ?? defaultWebRoot(),
      now,
      startedAt: now(),
      isClosing: () => closing,
    }),
  );
  http.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (closing || pathname !== WS_PATH) {
      const status = closing ? '503 Service Unavailable' : '404 Not Found';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 8080, host, () => {
      http.off('error', reject);
      resolve();
    });
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
    await service.close();
    wss.close();
    http.closeAllConnections();
    await httpClosed;
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
