/**
 * The upgrade gate wired into a real HTTP server and `ws` in noServer mode, the way create-server should do it:
 * origin, connection limits and token checked before the upgrade, refused with a plain HTTP status.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { connect as tcpConnect, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL, selectSubprotocol } from '../../src/security/tokens.js';
import { createAuthenticator, type Principal } from '../../src/security/auth.js';
import {
  createUpgradeGate,
  rejectUpgrade,
  type UpgradeGateOptions,
} from '../../src/security/upgrade-gate.js';
import { ConnectionLimiter } from '../../src/security/limits.js';
import { createMetrics } from '../../src/gateway/metrics.js';
import { SECRET, mint } from './tokens.js';

interface Harness {
  url: string;
  limiter: ConnectionLimiter;
  principals: Principal[];
  metricsText: () => Promise<string>;
}

async function startGateServer(
  t: { after: (fn: () => unknown) => void },
  options: Omit<UpgradeGateOptions, 'connectionLimiter'> & { maxTotal?: number; maxPerIp?: number },
): Promise<Harness> {
  const limiter = new ConnectionLimiter({
    maxTotal: options.maxTotal ?? 100,
    maxPerIp: options.maxPerIp ?? 100,
  });
  const gate = createUpgradeGate({ ...options, connectionLimiter: limiter });
  const metrics = createMetrics();
  const principals: Principal[] = [];
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (set) => selectSubprotocol(set) });
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    void gate.admit(req).then((admission) => {
      if (!admission.ok) {
        metrics.upgradeRejected(admission.stage, admission.reason);
        rejectUpgrade(socket, admission.status, admission.reason);
        return;
      }
      if (socket.destroyed) {
        admission.release();
        return;
      }
      // The socket's close covers every end: a normal close, a terminate, and ws refusing the handshake itself.
      socket.once('close', admission.release);
      wss.handleUpgrade(req, socket, head, (ws) => {
        metrics.connectionOpened();
        principals.push(admission.principal);
        ws.on('close', (code) => metrics.connectionClosed(code));
        ws.send(JSON.stringify({ subject: admission.principal.subject ?? null }));
      });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const ws of wss.clients) ws.terminate();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
    wss.close();
    metrics.close();
  });
  return {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws`,
    limiter,
    principals,
    metricsText: () => metrics.render(),
  };
}

type Outcome = { open: true; ws: WebSocket; first: unknown } | { open: false; status: number; body: string };

/** Connects and waits for the first frame or the HTTP refusal. The caller closes an open socket. */
function connect(
  t: { after: (fn: () => unknown) => void },
  url: string,
  protocols: string[] = [],
  headers: Record<string, string> = {},
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    t.after(() => ws.terminate());
    const timer = setTimeout(() => reject(new Error('no outcome within 5 s')), 5000);
    ws.once('message', (data) => {
      clearTimeout(timer);
      resolve({ open: true, ws, first: JSON.parse(String(data)) });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ open: false, status: res.statusCode ?? 0, body });
      });
    });
    ws.once('error', (error) => {
      if (!/Unexpected server response/.test(error.message)) {
        clearTimeout(timer);
        reject(error);
      }
    });
  });
}

async function closeAndWait(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return;
  await new Promise((resolve) => {
    ws.once('close', resolve);
    ws.close();
  });
}

