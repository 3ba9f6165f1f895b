/**
 * The client against the real citypulse server (`createServer`, port 0): convergence, restart on the same port,
 * resubscription, resume after a cut link, backoff bounds with injected randomness and timers, fatal close codes,
 * and the heartbeat watchdog on a link that dies silently.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import type { WebSocket as WsSocket } from 'ws';
import { ClientErrorCode, backoffCeiling, createClient } from '../../src/client/index.js';
import type {
  CityPulseClient,
  ClientError,
  ClientOptions,
  ConnectionState,
  StateChange,
} from '../../src/client/index.js';
import { DEFAULT_TOPICS } from '../../src/protocol/messages.js';
import { createServer } from '../../src/app/create-server.js';
import type { CityPulseServer, CityPulseServerOptions } from '../../src/app/create-server.js';
import { startTcpProxy } from './fixtures/tcp-proxy.js';
import { nextEvent, waitFor } from './fixtures/wait.js';

type After = { after(fn: () => unknown): void };

async function startServer(t: After, options: CityPulseServerOptions = {}): Promise<CityPulseServer> {
  const server = await createServer({ port: 0, source: 'none', ...options });
  t.after(() => server.close());
  return server;
}

function startClient(t: After, options: Partial<ClientOptions> & { url: string }) {
  const client = createClient({
    WebSocket,
    topics: [...DEFAULT_TOPICS],
    backoff: { initialMs: 10, maxMs: 100, factor: 2 },
    ...options,
  });
  const states: ConnectionState[] = [];
  const errors: ClientError[] = [];
  client.on('state', ({ newState }) => states.push(newState));
  client.on('error', (error) => errors.push(error));
  t.after(() => client.close());
  return { client, states, errors };
}

function waitState(client: CityPulseClient, state: ConnectionState, deadlineMs = 5000): Promise<unknown> {
  if (client.connectionState === state) return Promise.resolve();
  return nextEvent<StateChange>(
    (fn) => client.on('state', fn),
    (s) => s.newState === state,
    `state ${state}`,
    deadlineMs,
  );
}

/** The server's entities of `topic`, by id. */
function serverState(server: CityPulseServer, topic: string): Map<string, unknown> {
  return new Map(server.aggregator.getTopicSnapshot(topic).entities.map((e) => [e.id, e]));
}

/** Waits until the client has folded everything the server published on every topic, then compares states. */
async function assertConverged(
  client: CityPulseClient,
  server: CityPulseServer,
  topics: readonly string[] = DEFAULT_TOPICS,
): Promise<void> {
  for (const topic of topics) {
    const target = server.service.position(topic);
    await waitFor(
      () => client.position(topic)?.seq === target.seq && client.position(topic)?.epoch === target.epoch,
      `${topic} at seq ${target.seq} (client at ${JSON.stringify(client.position(topic))})`,
    );
    assert.deepEqual(new Map(client.state(topic)), serverState(server, topic), `${topic} converged`);
  }
}

const accident = (id: string, severity: number) => ({
  id,
  location: { lat: 52.37, lon: 4.89 },
  severity,
  description: `test accident ${id}`,
  kind: 'collision',
  reportedAt: new Date().toISOString(),
  updatedAt: new Date().toISOString(),
  source: 'test',
});

test('state converges with the simulator running', async (t) => {
  const server = await startServer(t, { source: 'simulator', simulatorIntervalMs: 20, simulatorSeed: 7 });
  const { client } = startClient(t, { url: server.wsUrl });
  await waitState(client, 'connected');
  let updates = 0;
  client.on('update', () => updates++);
  await waitFor(() => updates >= 30, '30 updates');
  await server.aggregator.stop();
  await assertConverged(client, server);
  assert.ok(client.state('cameras').size > 0 && client.state('airQuality').size > 0);
});

test('reconnects after the server restarts on the same port, resubscribes every topic and converges', async (t) => {
  const first = await createServer({
    port: 0,
    source: 'simulator',
    simulatorIntervalMs: 20,
    simulatorSeed: 1,
  });
  t.after(() => first.close());
  const port = first.port;
  const { client, states } = startClient(t, {
    url: first.wsUrl,
    topics: ['cameras', 'weather', 'accidents'],
  });
  await waitState(client, 'connected');
  client.subscribe('airQuality'); // added later: must be resubscribed too
  await waitFor(() => first.service.getTopicSubscribers('airQuality') === 1, 'airQuality subscribed');
  const oldEpoch = client.position('cameras')?.epoch;

  await first.close();
  await waitState(client, 'reconnecting');
  const second = await startServer(t, {
    port,
    source: 'simulator',
    simulatorIntervalMs: 20,
    simulatorSeed: 2,
  });
  await waitState(client, 'connected');
  assert.deepEqual(states.slice(0, 3), ['connected', 'reconnecting', 'connected']);
  for (const topic of DEFAULT_TOPICS) {
    await waitFor(() => second.service.getTopicSubscribers(topic) === 1, `${topic} resubscribed`);
  }
  await second.aggregator.stop();
  await assertConverged(client, second);
  assert.notEqual(client.position('cameras')?.epoch, oldEpoch, 'state comes from the new server life');
});

