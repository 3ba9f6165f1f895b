/**
 * Authentication end to end: `createServer({ auth })` with real `ws` clients and `jose` tokens. Tokens are checked
 * in the upgrade (refused with HTTP 401 before any WebSocket exists), topics are limited by the `topics` claim,
 * tokens expire while connected (close 4401) unless refreshed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloseCode, ErrorCode, ServerMessageType, type ServerMessage } from '../../src/protocol/messages.js';
import { BEARER_PROTOCOL_PREFIX, SUBPROTOCOL } from '../../src/security/tokens.js';
import { startServer } from '../helpers/servers.js';
import type { TestClient } from '../helpers/test-client.js';
import { SECRET, jwksOf, makeKey, mint } from '../security/tokens.js';
import { openClient, refusedStatus, tryUpgrade } from './helpers.js';

const OTHER_SECRET = 'another-secret-0123456789abcdef0123456789abcdef0123456789abcdef';

const isType =
  (type: ServerMessageType) =>
  (m: ServerMessage): boolean =>
    m.type === type;

function errorCode(m: ServerMessage): string | undefined {
  return m.type === ServerMessageType.Error ? m.data.code : undefined;
}

/** Sends a ping and waits for its PONG: every frame the server sent before it has arrived by then. */
async function roundTrip(client: TestClient, id: string): Promise<void> {
  client.send({ type: 'ping', id });
  await client.next((m) => m.type === ServerMessageType.Pong && m.data.id === id);
}

