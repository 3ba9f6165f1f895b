/**
 * The client against a scripted protocol server: close codes, token refresh, watchdog, gap recovery on a server
 * without resume, subscription bookkeeping. (The same behaviours against the real server: client-server.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { ClientErrorCode, createClient } from '../../src/client/index.js';
import type {
  CityPulseClient,
  ClientError,
  ClientOptions,
  ConnectionState,
  StateChange,
} from '../../src/client/index.js';
import { ErrorCode, ServerMessageType } from '../../src/protocol/messages.js';
import { frame, startFakeServer } from './fixtures/fake-server.js';
import type { FakeServer } from './fixtures/fake-server.js';
import { nextEvent, waitFor } from './fixtures/wait.js';

interface Harness {
  server: FakeServer;
  client: CityPulseClient;
  states: ConnectionState[];
  errors: ClientError[];
}

/** A valid `weather` entity: the SDK folds UPDATEs by the protocol's state model, schema included. */
function weather(id: string, temperatureC: number): Record<string, unknown> {
  return {
    id,
    name: `station ${id}`,
    location: { lat: 52.37, lon: 4.89 },
    temperatureC,
    condition: 'clear',
    updatedAt: '2026-03-01T12:00:00.000Z',
    source: 't',
  };
}

async function setup(
  t: { after(fn: () => unknown): void },
  options: Partial<ClientOptions> = {},
  serverOptions: Parameters<typeof startFakeServer>[0] = {},
): Promise<Harness> {
  const server = await startFakeServer(serverOptions);
  const client = createClient({
    url: server.url,
    WebSocket,
    topics: ['weather'],
    backoff: { initialMs: 5, maxMs: 20, factor: 2 },
    ...options,
  });
  const states: ConnectionState[] = [];
  const errors: ClientError[] = [];
  client.on('state', ({ newState }) => states.push(newState));
  client.on('error', (error) => errors.push(error));
  t.after(async () => {
    client.close();
    await server.close();
  });
  return { server, client, states, errors };
}

function waitState(client: CityPulseClient, state: ConnectionState): Promise<unknown> {
  if (client.connectionState === state) return Promise.resolve();
  return nextEvent<StateChange>(
    (fn) => client.on('state', fn),
    (s) => s.newState === state,
    `state ${state}`,
  );
}

for (const code of [1000, 1008, 1009, 4403]) {
  test(`close code ${code} is final: the client gives up and reports why`, async (t) => {
    const { server, client, states, errors } = await setup(t);
    const connection = await server.nextConnection();
    connection.sendConnected();
    await waitState(client, 'connected');
    connection.close(code, 'no');
    await waitState(client, 'closed');
    assert.deepEqual(states, ['connected', 'closed']);
    const fatal = errors.find((e) => e.code === ClientErrorCode.Fatal);
    assert.ok(fatal, 'a FATAL_CLOSE error');
    assert.equal(fatal.closeCode, code);
    // No further attempt: `closed` is final (the next attempt would arrive within the 20 ms backoff cap).
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(server.connectionCount, 1);
  });
}

for (const code of [1001, 1011, 4429, 4503]) {
  test(`close code ${code} is retried`, async (t) => {
    const { server, client, states } = await setup(t);
    const first = await server.nextConnection();
    first.sendConnected();
    await waitState(client, 'connected');
    first.close(code, 'again');
    const second = await server.nextConnection();
    assert.deepEqual(second.topics, ['weather'], 'resubscribed through ?topics=');
    second.sendConnected();
    await waitState(client, 'connected');
    assert.deepEqual(states, ['connected', 'reconnecting', 'connected']);
  });
}

test('4401 asks getToken() again and reconnects with the new token', async (t) => {
  let issued = 0;
  const { server, client } = await setup(t, { getToken: async () => `token-${++issued}` });
  const first = await server.nextConnection();
  assert.equal(first.url.searchParams.get('token'), 'token-1');
  first.sendConnected();
  await waitState(client, 'connected');
  first.close(4401, 'token expired');
  const second = await server.nextConnection();
  assert.equal(second.url.searchParams.get('token'), 'token-2');
});

