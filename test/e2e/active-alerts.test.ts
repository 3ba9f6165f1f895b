/**
 * End to end: the alerts already active are part of what a client receives on connect. An alert raised before a
 * client connects (AQI 350 through `POST /api/ingest` on `airQuality`: the built-in air-quality rule) is in its first
 * SNAPSHOT, in `client.activeAlerts()`, in `GET /api/snapshot` and in the SNAPSHOT of a resume that fell back to one;
 * resolved later it is gone for the connected client and for a late joiner. Published ALERTs with an id (HTTP and
 * the library) count the same. On one node, and on two nodes over Redis (written on A, read on B). A resume from
 * history (a cut link) replays the ALERTs missed meanwhile, and the SDK's active alerts stay exact.
 *
 * Hostile ALERT data (over the JSON bounds: huge, nested; 1,000 distinct ids) never grows the stored set past 256
 * and never breaks a later snapshot reader; neither do garbage values written straight into the Redis alerts hash.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { createClient, type StateChange } from '../../src/client/index.js';
import type { CityPulseServer } from '../../src/app/create-server.js';
import { MAX_ACTIVE_ALERTS } from '../../src/protocol/alert-state.js';
import { KEY, redisClient, redisUp, startNode, testPrefix } from '../cluster/helpers.js';
import { postJson, startServer } from '../helpers/servers.js';
import { nextEvent, waitFor } from '../client/fixtures/wait.js';
import { startTcpProxy } from '../client/fixtures/tcp-proxy.js';

const TOPIC = 'airQuality';

interface SnapshotData {
  entities: unknown[];
  seq: number;
  epoch?: string;
  alerts: Record<string, unknown>[];
}

function station(id: string, aqi: number): Record<string, unknown> {
  return {
    id,
    name: `Station ${id}`,
    location: { lat: 52.37, lon: 4.89 },
    aqi,
    category: aqi > 300 ? 'hazardous' : 'good',
    updatedAt: new Date().toISOString(),
    source: 'e2e',
  };
}

function post(
  server: CityPulseServer,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return postJson(server, path, body, KEY);
}

/** The `data` of the first SNAPSHOT of `TOPIC` a raw socket gets with this query (full or per-topic SNAPSHOT). */
async function firstSnapshot(server: CityPulseServer, query = `topics=${TOPIC}`): Promise<SnapshotData> {
  const ws = new WebSocket(`${server.wsUrl}?${query}`);
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SNAPSHOT within 10 s')), 10_000);
      ws.on('error', reject);
      ws.on('message', (raw) => {
        const frame = JSON.parse(String(raw)) as { type: string; topic?: string; data: unknown };
        if (frame.type !== 'SNAPSHOT') return;
        const data =
          frame.topic === TOPIC
            ? (frame.data as SnapshotData)
            : (frame.data as Record<string, SnapshotData>)[TOPIC];
        if (data === undefined) return;
        clearTimeout(timer);
        resolve(data);
      });
    });
  } finally {
    ws.terminate();
  }
}