test('after a cut link the client resumes: the missed frames are replayed, none lost or doubled', async (t) => {
  const server = await startServer(t);
  const proxy = await startTcpProxy(server.port);
  t.after(() => proxy.close());
  const { client } = startClient(t, {
    url: proxy.wsUrl,
    topics: ['accidents'],
    backoff: { initialMs: 50, maxMs: 100 },
  });
  await waitState(client, 'connected');
  await waitFor(() => client.position('accidents') !== undefined, 'the snapshot');
  const publish = (n: number) =>
    server.aggregator.ingest('accidents', [accident(`a-${n}`, (n % 5) + 1)], n > 3 ? [`a-${n - 3}`] : []);
  for (let n = 1; n <= 5; n++) publish(n);
  await waitFor(
    () => client.position('accidents')?.seq === server.service.position('accidents').seq,
    'live frames',
  );

  let recovered = 0;
  let snapshots = 0;
  client.on('update', ({ message }) => {
    if (message.recovered === true) recovered++;
  });
  client.on('snapshot', () => snapshots++);
  proxy.sever();
  await waitState(client, 'reconnecting');
  for (let n = 6; n <= 105; n++) publish(n); // published while the client is away
  await waitState(client, 'connected');
  await assertConverged(client, server, ['accidents']);
  assert.equal(recovered, 100, 'every missed UPDATE replayed once');
  assert.equal(snapshots, 0, 'history covered the gap: no snapshot needed');
});

test('a raw publish UPDATE changes the state like ingest: a client joining later sees it, with no gap', async (t) => {
  const server = await startServer(t, { publishKeys: ['k'] });
  server.aggregator.ingest('accidents', [accident('x', 3)], []);
  // An UPDATE published through the API is a change of the topic's state by the protocol's rule: applied to the
  // aggregator's state, so the snapshot a later client gets holds it, at the position it took.
  const res = await fetch(`${server.url}/api/publish`, {
    method: 'POST',
    headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
    body: JSON.stringify({
      topic: 'accidents',
      type: 'UPDATE',
      data: { upserts: [accident('api', 5)], removes: [] },
    }),
  });
  assert.equal(res.status, 202);
  const { client, errors } = startClient(t, { url: server.wsUrl, topics: ['accidents'] });
  await waitFor(() => client.state('accidents').has('x'), 'the snapshot');
  assert.ok(client.state('accidents').has('api'), "the published entity is in the late joiner's snapshot");
  assert.deepEqual(client.position('accidents')?.seq, server.service.position('accidents').seq);
  server.aggregator.ingest('accidents', [accident('y', 1)], []);
  const target = server.service.position('accidents');
  await waitFor(() => client.position('accidents')?.seq === target.seq, `seq ${target.seq}`);
  assert.deepEqual([...client.state('accidents').keys()].sort(), ['api', 'x', 'y']);
  assert.equal(errors.filter((e) => e.code === ClientErrorCode.Gap).length, 0, 'no gap to recover');
});

test('a link that dies silently is detected by the watchdog and replaced', async (t) => {
  const server = await startServer(t, { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 800 });
  const proxy = await startTcpProxy(server.port);
  t.after(() => proxy.close());
  const { client, states, errors } = startClient(t, { url: proxy.wsUrl, topics: ['weather'] });
  await waitState(client, 'connected');
  assert.equal(client.serverInfo?.heartbeat.timeoutMs, 800);
  proxy.freeze(); // TCP stays up, nothing gets through: only the watchdog can tell
  await waitState(client, 'reconnecting');
  assert.ok(errors.some((e) => e.code === ClientErrorCode.HeartbeatTimeout));
  await waitState(client, 'connected');
  assert.equal(proxy.accepted, 2);
  assert.deepEqual(states, ['connected', 'reconnecting', 'connected']);
});

test('backoff: reconnect delays follow full jitter with the injected randomness, bounded, then give up', async (t) => {
  const server = await startServer(t);
  const backoff = { initialMs: 40, maxMs: 150, factor: 2 };
  const delays: number[] = [];
  const { client, errors } = startClient(t, {
    url: server.wsUrl,
    backoff,
    maxRetries: 5,
    random: () => 0.75,
    connectTimeoutMs: 4321,
    pingIntervalMs: 60_000,
    heartbeatTimeoutMs: 60_001,
    setTimeout: (callback, ms) => {
      // Only the reconnect timers: the connect, ping and watchdog timers have their own distinct durations.
      if (![4321, 60_000, 60_001].includes(ms)) delays.push(ms);
      return setTimeout(callback, ms);
    },
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  });
  await waitState(client, 'connected');
  await server.close(); // nothing listens on the port any more: every attempt is refused
  await waitState(client, 'closed', 10_000);
  const expected = [0, 1, 2, 3, 4].map((n) => Math.floor(0.75 * backoffCeiling(n, backoff)));
  assert.deepEqual(expected, [30, 60, 112, 112, 112]);
  assert.deepEqual(delays, expected);
  assert.ok(errors.some((e) => e.code === ClientErrorCode.RetriesExhausted));
});

test('close codes from the real server: 4401 reconnects with a fresh token, 4403 ends the client', async (t) => {
  const server = await startServer(t);
  const sockets: WsSocket[] = [];
  const urls: string[] = [];
  server.wss.on('connection', (ws, req) => {
    sockets.push(ws);
    urls.push(req.url ?? '');
  });
  let tokens = 0;
  const { client, states, errors } = startClient(t, { url: server.wsUrl, getToken: () => `t${++tokens}` });
  await waitState(client, 'connected');
  assert.match(urls[0] ?? '', /token=t1/);
  sockets[0]?.close(4401, 'token expired');
  await waitFor(() => sockets.length === 2, 'the second connection');
  await waitState(client, 'connected');
  assert.match(urls[1] ?? '', /token=t2/);
  sockets[1]?.close(4403, 'forbidden');
  await waitState(client, 'closed');
  assert.deepEqual(states, ['connected', 'reconnecting', 'connected', 'closed']);
  assert.equal(errors.find((e) => e.code === ClientErrorCode.Fatal)?.closeCode, 4403);
  assert.equal(sockets.length, 2);
});
