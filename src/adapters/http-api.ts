/**
 * The HTTP side of the server: health, readiness, stats, the current snapshot, the publish / broadcast / ingest API
 * and the dashboard's static files.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DataAggregator } from '../aggregator/data-aggregator.js';
import { readJsonBody } from './http-body.js';
import { parseRequestTarget } from './http-guard.js';
import { failRequest, sendError, sendJson } from './http-response.js';
import { hasPublishKey, pickTopics, readGuard, sendReadRefusal, type ReadAuthorizer } from './read-access.js';
import { serveStatic } from './static-files.js';
import type { WebSocketService } from '../gateway/websocket-service.js';
import { serveMetrics, type Metrics } from '../gateway/metrics.js';
import { JsonBoundsError } from '../protocol/json-bounds.js';
import { isRecord } from '../shared/json.js';

/** What the request handler needs. */
/** What the HTTP API needs of the aggregator: injected, so the routes depend on five methods, not the class. */
export type HttpApiAggregator = Pick<
  DataAggregator,
  'ingest' | 'publishUpdate' | 'isReady' | 'sourceStatus' | 'getSnapshot' | 'activeAlerts'
>;

export interface HttpApiContext {
  readonly service: WebSocketService;
  readonly aggregator: HttpApiAggregator;
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
  /** Served at `GET /metrics` when present (absent when metrics are off or served on their own port). */
  readonly metrics?: Metrics;
  /** Who may read topic data and `/metrics` (see `read-access.ts`). */
  readonly reads: ReadAuthorizer;
  /** A request body that sends nothing for this long is answered 408 and its connection closed. */
  readonly bodyIdleTimeoutMs?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, ctx: HttpApiContext) => void | Promise<void>;

const MESSAGE_TYPES = new Set(['UPDATE', 'ALERT']);

function badField(res: ServerResponse, code: string, message: string, field: string): void {
  sendError(res, 400, code, message, { field });
}

/**
 * Checks `Authorization: Bearer <key>` (scheme case-insensitive: the one parser, `bearerToken`); answers the request
 * and returns false when it is not allowed. The body of a refused request is never read.
 */
function authorizeWrite(req: IncomingMessage, res: ServerResponse, ctx: HttpApiContext): boolean {
  if (ctx.publishKeys.length === 0) {
    sendError(res, 403, 'PUBLISHING_DISABLED', 'publishing is off: start the server with --publish-key');
    return false;
  }
  if (!hasPublishKey(req, ctx.publishKeys)) {
    sendError(res, 401, 'UNAUTHORIZED', 'a valid "Authorization: Bearer <key>" is required', {
      headers: { 'www-authenticate': 'Bearer' },
    });
    return false;
  }
  return true;
}

