/**
 * Writing JSON answers of the HTTP API, and closing a connection whose request body was never read.
 *
 * An early answer (401, 403, 413, 408, or any error sent before the body was read) carries `Connection: close`:
 * Node then closes the socket once the answer is flushed instead of reading (and throwing away) whatever body the
 * client still declares, be it 100 GB.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Whether a request still has body bytes the server has not read: it declares a body (a non-zero
 * `Content-Length`, or any `Transfer-Encoding`) and the body has not ended. (`req.complete` alone is false for
 * every request while its listener runs, bodies or not.)
 */
export function hasUnreadBody(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The JSON error body of every refusal: `{ error: { code, message, field? } }`. */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string };
}

/**
 * Answers `status` with `body` as JSON. When the request's body has not been read to its end, the answer says
 * `Connection: close` and the connection is closed after it (the unread body is never read).
 */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  const unread = hasUnreadBody(res.req);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...(unread ? { connection: 'close' } : {}),
    ...headers,
  });
  res.end(text);
}

/** Answers `status` with an {@link ErrorBody}. */
export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  options: { readonly field?: string; readonly headers?: Readonly<Record<string, string>> } = {},
): void {
  const body: ErrorBody = {
    error: { code, message, ...(options.field === undefined ? {} : { field: options.field }) },
  };
  sendJson(res, status, body, options.headers);
}

/**
 * The last resort of a request listener that threw: a plain 500 with `Connection: close` when nothing was sent
 * yet, else the connection is destroyed (half an answer cannot be mended).
 */
export function failRequest(res: ServerResponse): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  try {
    res.shouldKeepAlive = false;
    sendError(res, 500, 'INTERNAL', 'internal error');
  } catch {
    res.destroy();
  }
}
