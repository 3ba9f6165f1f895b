/**
 * Limits end to end through `createServer`: origins, connection counts in total and per IP (refused at the
 * upgrade, slots given back on disconnect), the per-connection frame rate, the publish body size and the
 * handshake deadline.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloseCode, ErrorCode, ServerMessageType } from '../../src/protocol/messages.js';
import { startServer } from '../helpers/servers.js';
import { eventually } from '../helpers/test-client.js';
import { makeKey, mint } from '../security/tokens.js';
import { openClient, refusedStatus, tryUpgrade } from './helpers.js';

describe('origins', () => {
  it('refuses an origin not on the list with 403 and accepts a listed one (and non-browser clients)', async (t) => {
    const server = await startServer(t, { allowedOrigins: ['https://ok.example', 'https://*.maps.example'] });
    assert.equal(await refusedStatus(server.wsUrl, [], { origin: 'https://evil.example' }), 403);
    assert.equal(await refusedStatus(server.wsUrl, [], { origin: 'https://maps.example' }), 403);
    assert.equal((await tryUpgrade(server.wsUrl, [], { origin: 'https://ok.example' })).opened, true);
    assert.equal((await tryUpgrade(server.wsUrl, [], { origin: 'https://tiles.maps.example' })).opened, true);
    assert.equal((await tryUpgrade(server.wsUrl)).opened, true, 'no Origin header: not a browser, passes');
  });
});

describe('connection limits', () => {
  it('answers 429 past maxConnectionsPerIp and gives the slot back when a client disconnects', async (t) => {
    const server = await startServer(t, { maxConnectionsPerIp: 2 });
    const a = await openClient(t, server.wsUrl);
    await openClient(t, server.wsUrl);
    const refused = await tryUpgrade(server.wsUrl);
    assert.deepEqual(refused, { opened: false, status: 429, body: 'max-connections-per-ip' });
    assert.equal(server.service.getClientCount(), 2);
    a.close();
    // The slot comes back when the server sees the TCP socket close; retry (bounded) until it has.
    let outcome = await tryUpgrade(server.wsUrl);
    for (let attempt = 0; !outcome.opened && attempt < 50; attempt++) {
      assert.equal(outcome.status, 429);
      await new Promise((resolve) => setTimeout(resolve, 20));
      outcome = await tryUpgrade(server.wsUrl);
    }
    assert.equal(outcome.opened, true, 'a freed slot is given back');
  });

  it('answers 503 past maxConnections and gives the slot back when a client disconnects', async (t) => {
    const server = await startServer(t, { maxConnections: 2, maxConnectionsPerIp: 100 });
    const a = await openClient(t, server.wsUrl);
    await openClient(t, server.wsUrl);
    const refused = await tryUpgrade(server.wsUrl);
    assert.deepEqual(refused, { opened: false, status: 503, body: 'max-connections' });
    a.close();
    await eventually(() => server.service.getClientCount() === 1, 5000, 'the server saw the close');
    let outcome = await tryUpgrade(server.wsUrl);
    for (let attempt = 0; !outcome.opened && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      outcome = await tryUpgrade(server.wsUrl);
    }
    assert.equal(outcome.opened, true);
  });
});

describe('frame rate', () => {
  it('answers excess frames with ERROR RATE_LIMITED and keeps the connection', async (t) => {
    const server = await startServer(t, { rateLimit: { ratePerSec: 1, burst: 5, abuseRejections: 1000 } });
    const client = await openClient(t, server.wsUrl);
    await client.nextOfType(ServerMessageType.Snapshot);
    for (let i = 0; i < 20; i++) client.send({ type: 'ping', id: i });
    const replies = [];
    for (let i = 0; i < 20; i++) replies.push(await client.next());
    const pongs = replies.filter((m) => m.type === ServerMessageType.Pong).length;
    const limited = replies.filter(
      (m) => m.type === ServerMessageType.Error && m.data.code === ErrorCode.RateLimited,
    );
    assert.equal(pongs + limited.length, 20, 'every frame is answered one way or the other');
    assert.ok(pongs >= 5, 'the burst goes through');
    assert.ok(limited.length > 0, 'the excess is refused');
    assert.equal(client.ws.readyState, client.ws.OPEN);
  });

  it('closes a sustained flood with 4429 while another client keeps receiving', async (t) => {
    const server = await startServer(t, { rateLimit: { ratePerSec: 5, burst: 5, abuseRejections: 50 } });
    const flooder = await openClient(t, server.wsUrl);
    const bystander = await openClient(t, `${server.wsUrl}?topics=weather`);
    await bystander.nextOfType(ServerMessageType.Snapshot);
    await flooder.nextOfType(ServerMessageType.Snapshot);
    for (let i = 0; i < 200 && flooder.ws.readyState === flooder.ws.OPEN; i++)
      flooder.send({ type: 'ping', id: i });
    const { code } = await flooder.waitForClose();
    assert.equal(code, CloseCode.RateLimited);

    for (let n = 1; n <= 3; n++) {
      server.service.publish('weather', { type: 'UPDATE', data: { n }, timestamp: new Date().toISOString() });
    }
    const updates = await bystander.nextOfType(ServerMessageType.Update, 3);
    assert.deepEqual(
      updates.map((m) => m.data),
      [{ n: 1 }, { n: 2 }, { n: 3 }],
    );
    bystander.send({ type: 'ping', id: 'ok' });
    assert.equal(
      (await bystander.next((m) => m.type === ServerMessageType.Pong)).type,
      ServerMessageType.Pong,
    );
  });
});

describe('publish body and handshake deadline', () => {
  it('answers a publish body over maxBodyBytes with 413', async (t) => {
    const key = 'ops-test-publish-key';
    const server = await startServer(t, { publishKeys: [key], maxBodyBytes: 512 });
    const post = (data: unknown) =>
      fetch(`${server.url}/api/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ topic: 'weather', type: 'ALERT', data }),
        signal: AbortSignal.timeout(5000),
      });
    const small = await post({ note: 'fits' });
    assert.equal(small.status, 202);
    await small.body?.cancel();
    const big = await post({ note: 'x'.repeat(2000) });
    assert.equal(big.status, 413);
    await big.body?.cancel();
  });

  it('answers 503 when the token check outlasts handshakeTimeoutMs (a JWKS URL that never answers)', async (t) => {
    const hanging: IncomingMessage[] = [];
    const jwksServer = createHttpServer((req) => void hanging.push(req)); // never answers
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      jwksServer.closeAllConnections();
      await new Promise((resolve) => jwksServer.close(resolve));
    });
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
    const server = await startServer(t, {
      auth: { jwksUrl, jwksTimeoutMs: 10_000 },
      handshakeTimeoutMs: 150,
      maxConnections: 1,
    });
    const key = await makeKey('ES256', 'k1');
    const token = await mint({ topics: ['*'] }, { key });
    const outcome = await tryUpgrade(server.wsUrl, [], { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(outcome, { opened: false, status: 503, body: 'handshake-timeout' });
    assert.ok(hanging.length >= 1, 'the JWKS was asked for');
    // The timed-out handshake gave its slot back: with room for one connection, the next attempt reaches the token
    // check again instead of being refused for the count.
    const again = await tryUpgrade(server.wsUrl, [], { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(again, { opened: false, status: 503, body: 'handshake-timeout' });
  });
});
