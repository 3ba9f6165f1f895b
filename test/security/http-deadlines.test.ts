/**
 * Issue 10 items 6 and 7: a rejected request's body is not read (the connection is closed after the answer), idle
 * and trickled heads and bodies meet a deadline of seconds, and connections that never become WebSockets are
 * bounded per address and in total, while a legitimate client is still served. Raw sockets throughout; every
 * wait is bounded and ends on a positive signal (an answer, a close).
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { startServer } from '../helpers/servers.js';
import { openClient } from '../ops/helpers.js';
import { WebSocket } from 'ws';
import { ServerMessageType } from '../../src/protocol/messages.js';

const KEY = 'deadline-publish-key';
const HUNDRED_GB = 100 * 1024 ** 3;

/** A raw connection that records what it received and when it closed. */
interface RawConnection {
  readonly socket: Socket;
  /** Resolves with everything received once the server closed the connection. */
  readonly closed: Promise<string>;
  /** Resolves with the status of the first response head. */
  readonly status: Promise<number>;
  /** Bytes we handed to the socket. */
  sent(): number;
  write(data: string | Buffer): Promise<boolean>;
}

function rawConnect(t: TestContext, port: number, localAddress = '127.0.0.1'): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port, host: '127.0.0.1', localAddress });
    t.after(() => socket.destroy());
    let received = '';
    let sent = 0;
    let isClosed = false;
    const closed = new Promise<string>((done) =>
      socket.once('close', () => {
        isClosed = true;
        done(received);
      }),
    );
    const status = new Promise<number>((done, fail) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
        const match = /^HTTP\/1\.1 (\d{3})/.exec(received);
        if (match !== null) done(Number(match[1]));
      });
      socket.once('close', () => fail(new Error(`closed without an answer: ${JSON.stringify(received)}`)));
    });
    status.catch(() => {});
    socket.on('error', () => {});
    socket.once('error', reject);
    socket.once('connect', () =>
      resolve({
        socket,
        closed,
        status,
        sent: () => sent,
        write: (data) =>
          new Promise((done) => {
            if (isClosed || socket.destroyed || !socket.writable) return done(false);
            sent += Buffer.byteLength(data);
            if (socket.write(data)) return done(true);
            const onDrain = (): void => (socket.off('close', onClose), done(true));
            const onClose = (): void => (socket.off('drain', onDrain), done(false));
            socket.once('drain', onDrain);
            socket.once('close', onClose);
          }),
      }),
    );
  });
}