test('gives up after maxRetries consecutive failures', async (t) => {
  const { server, client, errors } = await setup(t, { maxRetries: 2 });
  const first = await server.nextConnection();
  first.sendConnected();
  await waitState(client, 'connected');
  first.close(1011);
  // Attempts 1 and 2 are accepted at TCP level but never get CONNECTED: they fail by close.
  for (let i = 0; i < 2; i++) (await server.nextConnection()).close(1011);
  await waitState(client, 'closed');
  assert.ok(errors.some((e) => e.code === ClientErrorCode.RetriesExhausted));
  assert.equal(server.connectionCount, 3);
});

test('watchdog: a server that goes silent is treated as dead; the client pings in the meantime', async (t) => {
  const { server, client, errors } = await setup(t, {}, { autoPong: false });
  const first = await server.nextConnection();
  first.sendConnected({ heartbeat: { intervalMs: 40, timeoutMs: 150 } });
  const ping = await first.nextMessage();
  assert.equal(ping.type, 'ping');
  assert.ok(ping.id !== undefined);
  // Stay silent: no PONG, nothing. The socket itself stays open.
  const second = await server.nextConnection();
  assert.ok(errors.some((e) => e.code === ClientErrorCode.HeartbeatTimeout));
  second.sendConnected();
  await waitState(client, 'connected');
});

test('connect timeout: an attempt without CONNECTED is dropped and retried', async (t) => {
  const { server, errors } = await setup(t, { connectTimeoutMs: 100 });
  await server.nextConnection();
  const second = await server.nextConnection();
  assert.ok(errors.some((e) => e.code === ClientErrorCode.ConnectTimeout));
  second.sendConnected();
});

test('a gap on a server without resume falls back to a fresh per-topic snapshot', async (t) => {
  const { server, client, errors } = await setup(t);
  const c = await server.nextConnection();
  c.sendConnected();
  const entity = (id: string, v: number) => weather(id, v);
  c.send(frame(ServerMessageType.Snapshot, { weather: { entities: [entity('a', 1)], seq: 3, epoch: 'e1' } }));
  c.send(
    frame(
      ServerMessageType.Update,
      { upserts: [entity('b', 1)], removes: [] },
      { topic: 'weather', seq: 4, epoch: 'e1' },
    ),
  );
  c.send(
    frame(
      ServerMessageType.Update,
      { upserts: [entity('c', 1)], removes: [] },
      { topic: 'weather', seq: 6, epoch: 'e1' },
    ),
  );
  const resume = await c.nextMessage();
  assert.deepEqual(resume, { type: 'resume', topics: { weather: { epoch: 'e1', seq: 4 } } });
  assert.deepEqual(
    [...client.state('weather').keys()].sort(),
    ['a', 'b'],
    'the frame after the gap is not applied',
  );
  c.send(
    frame(ServerMessageType.Error, { code: ErrorCode.UnknownType, message: 'unknown message type "resume"' }),
  );
  assert.deepEqual(await c.nextMessage(), { type: 'unsubscribe', topics: ['weather'] });
  assert.deepEqual(await c.nextMessage(), { type: 'subscribe', topics: ['weather'] });
  c.send(
    frame(
      ServerMessageType.Snapshot,
      { entities: [entity('a', 2), entity('c', 1)], seq: 6 },
      { topic: 'weather', seq: 6, epoch: 'e1' },
    ),
  );
  c.send(
    frame(
      ServerMessageType.Update,
      { upserts: [], removes: ['a'] },
      { topic: 'weather', seq: 7, epoch: 'e1' },
    ),
  );
  await waitFor(() => client.position('weather')?.seq === 7, 'seq 7');
  assert.deepEqual([...client.state('weather').keys()], ['c']);
  assert.ok(errors.some((e) => e.code === ClientErrorCode.Gap && e.topic === 'weather'));
  assert.ok(
    !errors.some((e) => e.code === ClientErrorCode.Server),
    'the handled UNKNOWN_TYPE is not reported',
  );
});