async function httpSnapshot(server: CityPulseServer): Promise<SnapshotData | undefined> {
  const res = await fetch(`${server.url}/api/snapshot`, {
    headers: { authorization: `Bearer ${KEY}` },
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as Record<string, SnapshotData>)[TOPIC];
}

function ids(alerts: readonly Record<string, unknown>[] | undefined): unknown[] {
  return (alerts ?? []).map((a) => a.id);
}

async function scenario(t: TestContext, writer: CityPulseServer, reader: CityPulseServer): Promise<void> {
  // Raised before anyone connects: the built-in air-quality rule on an ingested AQI of 350.
  assert.equal(
    (await post(writer, '/api/ingest', { topic: TOPIC, entities: [station('s1', 350)] })).status,
    202,
  );
  // A published alert with an id, and a transient one without.
  assert.equal(
    (
      await post(writer, '/api/publish', {
        topic: TOPIC,
        type: 'ALERT',
        data: { id: 'ops-1', message: 'sensor maintenance', severity: 'info' },
      })
    ).status,
    202,
  );
  assert.equal(
    (await post(writer, '/api/publish', { topic: TOPIC, type: 'ALERT', data: { message: 'transient' } }))
      .status,
    202,
  );
  let first: SnapshotData;
  const deadline = Date.now() + 10_000;
  do {
    first = await firstSnapshot(reader);
  } while (first.alerts.length < 2 && Date.now() < deadline);
  assert.equal(first.alerts.length, 2, JSON.stringify(first.alerts));
  const [ruleAlert, opsAlert] = first.alerts;
  assert.equal(ruleAlert?.rule, 'air-quality');
  assert.equal(ruleAlert?.entityId, 's1');
  assert.equal(ruleAlert?.state, 'raised');
  assert.equal(opsAlert?.id, 'ops-1');
  assert.deepEqual(ids((await httpSnapshot(reader))?.alerts), ids(first.alerts), 'GET /api/snapshot');
  // A resume that cannot be served from history falls back to a snapshot: the alerts are in it.
  const fallback = await firstSnapshot(reader, `resume=${TOPIC}:no-such-epoch:5`);
  assert.deepEqual(ids(fallback.alerts), ids(first.alerts), 'resume fallback snapshot');

  // The SDK: activeAlerts() after its first snapshot.
  const client = createClient({ url: reader.wsUrl, WebSocket, topics: [TOPIC] });
  t.after(() => client.close());
  await waitFor(() => client.activeAlerts().length === 2, 'the SDK holds the active alerts', 10_000);
  const views = client.activeAlerts(TOPIC);
  assert.equal(views[0]?.rule, 'air-quality');
  assert.equal(views[0]?.topic, TOPIC);
  assert.equal(views[1]?.message, 'sensor maintenance');
  assert.deepEqual(client.activeAlerts('weather'), [], 'a topic not subscribed has none');

  // Resolved: the station recovers, the operator ends theirs (through the library on the writer).
  assert.equal(
    (await post(writer, '/api/ingest', { topic: TOPIC, entities: [station('s1', 20)] })).status,
    202,
  );
  await writer.service.publish(TOPIC, {
    type: 'ALERT',
    topic: TOPIC,
    data: { id: 'ops-1', state: 'resolved', message: 'done' },
    timestamp: new Date().toISOString(),
  });
  await waitFor(() => client.activeAlerts().length === 0, 'the connected client sees them resolved', 10_000);
  const seq = client.position(TOPIC)?.seq ?? 0;
  const late = await firstSnapshot(reader);
  assert.ok(late.seq >= seq);
  assert.deepEqual(late.alerts, [], 'gone for a late joiner');
  assert.deepEqual((await httpSnapshot(reader))?.alerts, []);
}

test('single node: active alerts reach a client on connect, in the SDK, over HTTP and after resume', async (t) => {
  const server = await startServer(t, { publishKeys: [KEY] });
  await scenario(t, server, server);
});

test('single node: a resume replays the ALERTs missed while away; the active alerts stay exact', async (t) => {
  const server = await startServer(t, { publishKeys: [KEY] });
  const proxy = await startTcpProxy(server.port);
  t.after(() => proxy.close());
  const client = createClient({
    url: proxy.wsUrl,
    WebSocket,
    topics: [TOPIC],
    backoff: { initialMs: 50, maxMs: 100 },
  });
  t.after(() => client.close());
  const alert = (data: Record<string, unknown>) =>
    server.service.publish(TOPIC, { type: 'ALERT', topic: TOPIC, data, timestamp: new Date().toISOString() });
  alert({ id: 'a', message: 'a' });
  alert({ id: 'b', message: 'b' });
  await waitFor(() => client.activeAlerts().length === 2, 'the first two alerts', 10_000);
  let snapshots = 0;
  let replayed = 0;
  client.on('snapshot', () => snapshots++);
  client.on('alert', ({ message }) => {
    if (message.recovered === true) replayed++;
  });
  // The listener is in place before the cut, so the short 'reconnecting' spell (a jittered backoff of 0-100 ms)
  // cannot be missed; everything published while away is published synchronously in that spell.
  const away = nextEvent<StateChange>(
    (fn) => client.on('state', fn),
    (change) => change.newState === 'reconnecting',
    'the cut link',
    10_000,
  );
  proxy.sever();
  await away;
  // While away: one resolved, two raised, one re-raised with new data, one transient, the AQI rule.
  alert({ id: 'a', state: 'resolved', message: 'a over' });
  alert({ id: 'c', message: 'c' });
  alert({ id: 'b', message: 'b again' });
  alert({ message: 'transient' });
  assert.equal(server.aggregator.ingest(TOPIC, [station('s9', 400)]).ok, true);
  await waitFor(
    () => client.position(TOPIC)?.seq === server.service.position(TOPIC).seq,
    'the client caught up',
    10_000,
  );
  assert.equal(snapshots, 0, 'history covered the gap: replayed, no snapshot');
  assert.equal(replayed, 5, 'every missed ALERT replayed');
  const expected = server.aggregator.getTopicSnapshot(TOPIC).alerts;
  assert.deepEqual(
    client.activeAlerts().map((a) => [a.id, a.message]),
    expected.map((a) => [a.id, a.message]),
  );
  assert.deepEqual(
    client.activeAlerts().map((a) => a.id),
    ['b', 'c', expected[2]?.id],
  );
});

/** Hostile ALERTs on `writer`: none is stored past the bound or breaks a reader of `reader`. */
async function hostile(writer: CityPulseServer, reader: CityPulseServer): Promise<void> {
  const before = (await firstSnapshot(reader)).seq;
  let nested: unknown = { id: 'deep' };
  for (let i = 0; i < 200; i++) nested = { id: `deep-${i}`, inner: nested };
  const refused: unknown[] = [{ id: 'huge', message: 'x'.repeat(1024 * 1024 + 1) }, nested];
  for (const data of refused) {
    const res = await post(writer, '/api/publish', { topic: TOPIC, type: 'ALERT', data });
    assert.ok(res.status === 400 || res.status === 413, `refused: ${res.status}`);
  }
  // Within the JSON bounds but too large to be kept: delivered (a seq), never active.
  const big = await post(writer, '/api/publish', {
    topic: TOPIC,
    type: 'ALERT',
    data: { id: 'big', message: 'x'.repeat(100_000) },
  });
  assert.equal(big.status, 202);
  // 1,000 distinct ids, 20 at a time: 256 are kept, every one is delivered (takes a seq).
  for (let from = 0; from < 1000; from += 20) {
    const batch = Array.from({ length: 20 }, (_, j) =>
      post(writer, '/api/publish', {
        topic: TOPIC,
        type: 'ALERT',
        data: { id: `flood-${from + j}`, message: 'flood', nested: { a: [1, { b: 2 }] } },
      }),
    );
    for (const res of await Promise.all(batch)) assert.equal(res.status, 202);
  }
  let after: SnapshotData;
  const deadline = Date.now() + 10_000;
  do after = await firstSnapshot(reader);
  while (after.seq < before + 1001 && Date.now() < deadline);
  assert.equal(
    after.seq,
    before + 1001,
    'the big one and every flood ALERT took a seq; the refused ones none',
  );
  assert.equal(after.alerts.length, MAX_ACTIVE_ALERTS);
  assert.ok(!ids(after.alerts).includes('big'), 'the oversized alert is not kept');
  assert.equal(after.alerts.length, new Set(ids(after.alerts)).size);
  assert.equal((await httpSnapshot(reader))?.alerts.length, MAX_ACTIVE_ALERTS);
}

test('single node: hostile ALERT data never grows the active set past 256 nor breaks a snapshot', async (t) => {
  const server = await startServer(t, { publishKeys: [KEY] });
  await hostile(server, server);
});

const up = await redisUp();

test(
  'two nodes over Redis: raised on A before B’s client connects, in its first snapshot; resolved, gone',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 60_000 },
  async (t) => {
    const prefix = testPrefix(t);
    const a = await startNode(t, { redisKeyPrefix: prefix, nodeId: 'writer' });
    const b = await startNode(t, { redisKeyPrefix: prefix, nodeId: 'reader' });
    await scenario(t, a, b);
  },
);