describe('connection auth at the upgrade', () => {
  it('accepts a valid token in the Authorization header, the ?token= query and the subprotocol', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET } });
    const token = await mint({ topics: ['*'] }, { secret: SECRET }, { subject: 'alice' });

    const viaHeader = await openClient(t, server.wsUrl, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await viaHeader.next()).type, ServerMessageType.Connected);

    const viaQuery = await openClient(t, `${server.wsUrl}?token=${encodeURIComponent(token)}`);
    assert.equal((await viaQuery.next()).type, ServerMessageType.Connected);

    const viaProtocol = await openClient(t, server.wsUrl, {
      protocols: [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${token}`],
    });
    assert.equal((await viaProtocol.next()).type, ServerMessageType.Connected);
    assert.equal(
      viaProtocol.ws.protocol,
      SUBPROTOCOL,
      'the server selects citypulse.v1, never the bearer entry',
    );
    assert.equal(server.service.getClientCount(), 3);
  });

  it('refuses expired, wrongly signed, missing and not-yet-valid tokens with 401 before the upgrade', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET, clockToleranceSec: 1 } });
    const expired = await mint({ topics: ['*'] }, { secret: SECRET }, { expiresAt: Date.now() - 60_000 });
    const wrongKey = await mint({ topics: ['*'] }, { secret: OTHER_SECRET });
    const future = await mint({ topics: ['*'] }, { secret: SECRET }, { notBefore: Date.now() + 60_000 });
    const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

    const cases: [string, Promise<Awaited<ReturnType<typeof tryUpgrade>>>, string][] = [
      ['expired', tryUpgrade(server.wsUrl, [], bearer(expired)), 'expired'],
      ['wrong signature', tryUpgrade(server.wsUrl, [], bearer(wrongKey)), 'bad-signature'],
      ['missing', tryUpgrade(server.wsUrl), 'missing'],
      ['nbf in the future', tryUpgrade(server.wsUrl, [], bearer(future)), 'not-yet-valid'],
      ['garbage', tryUpgrade(`${server.wsUrl}?token=not.a.jwt`), 'malformed'],
    ];
    for (const [what, attempt, reason] of cases) {
      const outcome = await attempt;
      assert.deepEqual(outcome, { opened: false, status: 401, body: reason }, what);
    }
    assert.equal(server.service.getClientCount(), 0);
    assert.equal(server.service.counters().connectionsTotal, 0, 'no WebSocket was ever opened');
  });
});

describe('per-topic authorization', () => {
  it('answers a subscribe outside the topics claim with ERROR FORBIDDEN and subscribes nothing', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET } });
    const token = await mint({ topics: ['weather', 'air*'] }, { secret: SECRET });
    const client = await openClient(t, server.wsUrl, { headers: { authorization: `Bearer ${token}` } });
    await client.nextOfType(ServerMessageType.Snapshot);

    client.send({ type: 'subscribe', topics: ['weather', 'cameras'] });
    const error = await client.next(isType(ServerMessageType.Error));
    assert.equal(errorCode(error), ErrorCode.Forbidden);
    assert.deepEqual(error.type === ServerMessageType.Error ? error.data.topics : null, ['cameras']);
    await roundTrip(client, 'after-forbidden');
    assert.equal(server.service.getTopicSubscribers('weather'), 0, 'none of the request was applied');
    assert.equal(server.service.getTopicSubscribers('cameras'), 0);
    assert.ok(!client.received.some((m) => m.type === ServerMessageType.Subscribed));

    // Resume and ?topics= are held to the same claim.
    client.send({ type: 'resume', topics: { accidents: { epoch: 'x', seq: 0 } } });
    assert.equal(errorCode(await client.next(isType(ServerMessageType.Error))), ErrorCode.Forbidden);
    const viaQuery = await openClient(t, `${server.wsUrl}?topics=cameras`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const connected = await viaQuery.next(isType(ServerMessageType.Connected));
    assert.deepEqual(connected.type === ServerMessageType.Connected ? connected.data.subscribed : null, []);
    assert.equal(errorCode(await viaQuery.next(isType(ServerMessageType.Error))), ErrorCode.Forbidden);
    assert.equal(server.service.getTopicSubscribers('cameras'), 0);

    // A permitted topic is fine.
    client.send({ type: 'subscribe', topics: ['airQuality'] });
    const subscribed = await client.next(isType(ServerMessageType.Subscribed));
    assert.deepEqual(subscribed.type === ServerMessageType.Subscribed ? subscribed.data.topics : null, [
      'airQuality',
    ]);
    assert.equal(server.service.getTopicSubscribers('airQuality'), 1);
  });

  it('sends a connect-time snapshot of the permitted topics only; broadcasts reach everyone', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET } });
    const limited = await openClient(t, server.wsUrl, {
      headers: { authorization: `Bearer ${await mint({ topics: ['weather', 'air*'] }, { secret: SECRET })}` },
    });
    const all = await openClient(t, server.wsUrl, {
      headers: { authorization: `Bearer ${await mint({ topics: '*' }, { secret: SECRET })}` },
    });
    const none = await openClient(t, server.wsUrl, {
      headers: { authorization: `Bearer ${await mint({}, { secret: SECRET })}` },
    });
    const keys = async (client: TestClient) => {
      const snapshot = await client.next(isType(ServerMessageType.Snapshot));
      return Object.keys(snapshot.data as object).sort();
    };
    assert.deepEqual(await keys(limited), ['airQuality', 'weather']);
    assert.deepEqual(await keys(all), ['accidents', 'airQuality', 'cameras', 'weather']);
    assert.deepEqual(await keys(none), [], 'a token without topics may see nothing');

    server.service.broadcast({
      type: 'ALERT',
      data: { note: 'to everyone' },
      timestamp: new Date().toISOString(),
    });
    for (const client of [limited, all, none]) {
      const alert = await client.next(isType(ServerMessageType.Alert));
      assert.deepEqual(alert.data, { note: 'to everyone' });
    }
  });
});

describe('token expiry while connected', () => {
  it('closes with 4401 when the token expires without a refresh', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET, clockToleranceSec: 0 } });
    // exp has whole-second resolution: this token lives between 2 and 3 s.
    const token = await mint({ topics: ['*'] }, { secret: SECRET }, { expiresAt: Date.now() + 3000 });
    const client = await openClient(t, server.wsUrl, { headers: { authorization: `Bearer ${token}` } });
    assert.equal((await client.next()).type, ServerMessageType.Connected);
    const { code } = await client.waitForClose(8000);
    assert.equal(code, CloseCode.TokenExpired);
  });

  it('a refresh extends the connection past the old expiry and unsubscribes topics it drops', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET, clockToleranceSec: 0 } });
    const oldExpiry = Date.now() + 3000;
    const first = await mint(
      { topics: ['weather', 'cameras'] },
      { secret: SECRET },
      {
        subject: 'bob',
        expiresAt: oldExpiry,
      },
    );
    const client = await openClient(t, `${server.wsUrl}?topics=weather,cameras`, {
      headers: { authorization: `Bearer ${first}` },
    });
    await client.nextOfType(ServerMessageType.Snapshot);
    assert.equal(server.service.getTopicSubscribers('cameras'), 1);

    const second = await mint({ topics: ['weather'] }, { secret: SECRET }, { subject: 'bob' });
    client.send({ type: 'refresh', token: second });
    const unsubscribed = await client.next(isType(ServerMessageType.Unsubscribed));
    assert.deepEqual(unsubscribed.type === ServerMessageType.Unsubscribed ? unsubscribed.data.topics : null, [
      'cameras',
    ]);
    assert.equal(server.service.getTopicSubscribers('cameras'), 0);
    assert.equal(server.service.getTopicSubscribers('weather'), 1);

    // A bad refresh is refused and changes nothing.
    const wrong = await mint({ topics: ['*'] }, { secret: OTHER_SECRET }, { subject: 'bob' });
    client.send({ type: 'refresh', token: wrong });
    assert.equal(errorCode(await client.next(isType(ServerMessageType.Error))), ErrorCode.BadToken);
    client.send({ type: 'subscribe', topics: ['cameras'] });
    assert.equal(errorCode(await client.next(isType(ServerMessageType.Error))), ErrorCode.Forbidden);

    // Past the first token's expiry (exp is whole seconds, so at most oldExpiry) plus a margin: still open.
    const waitMs = oldExpiry + 1500 - Date.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, waitMs)));
    await roundTrip(client, 'after-old-expiry');
    assert.equal(client.ws.readyState, client.ws.OPEN, 'no 4401 at the old expiry');
    assert.equal(server.service.getClientCount(), 1);
  });

  it('answers a refresh with a bad token with ERROR BAD_TOKEN and keeps the connection', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET } });
    const token = await mint({ topics: ['*'] }, { secret: SECRET }, { subject: 'carol' });
    const client = await openClient(t, server.wsUrl, { headers: { authorization: `Bearer ${token}` } });
    await client.nextOfType(ServerMessageType.Snapshot);
    const expired = await mint(
      { topics: ['*'] },
      { secret: SECRET },
      { subject: 'carol', expiresAt: Date.now() - 60_000 },
    );
    for (const bad of ['garbage', expired]) {
      client.send({ type: 'refresh', token: bad });
      const error = await client.next(isType(ServerMessageType.Error));
      assert.equal(errorCode(error), ErrorCode.BadToken);
    }
    await roundTrip(client, 'still-open');
  });
});

describe('asymmetric keys (JWKS)', () => {
  it('verifies ES256 against an in-memory JWKS and RS256 against a JWKS file', async (t) => {
    const es = await makeKey('ES256', 'es-1');
    const rs = await makeKey('RS256', 'rs-1');
    const stranger = await makeKey('ES256', 'es-1'); // same kid, other key: a forged token

    const inMemory = await startServer(t, { auth: { jwks: jwksOf(es) } });
    const good = await mint({ topics: ['weather'] }, { key: es });
    const outcome = await tryUpgrade(inMemory.wsUrl, [], { headers: { authorization: `Bearer ${good}` } });
    assert.equal(outcome.opened, true);
    const forged = await mint({ topics: ['weather'] }, { key: stranger });
    assert.equal(
      await refusedStatus(inMemory.wsUrl, [], { headers: { authorization: `Bearer ${forged}` } }),
      401,
    );
    const hs = await mint({ topics: ['weather'] }, { secret: SECRET });
    assert.equal(
      await refusedStatus(inMemory.wsUrl, [], { headers: { authorization: `Bearer ${hs}` } }),
      401,
    );

    const dir = await mkdtemp(join(tmpdir(), 'citypulse-jwks-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const jwksFile = join(dir, 'jwks.json');
    await writeFile(jwksFile, JSON.stringify(jwksOf(rs)));
    const fromFile = await startServer(t, { auth: { jwksFile } });
    const rsToken = await mint({ topics: ['*'] }, { key: rs });
    const client = await openClient(t, fromFile.wsUrl, {
      protocols: [SUBPROTOCOL, `${BEARER_PROTOCOL_PREFIX}${rsToken}`],
    });
    assert.equal((await client.next()).type, ServerMessageType.Connected);
    assert.equal(
      await refusedStatus(fromFile.wsUrl, [], { headers: { authorization: `Bearer ${good}` } }),
      401,
    );
  });
});
