/**
 * The HTTP side of the server: health, readiness, stats, the current snapshot, the publish / broadcast / ingest API
 * and the dashboard's static files.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DataAggregator } from '../aggregator/data-aggregator.js';
import { readJsonBody } from './http-body.js';
import { safeEqualKey } from './auth.js';
import { serveStatic } from './static-files.js';
import type { WebSocketService } from './websocket-service.js';
import { serveMetrics, type Metrics } from './metrics.js';
import { JsonBoundsError } from '../json-bounds.js';

/** What the request handler needs. */
export interface HttpApiContext {
  readonly service: WebSocketService;
  readonly aggregator: DataAggregator;
  /** Keys accepted by `Authorization: Bearer` on the write endpoints. Empty: writing is off. */
  readonly publishKeys: readonly string[];
  /** Largest accepted request body. */
  readonly maxBodyBytes: number;
  /** Dashboard files. */
  readonly webRoot: string;
  /** Clock (ms). */
  readonly now: () => number;
  /** When the server started (ms). */
  readonly startedAt: number;
  /** Whether the server is shutting down (health turns 503). */
  readonly isClosing: () => boolean;
  /** Served at `GET /metrics` when present. */
  readonly metrics?: Metrics;
}

type Handler = (req: IncomingMessage, res: ServerResponse, ctx: HttpApiContext) => void | Promise<void>;