test(
  'two nodes over Redis: hostile ALERTs and garbage in the alerts hash never exceed 256 nor break a reader',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 90_000 },
  async (t) => {
    const prefix = testPrefix(t);
    const a = await startNode(t, { redisKeyPrefix: prefix, nodeId: 'writer' });
    const b = await startNode(t, { redisKeyPrefix: prefix, nodeId: 'reader' });
    await hostile(a, b);
    const redis = redisClient(t);
    const key = `${prefix}{${TOPIC}}:alerts`;
    assert.equal(await redis.hlen(key), MAX_ACTIVE_ALERTS, 'the script keeps the bound');
    // Anyone with access to the Redis can write the hash: values that do not parse, lack the order, break the
    // JSON bounds, are not active alerts, and far more entries than the bound.
    let deep = '1';
    for (let i = 0; i < 10_000; i++) deep = `[${deep}]`;
    await redis.del(key);
    const garbage: Record<string, string> = {
      a: 'not json',
      b: '{"id":"b"}',
      c: 'x {"id":"c"}',
      d: `4 {"id":"d","v":${deep}}`,
      e: '5 {"id":"e","state":"resolved"}',
      f: '6 "text"',
      g: '7 {"id":"g","message":"kept"}',
      h: '3 {"id":"h","message":"kept, older"}',
    };
    await redis.hset(key, garbage);
    const snapshot = await firstSnapshot(b);
    assert.deepEqual(ids(snapshot.alerts), ['h', 'g'], 'only the valid ones, oldest first');
    for (let i = 0; i < 1000; i++) await redis.hset(key, `x${i}`, `${100 + i} {"id":"x${i}"}`);
    const flooded = await firstSnapshot(b);
    assert.equal(flooded.alerts.length, MAX_ACTIVE_ALERTS, 'a reader never returns more than the bound');
    assert.deepEqual(ids(flooded.alerts).slice(0, 2), ['h', 'g']);
    // A new raise is not kept while the hash is at (or past) the bound; a resolve still ends one.
    await a.service.publish(TOPIC, {
      type: 'ALERT',
      topic: TOPIC,
      data: { id: 'g', state: 'resolved' },
      timestamp: new Date().toISOString(),
    });
    await a.service.publish(TOPIC, {
      type: 'ALERT',
      topic: TOPIC,
      data: { id: 'new-one', message: 'over the bound' },
      timestamp: new Date().toISOString(),
    });
    assert.equal(await redis.hexists(key, 'g'), 0);
    assert.equal(await redis.hexists(key, 'new-one'), 0);
    assert.equal((await httpSnapshot(b))?.alerts.length, MAX_ACTIVE_ALERTS);
  },
);
