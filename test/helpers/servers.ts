/** Test servers on port 0, each registered for cleanup so none outlives its test. */
import type { TestContext } from 'node:test';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { WebSocketService, type WebSocketServiceOptions } from '../../src/gateway/websocket-service.js';
import {
  createServer,
  type CityPulseServer,
  type CityPulseServerOptions,
} from '../../src/app/create-server.js';

/** A bare `ws` server on port 0 with a `WebSocketService` attached, as the design document wires them. */
export async function startService(
  t: TestContext,
  options: WebSocketServiceOptions = {},
  maxPayload?: number,
): Promise<{ service: WebSocketService; wss: WebSocketServer; url: string }> {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    ...(maxPayload === undefined ? {} : { maxPayload }),
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const service = new WebSocketService(wss, options);
  t.after(async () => {
    await service.close();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  return { service, wss, url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` };
}

/** A full citypulse server on port 0 (no data source unless asked). */
export async function startServer(
  t: TestContext,
  options: CityPulseServerOptions = {},
): Promise<CityPulseServer> {
  const server = await createServer({ port: 0, source: 'none', ...options });
  t.after(() => server.close());
  return server;
}

export function isoNow(): string {
  return new Date().toISOString();
}

/**
 * POSTs `body` (JSON-encoded unless already a string) to `server`'s `path` with a bearer `key`; returns the status
 * and the JSON answer. Bounded by a 10 s deadline.
 */
export async function postJson(
  server: Pick<CityPulseServer, 'url'>,
  path: string,
  body: unknown,
  key: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