test('a gap on a server with resume: missed frames are replayed (recovered) and folded in order', async (t) => {
  const { server, client, errors } = await setup(t);
  const c = await server.nextConnection();
  c.sendConnected();
  const entity = (id: string) => weather(id, 1);
  const update = (seq: number, id: string, recovered = false) =>
    frame(
      ServerMessageType.Update,
      { upserts: [entity(id)], removes: [] },
      {
        topic: 'weather',
        seq,
        epoch: 'e1',
        ...(recovered ? { recovered: true } : {}),
      },
    );
  c.send(frame(ServerMessageType.Snapshot, { weather: { entities: [], seq: 0, epoch: 'e1' } }));
  c.send(update(1, 'a'));
  c.send(update(3, 'c')); // 2 is missing
  c.send(update(4, 'd')); // still behind the gap: ignored, the replay will bring it
  assert.deepEqual(await c.nextMessage(), { type: 'resume', topics: { weather: { epoch: 'e1', seq: 1 } } });
  c.send(frame(ServerMessageType.Subscribed, { topics: ['weather'] }));
  for (const [seq, id] of [
    [2, 'b'],
    [3, 'c'],
    [4, 'd'],
  ] as const)
    c.send(update(seq, id, true));
  c.send(update(5, 'e'));
  await waitFor(() => client.position('weather')?.seq === 5, 'seq 5');
  assert.deepEqual([...client.state('weather').keys()], ['a', 'b', 'c', 'd', 'e']);
  assert.equal(errors.filter((e) => e.code === ClientErrorCode.Gap).length, 1, 'one recovery for one gap');
  // On the next connection the client resumes through the query string.
  c.close(1011);
  const next = await server.nextConnection();
  assert.equal(next.url.searchParams.get('resume'), 'weather:e1:5');
  assert.equal(next.url.searchParams.get('topics'), 'weather');
});

test('subscribe/unsubscribe: handlers get their topic, the server is told, refs are counted', async (t) => {
  const { server, client } = await setup(t, { topics: [] });
  const c = await server.nextConnection();
  c.sendConnected({ subscribed: [] });
  await waitState(client, 'connected');
  const seen: string[] = [];
  const off1 = client.subscribe('accidents', (event) => seen.push(`1:${event.type}`));
  const off2 = client.subscribe('accidents', (event) => seen.push(`2:${event.type}`));
  assert.deepEqual(await c.nextMessage(), { type: 'subscribe', topics: ['accidents'] });
  c.send(
    frame(ServerMessageType.Snapshot, { entities: [], seq: 0 }, { topic: 'accidents', seq: 0, epoch: 'e' }),
  );
  c.send(frame(ServerMessageType.Alert, { message: 'hi' }, { topic: 'accidents', seq: 1, epoch: 'e' }));
  await waitFor(() => seen.length === 4, 'four handler calls');
  assert.deepEqual(seen, ['1:snapshot', '2:snapshot', '1:alert', '2:alert']);
  off1();
  off1(); // idempotent
  assert.deepEqual(client.topics, ['accidents'], 'still held by the second subscription');
  off2();
  assert.deepEqual(client.topics, []);
  assert.deepEqual(await c.nextMessage(), { type: 'unsubscribe', topics: ['accidents'] });
  assert.equal(client.state('accidents').size, 0);
  assert.throws(() => client.subscribe('bad topic!'), TypeError);
});

test('topics subscribed before CONNECTED are reconciled; unknown topics are reported, not sent', async (t) => {
  const { server, client, errors } = await setup(t, { topics: ['weather'] });
  client.subscribe('cameras');
  client.subscribe('nope');
  const c = await server.nextConnection();
  assert.deepEqual(c.topics, ['weather'], 'the URL was built before the later subscriptions');
  c.sendConnected();
  assert.deepEqual(await c.nextMessage(), { type: 'subscribe', topics: ['cameras'] });
  await waitFor(() => errors.some((e) => e.serverCode === ErrorCode.UnknownTopic), 'unknown topic reported');
});

test('a throwing listener is reported and does not break the client; close() is idempotent', async (t) => {
  const { server, client, errors } = await setup(t);
  client.on('connected', () => {
    throw new Error('boom');
  });
  const c = await server.nextConnection();
  c.sendConnected();
  await waitState(client, 'connected');
  assert.ok(errors.some((e) => e.code === ClientErrorCode.Handler));
  client.close();
  client.close();
  assert.equal(client.connectionState, 'closed');
});

test('a bad frame is reported and ignored', async (t) => {
  const { server, client, errors } = await setup(t);
  const c = await server.nextConnection();
  c.ws.send('not json');
  c.send({ type: 'NOPE', data: 1, timestamp: 'x' });
  c.sendConnected();
  await waitState(client, 'connected');
  assert.equal(errors.filter((e) => e.code === ClientErrorCode.BadFrame).length, 2);
});