async function waitFor(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('upgrade gate over real sockets', () => {
  it('with auth off everyone is admitted as anonymous with every topic', async (t) => {
    const h = await startGateServer(t, {});
    const outcome = await connect(t, h.url);
    assert.equal(outcome.open, true);
    assert.equal(h.principals[0]?.topics.allowsAll, true);
  });

  it('refuses a missing, expired or forged token with 401 before the upgrade', async (t) => {
    const authenticator = createAuthenticator({ secret: SECRET });
    const h = await startGateServer(t, { authenticator });
    const missing = await connect(t, h.url);
    assert.deepEqual(missing, { open: false, status: 401, body: 'missing\n' });
    const expired = await mint({}, { secret: SECRET }, { expiresAt: Date.now() - 60_000 });
    const e = await connect(t, `${h.url}?token=${expired}`);
    assert.equal(e.open === false && e.status, 401);
    assert.equal(e.open === false && e.body, 'expired\n');
    const forged = await mint({}, { secret: `${SECRET}x` });
    const f = await connect(t, h.url, [], { Authorization: `Bearer ${forged}` });
    assert.equal(f.open === false && f.body, 'bad-signature\n');
    assert.equal(h.limiter.total, 0, 'refused handshakes give their slot back');
    const text = await h.metricsText();
    assert.match(text, /citypulse_auth_failures_total\{reason="missing"\} 1/);
    assert.match(text, /citypulse_auth_failures_total\{reason="expired"\} 1/);
  });

  it('admits a token from the subprotocol and echoes only citypulse.v1', async (t) => {
    const h = await startGateServer(t, { authenticator: createAuthenticator({ secret: SECRET }) });
    const token = await mint({ topics: ['weather'] }, { secret: SECRET }, { subject: 'bob' });
    const outcome = await connect(t, h.url, [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${token}`]);
    assert.ok(outcome.open);
    assert.equal(outcome.ws.protocol, SUBPROTOCOL);
    assert.deepEqual(outcome.first, { subject: 'bob' });
    assert.equal(h.principals[0]?.topics.allows('weather'), true);
    assert.equal(h.principals[0]?.topics.allows('cameras'), false);
  });

  it('refuses a foreign Origin with 403 and admits a listed one', async (t) => {
    const h = await startGateServer(t, { allowedOrigins: ['https://city.example'] });
    const bad = await connect(t, h.url, [], { Origin: 'https://evil.example' });
    assert.equal(bad.open === false && bad.status, 403);
    const good = await connect(t, h.url, [], { Origin: 'https://city.example' });
    assert.equal(good.open, true);
  });

  it('bounds connections per IP with 429 and frees the slot on close', async (t) => {
    const h = await startGateServer(t, { maxPerIp: 2 });
    const a = await connect(t, h.url);
    const b = await connect(t, h.url);
    assert.ok(a.open && b.open);
    const c = await connect(t, h.url);
    assert.equal(c.open === false && c.status, 429);
    await closeAndWait(a.ws);
    await waitFor(() => h.limiter.total === 1);
    const d = await connect(t, h.url);
    assert.equal(d.open, true);
  });

  it('frees the slot when ws itself refuses a handshake the gate admitted (bad Sec-WebSocket-Key)', async (t) => {
    const h = await startGateServer(t, { maxTotal: 1 });
    const port = Number(new URL(h.url).port);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = tcpConnect(port, '127.0.0.1', () => {
        socket.write(
          'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not-a-key\r\n\r\n',
        );
      });
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      t.after(() => socket.destroy());
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    await waitFor(() => h.limiter.total === 0);
    assert.equal((await connect(t, h.url)).open, true, 'the only slot is free again');
  });

  it('bounds connections in total with 503', async (t) => {
    const h = await startGateServer(t, { maxTotal: 1 });
    assert.equal((await connect(t, h.url)).open, true);
    const refused = await connect(t, h.url);
    assert.equal(refused.open === false && refused.status, 503);
  });

  it('answers 503 when token verification outlives the handshake timeout, and frees the slot', async (t) => {
    // A JWKS endpoint that accepts and never answers.
    const hang = createServer(() => {});
    await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      hang.closeAllConnections();
      await new Promise((resolve) => hang.close(resolve));
    });
    const authenticator = createAuthenticator({
      jwksUrl: `http://127.0.0.1:${(hang.address() as AddressInfo).port}/jwks.json`,
      jwksTimeoutMs: 5000,
    });
    const h = await startGateServer(t, { authenticator, handshakeTimeoutMs: 50 });
    const token = await mint({}, { secret: SECRET }); // any token: the key look-up hangs first
    const fakeRs = token.replace(/^[^.]+/, Buffer.from('{"alg":"RS256","kid":"k"}').toString('base64url'));
    const outcome = await connect(t, h.url, [], { Authorization: `Bearer ${fakeRs}` });
    assert.equal(outcome.open === false && outcome.status, 503);
    assert.equal(outcome.open === false && outcome.body, 'handshake-timeout\n');
    assert.equal(h.limiter.total, 0);
  });
});