/** Reads the JSON object body of a write request, or answers with 400/408/413 and returns null. */
async function readObject(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: HttpApiContext,
): Promise<Record<string, unknown> | null> {
  const body = await readJsonBody(req, ctx.maxBodyBytes, { idleTimeoutMs: ctx.bodyIdleTimeoutMs });
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
  if (typeof topic !== 'string') return badField(res, 'BAD_FIELD', '"topic" must be a string', 'topic');
  if (!ctx.service.topics.includes(topic)) {
    return badField(res, 'UNKNOWN_TOPIC', `unknown topic "${topic.slice(0, 64)}"`, 'topic');
  }
  const type = messageType(body.type);
  if (type === null) return badField(res, 'BAD_FIELD', '"type" must be "UPDATE" or "ALERT"', 'type');
  if (data === undefined) return badField(res, 'BAD_FIELD', '"data" is required', 'data');
  const timestamp = new Date(ctx.now()).toISOString();
  let position;
  try {
    if (type === 'UPDATE') {
      // One rule in every mode: a valid change of the topic's state, applied like /api/ingest; else 400, no seq.
      const result = ctx.aggregator.publishUpdate(topic, data);
      if (!result.ok) {
        const field = result.field === '' ? 'data' : `data.${result.field}`;
        return sendError(res, 400, 'BAD_UPDATE', `${field}: ${result.error}`, { field });
      }
      position = await result.position;
    } else {
      position = await ctx.service.publish(topic, { type, topic, data, timestamp });
    }
  } catch (error) {
    if (error instanceof JsonBoundsError)
      return sendError(res, 400, error.code, error.message, { field: 'data' });
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
  if (type === null) return badField(res, 'BAD_FIELD', '"type" must be "UPDATE" or "ALERT"', 'type');
  if (body.data === undefined) return badField(res, 'BAD_FIELD', '"data" is required', 'data');
  const timestamp = new Date(ctx.now()).toISOString();
  ctx.service.broadcast({ type, data: body.data, timestamp });
  sendJson(res, 202, { type, clients: ctx.service.getClientCount(), timestamp });
};

const ingest: Handler = async (req, res, ctx) => {
  if (!authorizeWrite(req, res, ctx)) return;
  const body = await readObject(req, res, ctx);
  if (body === null) return;
  const { topic, entities, removes } = body;
  if (typeof topic !== 'string') return badField(res, 'BAD_FIELD', '"topic" must be a string', 'topic');
  if (!ctx.service.topics.includes(topic)) {
    return badField(res, 'UNKNOWN_TOPIC', `unknown topic "${topic.slice(0, 64)}"`, 'topic');
  }
  if (!Array.isArray(entities)) return badField(res, 'BAD_FIELD', '"entities" must be an array', 'entities');
  if (removes !== undefined && (!Array.isArray(removes) || removes.some((id) => typeof id !== 'string'))) {
    return badField(res, 'BAD_FIELD', '"removes" must be an array of ids', 'removes');
  }
  const result = ctx.aggregator.ingest(topic, entities, (removes as string[] | undefined) ?? []);
  if (!result.ok) return sendError(res, 400, 'BAD_ENTITY', result.error, { field: result.field });
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

const stats: Handler = async (req, res, ctx) => {
  const permission = await readGuard(ctx.reads)(req, res);
  if (permission === null) return;
  const topics: Record<string, number> = {};
  for (const topic of ctx.service.topics) topics[topic] = ctx.service.getTopicSubscribers(topic);
  sendJson(res, 200, {
    clients: ctx.service.getClientCount(),
    topics: pickTopics(topics, permission),
    uptimeSec: Math.round((ctx.now() - ctx.startedAt) / 1000),
    messages: ctx.service.counters(),
    sources: ctx.aggregator.sourceStatus(),
  });
};

const snapshot: Handler = async (req, res, ctx) => {
  const permission = await readGuard(ctx.reads)(req, res);
  if (permission === null) return;
  sendJson(res, 200, pickTopics(ctx.aggregator.getSnapshot(), permission));
};

/** `GET /api/topics`: the registry's client-visible part (`TopicInfo`), in registry order, as far as readable. */
const topics: Handler = async (req, res, ctx) => {
  const permission = await readGuard(ctx.reads)(req, res);
  if (permission === null) return;
  sendJson(res, 200, { topics: ctx.service.registry.info().filter((info) => permission.allows(info.name)) });
};

const alerts: Handler = async (req, res, ctx) => {
  const permission = await readGuard(ctx.reads)(req, res);
  if (permission === null) return;
  sendJson(res, 200, { alerts: ctx.aggregator.activeAlerts().filter((a) => permission.allows(a.topic)) });
};

const prometheus: Handler = async (req, res, ctx) => {
  if (ctx.metrics === undefined) return sendError(res, 404, 'NOT_FOUND', 'no metrics on this port');
  const decision = ctx.reads.operations(req);
  if (!decision.ok) return sendReadRefusal(res, decision);
  await serveMetrics(ctx.metrics, res);
};

const ROUTES: Record<string, Partial<Record<string, Handler>>> = {
  '/healthz': { GET: health },
  '/readyz': { GET: ready },
  '/api/stats': { GET: stats },
  '/api/snapshot': { GET: snapshot },
  '/api/topics': { GET: topics },
  '/api/alerts': { GET: alerts },
  '/metrics': { GET: prometheus },
  '/api/publish': { POST: publish },
  '/api/broadcast': { POST: broadcast },
  '/api/ingest': { POST: ingest },
};

/**
 * The server's request listener. An unparsable request target is answered 400; a handler that throws or rejects
 * is answered 500 (or its connection destroyed), never thrown to the process.
 */
export function createRequestHandler(
  ctx: HttpApiContext,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const target = parseRequestTarget(req.url);
    if (target === null) {
      sendError(res, 400, 'BAD_REQUEST_TARGET', 'the request target is not a valid path or URL');
      return;
    }
    const pathname = target.pathname;
    const route = ROUTES[pathname];
    if (route !== undefined) {
      const handler = route[req.method ?? 'GET'] ?? (req.method === 'HEAD' ? route.GET : undefined);
      if (handler === undefined) {
        sendError(res, 405, 'METHOD_NOT_ALLOWED', `${String(req.method).slice(0, 32)} not allowed`, {
          headers: { allow: Object.keys(route).join(', ') },
        });
        return;
      }
      Promise.resolve()
        .then(() => handler(req, res, ctx))
        .catch(() => failRequest(res));
      return;
    }
    if (serveStatic(ctx.webRoot, pathname, req, res)) return;
    sendError(
      res,
      404,
      'NOT_FOUND',
      `no route for ${String(req.method).slice(0, 32)} ${pathname.slice(0, 128)}`,
    );
  };
}