/** Resolves with `promise`, or fails after `ms` with `what`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('rejected bodies are not read', () => {
  const cases: { name: string; path: string; headers: string[]; status: number }[] = [
    { name: 'publish without a key', path: '/api/publish', headers: [], status: 401 },
    {
      name: 'publish with a wrong key',
      path: '/api/publish',
      headers: ['Authorization: Bearer nope-nope'],
      status: 401,
    },
    {
      name: 'ingest with a lower-case wrong key',
      path: '/api/ingest',
      headers: ['Authorization: bearer nope-nope'],
      status: 401,
    },
    {
      name: 'publish over the size limit',
      path: '/api/publish',
      headers: [`Authorization: Bearer ${KEY}`],
      status: 413,
    },
    {
      name: 'broadcast over the size limit',
      path: '/api/broadcast',
      headers: [`Authorization: Bearer ${KEY}`],
      status: 413,
    },
    { name: 'a body to a GET route', path: '/api/snapshot', headers: [], status: 405 },
    { name: 'a body to no route', path: '/nowhere', headers: [], status: 404 },
  ];
  for (const c of cases) {
    it(`${c.name}: a declared 100 GB body gets ${c.status}, then the connection is closed`, async (t) => {
      const server = await startServer(t, { publishKeys: [KEY] });
      const conn = await rawConnect(t, server.port);
      const head = [
        `POST ${c.path} HTTP/1.1`,
        'Host: x',
        'Content-Type: application/json',
        `Content-Length: ${HUNDRED_GB}`,
        ...c.headers,
      ];
      await conn.write(`${head.join('\r\n')}\r\n\r\n`);
      // Keep sending as fast as the server takes it, up to 256 MiB, until the server closes the connection.
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = (async () => {
        while (conn.sent() < 256 * 1024 * 1024 && (await conn.write(chunk)));
      })();
      assert.equal(await within(conn.status, 10_000, 'the answer'), c.status);
      const received = await within(conn.closed, 10_000, 'the close');
      await pump;
      assert.match(received, /\r\nconnection: close\r\n/i, 'the answer says it closes');
      assert.ok(
        conn.sent() < 64 * 1024 * 1024,
        `closed after ${conn.sent()} bytes, far below the 256 MiB we would send`,
      );
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'the server still serves');
    });
  }
});

describe('deadlines of heads and bodies', () => {
  it('a body trickled a byte at a time is cut off by the request deadline with 408', async (t) => {
    const server = await startServer(t, {
      publishKeys: [KEY],
      requestTimeoutMs: 1500,
      bodyIdleTimeoutMs: 60_000,
    });
    const conn = await rawConnect(t, server.port);
    const body = JSON.stringify({ topic: 'weather', type: 'ALERT', data: 'x'.repeat(900) });
    await conn.write(
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    let i = 0;
    const timer = setInterval(() => void conn.write(body[i++] ?? ''), 50);
    t.after(() => clearInterval(timer));
    assert.equal(await within(conn.status, 20_000, 'the 408'), 408);
    await within(conn.closed, 10_000, 'the close');
    clearInterval(timer);
    assert.ok(i < body.length, `cut off after ${i} of ${body.length} bytes`);
    assert.equal(server.service.counters().published, 0);
  });

  it('a body that stops is answered 408 after the body idle deadline and closed', async (t) => {
    const server = await startServer(t, {
      publishKeys: [KEY],
      bodyIdleTimeoutMs: 300,
      requestTimeoutMs: 60_000,
    });
    const conn = await rawConnect(t, server.port);
    await conn.write(
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 100\r\n\r\n{"topic":`,
    );
    assert.equal(await within(conn.status, 10_000, 'the 408'), 408);
    assert.match(await within(conn.closed, 10_000, 'the close'), /BODY_TIMEOUT/);
  });

  it('a head that never ends is answered 408 after the head deadline and closed', async (t) => {
    const server = await startServer(t, { headersTimeoutMs: 300 });
    const cases = ['', 'GET / HTTP/1.1\r\n', 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n', 'G'];
    const conns = await Promise.all(cases.map(() => rawConnect(t, server.port)));
    for (const [i, conn] of conns.entries()) if (cases[i] !== '') await conn.write(cases[i] ?? '');
    for (const conn of conns) {
      const received = await within(conn.closed, 10_000, 'the close');
      assert.ok(received === '' || received.startsWith('HTTP/1.1 408'), JSON.stringify(received));
    }
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});

describe('connections that never become WebSockets', () => {
  it('are bounded per address: beyond the bound refused 429, another address still served, freed by the head deadline', async (t) => {
    const server = await startServer(t, { maxPendingPerIp: 20, headersTimeoutMs: 1500 });
    const idle = await Promise.all(Array.from({ length: 60 }, () => rawConnect(t, server.port)));
    const outcomes = await Promise.all(
      idle.map(async (conn) => {
        const status = await within(conn.status, 10_000, 'an answer');
        await within(conn.closed, 10_000, 'the close');
        return status;
      }),
    );
    // Refusals come at once, the 20 admitted idle sockets get their 408 from the head deadline.
    assert.equal(outcomes.filter((s) => s === 429).length, 40, outcomes.join(','));
    assert.equal(outcomes.filter((s) => s === 408).length, 20, outcomes.join(','));
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'freed: the address is served again');
  });

  it('while one address holds its bound, a client from another address is served (HTTP and WebSocket)', async (t) => {
    const server = await startServer(t, { maxPendingPerIp: 10, headersTimeoutMs: 30_000 });
    const held = await Promise.all(Array.from({ length: 10 }, () => rawConnect(t, server.port, '127.0.0.1')));
    const refused = await rawConnect(t, server.port, '127.0.0.1');
    assert.equal(await within(refused.status, 10_000, 'the refusal'), 429);
    const other = await rawConnect(t, server.port, '127.0.0.2');
    await other.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(await within(other.status, 10_000, 'the answer'), 200);
    const ws = new WebSocket(server.wsUrl, { localAddress: '127.0.0.2' });
    t.after(() => ws.terminate());
    ws.on('error', () => {});
    const first = await within(
      new Promise<string>((resolve, reject) => {
        ws.once('message', (data: Buffer) => resolve(data.toString()));
        ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode ?? 0}`)));
      }),
      10_000,
      'the first frame',
    );
    assert.equal((JSON.parse(first) as { type: string }).type, ServerMessageType.Connected);
    for (const conn of held) assert.equal(conn.socket.destroyed, false, 'the held sockets are still open');
  });

  it('are bounded in total (503), and an upgraded WebSocket no longer counts', async (t) => {
    const server = await startServer(t, {
      maxPendingConnections: 12,
      maxPendingPerIp: 1000,
      headersTimeoutMs: 30_000,
    });
    // Twenty WebSockets one after another: each gives its pending slot back once upgraded.
    for (let i = 0; i < 20; i++) await openClient(t, server.wsUrl);
    const idle = await Promise.all(Array.from({ length: 12 }, () => rawConnect(t, server.port)));
    const over = await rawConnect(t, server.port);
    assert.equal(await within(over.status, 10_000, 'the refusal'), 503);
    await within(over.closed, 10_000, 'the close');
    for (const conn of idle) assert.equal(conn.socket.destroyed, false);
    assert.equal(server.service.getClientCount(), 20);
  });
});
