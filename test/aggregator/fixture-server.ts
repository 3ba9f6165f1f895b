/**
 * A real HTTP server on 127.0.0.1:0 serving files from test/fixtures, with ETag / If-None-Match support and a
 * queue of scripted responses (e.g. a few 500s) for failure tests. It records every request.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** Reads a fixture as parsed JSON. */
export function readFixture(name: string): unknown {
  return JSON.parse(readFileSync(`${FIXTURES_DIR}${name}`, 'utf8'));
}

export interface RecordedRequest {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly status: number;
}

export interface FixtureServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** The next requests get these statuses (with a small text body) before files are served again. */
  failNext(...statuses: number[]): void;
  /** Requests to `path` hang without an answer (for timeouts). */
  hang(path: string): void;
  /**
   * Serves `path` from a function instead of a file (a body built in the test, e.g. protobuf), with the same
   * ETag handling; a `status` other than 200 is answered as is. `null` serves the file again.
   */
  route(path: string, respond: (() => DynamicResponse) | null): void;
  close(): Promise<void>;
}

/** What a {@link FixtureServer.route} answers. */
export interface DynamicResponse {
  readonly status?: number;
  readonly body: string | Buffer;
  readonly contentType?: string;
}

export async function startFixtureServer(): Promise<FixtureServer> {
  const requests: RecordedRequest[] = [];
  const scripted: number[] = [];
  const hanging = new Set<string>();
  const routes = new Map<string, () => DynamicResponse>();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const answer = (status: number, headers: http.OutgoingHttpHeaders, body: string | Buffer): void => {
      requests.push({ path, headers: req.headers, status });
      res.writeHead(status, headers).end(body);
    };
    if (hanging.has(path)) {
      requests.push({ path, headers: req.headers, status: 0 });
      return;
    }
    const forced = scripted.shift();
    if (forced !== undefined) return answer(forced, { 'content-type': 'text/plain' }, `scripted ${forced}`);
    let body: Buffer;
    let contentType = 'application/json';
    const dynamic = routes.get(path)?.();
    if (dynamic !== undefined) {
      if ((dynamic.status ?? 200) !== 200)
        return answer(dynamic.status ?? 200, { 'content-type': 'text/plain' }, dynamic.body);
      body = Buffer.from(dynamic.body);
      contentType = dynamic.contentType ?? contentType;
    } else
      try {
        body = readFileSync(`${FIXTURES_DIR}${path.replace(/^\/+/, '').replace(/\.\./g, '')}`);
      } catch {
        return answer(404, { 'content-type': 'text/plain' }, 'not found');
      }
    const etag = `"${createHash('sha1').update(body).digest('hex').slice(0, 16)}"`;
    if (req.headers['if-none-match'] === etag) return answer(304, { etag }, '');
    answer(
      200,
      { 'content-type': contentType, etag, 'last-modified': 'Sun, 01 Mar 2026 11:55:00 GMT' },
      body,
    );
  });
  // Idle connections stay open until the client closes them, so a client that leaks sockets shows it.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext: (...statuses) => scripted.push(...statuses),
    hang: (path) => hanging.add(path),
    route: (path, respond) => {
      if (respond === null) routes.delete(path);
      else routes.set(path, respond);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Waits until `predicate` holds, checking every 5 ms; fails after `timeoutMs` (a bound, not an assertion on time). */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