const MESSAGE_TYPES = new Set(['UPDATE', 'ALERT']);

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string, field?: string): void {
  sendJson(res, status, { error: { code, message, ...(field === undefined ? {} : { field }) } });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks `Authorization: Bearer <key>`; answers the request and returns false when it is not allowed. */
function authorizeWrite(req: IncomingMessage, res: ServerResponse, ctx: HttpApiContext): boolean {
  if (ctx.publishKeys.length === 0) {
    sendError(res, 403, 'PUBLISHING_DISABLED', 'publishing is off: start the server with --publish-key');
    return false;
  }
  const header = req.headers.authorization ?? '';
  const match = /^Bearer ([^\s]+)$/.exec(header);
  if (match === null || !safeEqualKey(match[1], ctx.publishKeys)) {
    sendJson(
      res,
      401,
      { error: { code: 'UNAUTHORIZED', message: 'a valid "Authorization: Bearer <key>" is required' } },
      { 'www-authenticate': 'Bearer' },
    );
    return false;
  }
  return true;
}

/** Reads the JSON object body of a write request, or answers with 400/413 and returns null. */
async function readObject(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: HttpApiContext,
): Promise<Record<string, unknown> | null> {
  const body = await readJsonBody(req, ctx.maxBodyBytes);
  if (!body.ok) {
    sendError(res, body.error.status, body.error.code, body.error.message);
    return null;
  }
  if (!isRecord(body.value)) {
    sendError(res, 400, 'BAD_BODY', 'the body must be a JSON object');
    return null;
  }
  // The JSON bounds, before anything is stored or sequenced (counted by the service).
  const violation = ctx.service.checkInput(body.value, 'http');
  if (violation !== null) {
    sendError(res, 400, violation.code, `body refused: ${violation.message}`);
    return null;
  }
  return body.value;
}

function messageType(value: unknown): 'UPDATE' | 'ALERT' | null {
  if (typeof value !== 'string') return null;
  const upper = value.toUpperCase();
  return MESSAGE_TYPES.has(upper) ? (upper as 'UPDATE' | 'ALERT') : null;
}

const publish: Handler = async (req, res, ctx) => {
  if (!authorizeWrite(req, res, ctx)) return;
  const body = await readObject(req, res, ctx);
  if (body === null) return;
  const { topic, data } = body;
  if (typeof topic !== 'string') return sendError(res, 400, 'BAD_FIELD', '"topic" must be a string', 'topic');
  if (!ctx.service.topics.includes(topic)) {
    return sendError(res, 400, 'UNKNOWN_TOPIC', `unknown topic "${topic.slice(0, 64)}"`, 'topic');
  }
  const type = messageType(body.type);
  if (type === null) return sendError(res, 400, 'BAD_FIELD', '"type" must be "UPDATE" or "ALERT"', 'type');
  if (data === undefined) return sendError(res, 400, 'BAD_FIELD', '"data" is required', 'data');
  const timestamp = new Date(ctx.now()).toISOString();
  let position;
  try {
    position = await ctx.service.publish(topic, { type, topic, data, timestamp });
  } catch (error) {
    if (error instanceof JsonBoundsError) return sendError(res, 400, error.code, error.message, 'data');
    return sendError(
      res,
      503,
      'UNAVAILABLE',
      'the message could not be sequenced (cluster store unreachable); retry',
    );
  }
  sendJson(res, 202, { topic, type, seq: position.seq, epoch: position.epoch, timestamp });
};

const broadcast: Handler = async (req, res, ctx) => {
  if (!authorizeWrite(req, res, ctx)) return;
  const body = await readObject(req, res, ctx);
  if (body === null) return;
  const type = messageType(body.type);
  if (type === null) return sendError(res, 400, 'BAD_FIELD', '"type" must be "UPDATE" or "ALERT"', 'type');
  if (body.data === undefined) return sendError(res, 400, 'BAD_FIELD', '"data" is required', 'data');
  const timestamp = new Date(ctx.now()).toISOString();
  ctx.service.broadcast({ type, data: body.data, timestamp });
  sendJson(res, 202, { type, clients: ctx.service.getClientCount(), timestamp });
};

const ingest: Handler = async (req, res, ctx) => {
  if (!authorizeWrite(req, res, ctx)) return;
  const body = await readObject(req, res, ctx);
  if (body === null) return;
  const { topic, entities, removes } = body;
  if (typeof topic !== 'string') return sendError(res, 400, 'BAD_FIELD', '"topic" must be a string', 'topic');
  if (!ctx.service.topics.includes(topic)) {
    return sendError(res, 400, 'UNKNOWN_TOPIC', `unknown topic "${topic.slice(0, 64)}"`, 'topic');
  }
  if (!Array.isArray(entities))
    return sendError(res, 400, 'BAD_FIELD', '"entities" must be an array', 'entities');
  if (removes !== undefined && (!Array.isArray(removes) || removes.some((id) => typeof id !== 'string'))) {
    return sendError(res, 400, 'BAD_FIELD', '"removes" must be an array of ids', 'removes');
  }
  const result = ctx.aggregator.ingest(topic, entities, (removes as string[] | undefined) ?? []);
  if (!result.ok) return sendError(res, 400, 'BAD_ENTITY', result.error, result.field);
  sendJson(res, 202, { topic, seq: result.seq });
};

const health: Handler = (_req, res, ctx) => {
  if (ctx.isClosing()) sendJson(res, 503, { status: 'closing' });
  else sendJson(res, 200, { status: 'ok' });
};

const ready: Handler = (_req, res, ctx) => {
  const isReady = !ctx.isClosing() && ctx.aggregator.isReady();
  sendJson(res, isReady ? 200 : 503, { ready: isReady, sources: ctx.aggregator.sourceStatus() });
};

const stats: Handler = (_req, res, ctx) => {
  const topics: Record<string, number> = {};
  for (const topic of ctx.service.topics) topics[topic] = ctx.service.getTopicSubscribers(topic);
  sendJson(res, 200, {
    clients: ctx.service.getClientCount(),
    topics,
    uptimeSec: Math.round((ctx.now() - ctx.startedAt) / 1000),
    messages: ctx.service.counters(),
    sources: ctx.aggregator.sourceStatus(),
  });
};

const snapshot: Handler = (_req, res, ctx) => {
  sendJson(res, 200, ctx.aggregator.getSnapshot());
};

const alerts: Handler = (_req, res, ctx) => {
  sendJson(res, 200, { alerts: ctx.aggregator.activeAlerts() });
};

const prometheus: Handler = async (_req, res, ctx) => {
  if (ctx.metrics === undefined) return sendError(res, 404, 'NOT_FOUND', 'metrics are off');
  await serveMetrics(ctx.metrics, res);
};

const ROUTES: Record<string, Partial<Record<string, Handler>>> = {
  '/healthz': { GET: health },
  '/readyz': { GET: ready },
  '/api/stats': { GET: stats },
  '/api/snapshot': { GET: snapshot },
  '/api/alerts': { GET: alerts },
  '/metrics': { GET: prometheus },
  '/api/publish': { POST: publish },
  '/api/broadcast': { POST: broadcast },
  '/api/ingest': { POST: ingest },
};

/** The server's request listener. */
export function createRequestHandler(
  ctx: HttpApiContext,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const route = ROUTES[pathname];
    if (route !== undefined) {
      const handler = route[req.method ?? 'GET'] ?? (req.method === 'HEAD' ? route.GET : undefined);
      if (handler === undefined) {
        sendJson(
          res,
          405,
          { error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} not allowed` } },
          { allow: Object.keys(route).join(', ') },
        );
        return;
      }
      Promise.resolve(handler(req, res, ctx)).catch(() => {
        if (!res.headersSent) sendError(res, 500, 'INTERNAL', 'internal error');
        else res.destroy();
      });
      return;
    }
    if (serveStatic(ctx.webRoot, pathname, req, res)) return;
    sendError(res, 404, 'NOT_FOUND', `no route for ${req.method} ${pathname.slice(0, 128)}`);
  };
}
