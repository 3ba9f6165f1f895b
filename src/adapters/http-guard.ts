/**
 * What keeps the HTTP surface standing whatever a stranger sends: the one parser of request targets (an unparsable
 * one is answered 400, never thrown), guards that stop an exception in a request or upgrade listener from reaching
 * the process, the `clientError` answer of malformed requests, the server's head/request deadlines, and a bound on
 * connections that have not become WebSockets (in total and per address).
 *
 * @module
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { rejectUpgrade } from '../security/upgrade-gate.js';
import { DEFAULT_LIMITS, ConnectionLimiter, socketIp } from '../security/limits.js';
import { failRequest } from './http-response.js';
import { assertNever } from '../protocol/messages.js';

/** Base of origin-form targets; only its path and query are ever read. */
const ORIGIN = 'http://localhost';

/**
 * Parses an HTTP request target (RFC 9112 §3.2): origin-form (`/path?query`, whatever the path holds: `//[` is
 * the path `//[`) or absolute-form (`http://host:port/path`). Returns `null`, never throws, for anything else or
 * anything the URL parser refuses (`http://[`, `http://x:70000/`, `http://%zz/`, `*`, an empty target): the
 * caller answers 400.
 */
export function parseRequestTarget(target: string | undefined): URL | null {
  if (target === undefined || target === '') return null;
  try {
    if (target.startsWith('/')) return new URL(ORIGIN + target);
    if (!/^https?:\/\//i.test(target)) return null;
    return new URL(target);
  } catch {
    return null;
  }
}

/** Called with what a guarded listener threw; logs it. Must not throw itself. */
export type ListenerErrorReporter = (error: unknown, where: 'request' | 'upgrade') => void;

/**
 * Wraps a request listener: an exception it throws synchronously is reported and answered 500 (or the connection
 * destroyed when the answer had started). Asynchronous work of the listener must catch its own errors.
 */
export function guardRequestListener(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  report: ListenerErrorReporter,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    try {
      listener(req, res);
    } catch (error) {
      safeReport(report, error, 'request');
      failRequest(res);
    }
  };
}

/**
 * Wraps an upgrade listener: a synchronous exception, or a rejection of the promise it returns, is reported and
 * the socket destroyed.
 */
export function guardUpgradeListener(
  listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void | Promise<void>,
  report: ListenerErrorReporter,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const fail = (error: unknown): void => {
      safeReport(report, error, 'upgrade');
      socket.destroy();
    };
    try {
      const result = listener(req, socket, head);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  };
}

function safeReport(report: ListenerErrorReporter, error: unknown, where: 'request' | 'upgrade'): void {
  try {
    report(error, where);
  } catch {
    // A failing logger must not turn a handled error into a crash.
  }
}

/** The status a malformed or timed-out request is answered with, by the parser's error code. */
export function clientErrorStatus(code: string | undefined): 400 | 408 | 413 | 431 {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 431;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return 408;
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 413;
    case undefined:
    default:
      return 400;
  }
}

/**
 * The `clientError` listener: a request Node's parser refuses (bad request line, bad header, conflicting
 * `Content-Length` / `Transfer-Encoding`, a head or request that took too long) is answered 400/408/413/431 with
 * `Connection: close` when nothing was answered on the connection yet, and the socket is closed.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  const status = clientErrorStatus(error.code);
  rejectUpgrade(socket, status, status === 408 ? 'request timeout' : 'bad request');
}

/** Options of {@link hardenHttpServer}. Durations in ms. */
export interface HttpServerGuardOptions {
  /** Time to receive a complete request head. Default {@link DEFAULT_LIMITS.headersTimeoutMs}. */
  headersTimeoutMs?: number;
  /** Time to receive a whole request, head and body. Default {@link DEFAULT_LIMITS.requestTimeoutMs}. */
  requestTimeoutMs?: number;
  /** Connections not (yet) upgraded, in total. Default {@link DEFAULT_LIMITS.maxPendingConnections}. */
  maxPendingConnections?: number;
  /** The same per client address. Default {@link DEFAULT_LIMITS.maxPendingPerIp}. `Infinity`: no per-address bound. */
  maxPendingPerIp?: number;
  /** Told of each connection refused by a pending bound. */
  onRefused?: (ip: string, reason: 'max-pending-connections' | 'max-pending-per-ip') => void;
}

/** What {@link hardenHttpServer} leaves to its caller. */
export interface HttpServerGuard {
  /** Hands the socket over to the WebSocket side: it no longer counts as pending. Idempotent. */
  upgraded(socket: Duplex): void;
  /** Connections counted as pending now. */
  readonly pending: number;
}

/**
 * The server options that bound how long a request may take: pass them to `http.createServer`. The deadlines are
 * checked every `connectionsCheckingInterval`, a quarter of the head deadline (at most 1 s).
 */
export function httpServerTimeouts(options: HttpServerGuardOptions = {}): {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
} {
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_LIMITS.requestTimeoutMs;
  // Node refuses a head deadline longer than the request deadline.
  const headersTimeout = Math.min(
    options.headersTimeoutMs ?? DEFAULT_LIMITS.headersTimeoutMs,
    requestTimeout,
  );
  return {
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(headersTimeout / 4))),
  };
}

/**
 * Hardens an `http.Server` created with {@link httpServerTimeouts}: answers parser errors (`clientError`) and bounds
 * the connections that are not WebSockets (yet), in total (503) and per socket address (429), counted from the
 * TCP accept until the socket closes or {@link HttpServerGuard.upgraded} is called for it. A socket that never
 * sends a complete head is answered 408 and closed by the head deadline.
 */
export function hardenHttpServer(server: Server, options: HttpServerGuardOptions = {}): HttpServerGuard {
  const limiter = new ConnectionLimiter({
    maxTotal: options.maxPendingConnections ?? DEFAULT_LIMITS.maxPendingConnections,
    maxPerIp: options.maxPendingPerIp ?? DEFAULT_LIMITS.maxPendingPerIp,
  });
  const releases = new WeakMap<Duplex, () => void>();
  server.on('clientError', answerClientError);
  server.on('connection', (socket: Socket) => {
    const ip = socketIp(socket);
    const lease = limiter.tryAcquire(ip);
    switch (lease.status) {
      case 'ok':
        releases.set(socket, lease.release);
        socket.once('close', lease.release);
        return;
      case 'total':
        options.onRefused?.(ip, 'max-pending-connections');
        rejectUpgrade(socket, 503, 'too many connections');
        return;
      case 'per-ip':
        options.onRefused?.(ip, 'max-pending-per-ip');
        rejectUpgrade(socket, 429, 'too many connections from this address');
        return;
      default:
        return assertNever(lease);
    }
  });
  return {
    upgraded(socket) {
      releases.get(socket)?.();
      releases.delete(socket);
    },
    get pending() {
      return limiter.total;
    },
  };
}
