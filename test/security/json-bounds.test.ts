/**
 * Issue 10 item 2: deeply nested (or huge) JSON is refused on every input path before anything is stored,
 * sequenced or cached. One table of hostile structures runs over HTTP publish / broadcast / ingest, client frames,
 * MQTT payloads (real Mosquitto), polled feeds and the library API; each refused input gets a clear 400 / ERROR /
 * throw, is counted, takes no `seq` (the next publish takes seq + 1), and the server still serves: a new WebSocket
 * connect and `GET /api/snapshot` work afterwards. A fast-check property holds the bound function to a reference.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { connectAsync } from 'mqtt';
import {
  DEFAULT_JSON_BOUNDS,
  ErrorCode,
  JsonBoundsError,
  checkJsonBounds,
  resolveJsonBounds,
  type JsonBounds,
  type JsonBoundsCode,
} from '../../src/protocol/messages.js';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { createMqttSource } from '../../src/aggregator/sources/mqtt.js';
import { createHttpPollSource } from '../../src/aggregator/sources/http-poll.js';
import type { CityPulseServer } from '../../src/app/create-server.js';
import { startServer, startService, isoNow } from '../helpers/servers.js';
import { TestClient, connect } from '../helpers/test-client.js';
import { RecordingPublisher, camera } from '../aggregator/helpers.js';
import { waitFor } from '../aggregator/fixture-server.js';

const KEY = 'json-bounds-test-key-0123456789';

/** JSON text of a value nested `depth` deep (built as text: `JSON.stringify` itself overflows on these). */
const deepObject = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const deepArray = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const wideObject = (keys: number): string =>
  `{${Array.from({ length: keys }, (_, i) => `"k${i.toString(36)}":0`).join(',')}}`;
const hugeArray = (items: number): string => `[${'0,'.repeat(items - 1)}0]`;

/** Hostile structures the bounds refuse, as JSON text to splice into a body, with the code expected. */
const REFUSED: readonly { name: string; json: string; code: JsonBoundsCode }[] = [
  { name: 'object nested 20,000 deep', json: deepObject(20_000), code: 'TOO_DEEP' },
  { name: 'array nested 20,000 deep', json: deepArray(20_000), code: 'TOO_DEEP' },
  { name: 'object nested 100 deep', json: deepObject(100), code: 'TOO_DEEP' },
  { name: 'wide object (120,000 keys)', json: wideObject(120_000), code: 'TOO_LARGE' },
  { name: 'huge array (150,000 items)', json: hugeArray(150_000), code: 'TOO_LARGE' },
  { name: 'string of 1.1 M characters', json: JSON.stringify('x'.repeat(1_100_000)), code: 'TOO_LARGE' },
  { name: 'key of 2000 characters', json: `{${JSON.stringify('k'.repeat(2000))}:1}`, code: 'TOO_LARGE' },
];

/** Hostile-looking structures within the bounds: handled as ordinary data (accepted or refused by the schema). */
const WITHIN: readonly { name: string; json: string }[] = [
  { name: '__proto__ key', json: '{"__proto__":{"polluted":true}}' },
  { name: 'constructor key', json: '{"constructor":{"prototype":{"polluted":true}}}' },
  { name: 'numbers as strings', json: '{"severity":"3","lat":"52.1"}' },
  { name: 'nested 50 deep (under the bound)', json: deepObject(50) },
  { name: 'NaN-like strings', json: '["NaN","Infinity","-0",1e308]' },
];

async function post(
  server: CityPulseServer,
  path: string,
  body: string,
): Promise<{
  status: number;
  json: { error?: { code: string; message: string } } & Record<string, unknown>;
}> {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, json: (await res.json()) as never };
}

/** The three write paths, each with the hostile part spliced into a place that gets stored or delivered. */
const HTTP_PATHS: readonly { path: string; topic: string; body: (hostile: string) => string }[] = [
  {
    path: '/api/publish',
    topic: 'accidents',
    body: (h) => `{"topic":"accidents","type":"ALERT","data":{"message":"m","extra":${h}}}`,
  },
  { path: '/api/broadcast', topic: 'accidents', body: (h) => `{"type":"ALERT","data":${h}}` },
  {
    path: '/api/ingest',
    topic: 'cameras',
    body: (h) =>
      `{"topic":"cameras","entities":[${JSON.stringify(camera('cam-x')).slice(0, -1)},"extra":${h}}]}`,
  },
];

/** A new client still gets CONNECTED then a SNAPSHOT, and `GET /api/snapshot` still answers. */
async function assertStillServes(t: TestContext, server: CityPulseServer): Promise<void> {
  const { client, connected, snapshot } = await connect(server.wsUrl);
  t.after(() => client.close());
  assert.equal(connected.type, 'CONNECTED');
  assert.equal(snapshot.type, 'SNAPSHOT');
  client.close();
  const res = await fetch(`${server.url}/api/snapshot`);
  assert.equal(res.status, 200);
  assert.equal(typeof (await res.json()), 'object');
}

test('HTTP publish / broadcast / ingest: every hostile structure gets 400 with its code, takes no seq, is counted', async (t) => {
  const server = await startServer(t, { publishKeys: [KEY], maxBodyBytes: 4 * 1024 * 1024 });
  const watcher = new TestClient(`${server.wsUrl}?topics=accidents,cameras`);
  t.after(() => watcher.close());
  await watcher.nextOfType('SNAPSHOT');
  for (const { path, topic, body } of HTTP_PATHS) {
    for (const hostile of REFUSED) {
      const label = `${path} ${hostile.name}`;
      const before = server.service.position(topic);
      const rejected = server.service.counters().rejected;
      const { status, json } = await post(server, path, body(hostile.json));
      assert.equal(status, 400, label);
      assert.equal(json.error?.code, hostile.code, label);
      assert.deepEqual(server.service.position(topic), before, `${label}: no seq taken`);
      assert.equal(server.service.counters().rejected, rejected + 1, `${label}: counted`);
      // The next publish takes exactly seq + 1, and it is the next frame the subscriber sees: no hole.
      const next = await post(server, '/api/publish', `{"topic":"${topic}","type":"ALERT","data":{"n":1}}`);
      assert.equal(next.status, 202, label);
      assert.equal(next.json.seq, before.seq + 1, `${label}: no hole`);
      const frame = await watcher.next(
        (m) => m.type === 'ALERT' && (m as { topic?: string }).topic === topic,
      );
      assert.equal((frame as { seq?: number }).seq, before.seq + 1, label);
    }
  }
  assert.equal(server.aggregator.getTopicSnapshot('cameras').entities.length, 0, 'nothing stored');
  await assertStillServes(t, server);
  assert.equal(server.service.counters().rejected, REFUSED.length * HTTP_PATHS.length);
});

test('HTTP: structures within the bounds are ordinary data; accepted ones take exactly one seq, nothing is polluted', async (t) => {
  const server = await startServer(t, { publishKeys: [KEY] });
  for (const { path, topic, body } of HTTP_PATHS) {
    for (const item of WITHIN) {
      const label = `${path} ${item.name}`;
      const before = server.service.position(topic).seq;
      const { status, json } = await post(server, path, body(item.json));
      assert.ok(
        status === 202 || (status === 400 && json.error?.code === 'BAD_ENTITY'),
        `${label}: ${status}`,
      );
      const taken = server.service.position(topic).seq - before;
      assert.ok(taken <= 1, `${label}: took ${taken} seqs`);
      if (path === '/api/publish') assert.equal(json.seq, before + 1, label);
    }
  }
  // Duplicate ids in one ingest: one entity, one UPDATE.
  const before = server.service.position('cameras').seq;
  const dup = await post(
    server,
    '/api/ingest',
    JSON.stringify({
      topic: 'cameras',
      entities: [camera('dup', { name: 'A' }), camera('dup', { name: 'B' })],
    }),
  );
  assert.equal(dup.status, 202);
  assert.equal(server.service.position('cameras').seq, before + 1);
  assert.equal(
    server.aggregator.getTopicSnapshot('cameras').entities.filter((e) => e.id === 'dup').length,
    1,
  );
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
  assert.equal(server.service.counters().rejected, 0);
  await assertStillServes(t, server);
});

test('client frames: hostile structures get ERROR TOO_DEEP / TOO_LARGE, are counted, and the connection serves on', async (t) => {
  // Frames are capped at 64 KiB, so the table uses what fits (and a smaller value bound to reach TOO_LARGE).
  const { service, url } = await startService(t, { jsonBounds: { maxNodes: 1000 } });
  const c = new TestClient(url);
  t.after(() => c.close());
  await c.nextOfType('SNAPSHOT');
  const frames: readonly { name: string; text: string; code: ErrorCode }[] = [
    {
      name: 'array 20,000 deep in ping',
      text: `{"type":"ping","id":1,"x":${deepArray(20_000)}}`,
      code: ErrorCode.TooDeep,
    },
    { name: 'object 5,000 deep', text: deepObject(5000), code: ErrorCode.TooDeep },
    {
      name: 'deep topics list',
      text: `{"type":"subscribe","topics":${deepArray(65)}}`,
      code: ErrorCode.TooDeep,
    },
    {
      name: 'resume with a deep position',
      text: `{"type":"resume","topics":{"cameras":${deepObject(70)}}}`,
      code: ErrorCode.TooDeep,
    },
    {
      name: 'huge array',
      text: `{"type":"subscribe","topics":${hugeArray(5000)}}`,
      code: ErrorCode.TooLarge,
    },
    { name: 'wide object', text: `{"type":"ping",${wideObject(2000).slice(1)}`, code: ErrorCode.TooLarge },
  ];
  for (const [i, frame] of frames.entries()) {
    c.send(frame.text);
    const error = await c.next();
    assert.equal(error.type, 'ERROR', frame.name);
    assert.equal((error.data as { code: string }).code, frame.code, frame.name);
    assert.equal(service.counters().rejected, i + 1, `${frame.name}: counted`);
    c.send({ type: 'ping', id: i });
    const pong = await c.next();
    assert.equal(pong.type, 'PONG', `${frame.name}: still served`);
  }
  const { client, snapshot } = await connect(url);
  client.close();
  assert.equal(snapshot.type, 'SNAPSHOT');
});

/** A value nested `depth` deep, built without recursion. */
function deepValue(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

test('library publish / broadcastToTopic / broadcast throw JsonBoundsError before taking a seq: the next seq follows', async (t) => {
  const { service, url } = await startService(t);
  const c = new TestClient(`${url}?topics=weather`);
  t.after(() => c.close());
  await c.nextOfType('SNAPSHOT');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const values: readonly { name: string; data: unknown; code: JsonBoundsCode }[] = [
    { name: 'object 20,000 deep', data: deepValue(20_000), code: 'TOO_DEEP' },
    { name: 'cycle', data: cyclic, code: 'TOO_DEEP' },
    { name: 'bigint', data: { n: 10n }, code: 'NOT_JSON' },
    {
      name: 'throwing toJSON',
      data: {
        toJSON() {
          throw new Error('no');
        },
      },
      code: 'NOT_JSON',
    },
    { name: 'huge array', data: new Array(200_000).fill(0), code: 'TOO_LARGE' },
  ];
  const calls = [
    (data: unknown) => service.publish('weather', { type: 'ALERT', data, timestamp: isoNow() }),
    (data: unknown) => service.broadcastToTopic('weather', { type: 'UPDATE', data, timestamp: isoNow() }),
    (data: unknown) => service.broadcast({ type: 'ALERT', data, timestamp: isoNow() }),
  ];
  let expectedRejected = 0;
  for (const [k, call] of calls.entries()) {
    for (const value of values) {
      const label = `call ${k} ${value.name}`;
      const before = service.position('weather');
      assert.throws(
        () => call(value.data),
        (error: unknown) => error instanceof JsonBoundsError && error.code === value.code,
        label,
      );
      expectedRejected++;
      assert.deepEqual(service.position('weather'), before, `${label}: no seq taken`);
      assert.equal(service.counters().rejected, expectedRejected, `${label}: counted`);
      const position = await service.publish('weather', {
        type: 'ALERT',
        data: { ok: k },
        timestamp: isoNow(),
      });
      assert.equal(position.seq, before.seq + 1, `${label}: no hole`);
      const frame = await c.next();
      assert.equal(frame.type, 'ALERT', label);
      assert.equal((frame as { seq?: number }).seq, before.seq + 1, label);
    }
  }
  assert.equal(
    service.counters().published,
    calls.length * values.length,
    'only the good ones were published',
  );
});

test('a snapshot provider whose state cannot be encoded gives SNAPSHOT_UNAVAILABLE, not a crash', async (t) => {
  const { service, url } = await startService(t);
  service.setSnapshotProvider(() => ({ weather: { entities: [deepValue(20_000)], seq: 0 } }));
  const { client, connected, snapshot } = await connect(url, 'topics=weather');
  t.after(() => client.close());
  assert.equal(connected.type, 'CONNECTED');
  assert.equal(snapshot.type, 'SNAPSHOT');
  const error = await client.next();
  assert.equal((error.data as { code: string }).code, ErrorCode.SnapshotUnavailable);
  client.send({ type: 'ping', id: 'after' });
  assert.equal((await client.next()).type, 'PONG');
});

test('MQTT: payloads outside the bounds are counted as rejected and never stored; later readings are', async (t) => {
  const base = `citypulse-test/${randomBytes(6).toString('hex')}`;
  const source = createMqttSource({
    name: 'mqtt',
    url: 'mqtt://127.0.0.1:1883',
    topics: { cameras: `${base}/cameras/+` },
    reconnectPeriodMs: 50,
  });
  const aggregator = new DataAggregator({ sources: [source], alerts: false });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  const pub = await connectAsync('mqtt://127.0.0.1:1883', {
    clientId: `citypulse-test-pub-${randomBytes(4).toString('hex')}`,
    reconnectPeriod: 0,
  });
  t.after(async () => {
    await aggregator.stop();
    await pub.endAsync(true);
  });
  await aggregator.start();
  await waitFor(() => aggregator.sourceStatus()[0]?.lastSuccessAt !== null, 'subscribed');
  const withExtra = (id: string, extra: string): string =>
    `${JSON.stringify(camera(id)).slice(0, -1)},"extra":${extra}}`;
  const payloads = [
    deepArray(20_000), // the whole payload
    withExtra('deep-1', deepObject(20_000)), // one entity's extra field
    `[${withExtra('deep-2', deepArray(100))}]`, // inside an array of entities
    `{"upserts":[${withExtra('huge', hugeArray(120_000))}]}`, // an envelope
  ];
  for (const payload of payloads) await pub.publishAsync(`${base}/cameras/bad`, payload);
  await pub.publishAsync(`${base}/cameras/good`, JSON.stringify(camera('good')));
  // Mosquitto keeps order on one connection: once `good` is in, every hostile payload has been handled.
  await waitFor(() => publisher.of('cameras').length >= 1, 'the good reading');
  assert.deepEqual(
    aggregator.getTopicSnapshot('cameras').entities.map((e) => e.id),
    ['good'],
  );
  assert.equal(aggregator.sourceStatus()[0]?.rejected, payloads.length);
  assert.equal(publisher.of('cameras').length, 1);
});

test('polled feeds: a body outside the bounds is refused and counted; an entity outside them is rejected alone', async (t) => {
  const bodies = [
    `{"items":[${deepArray(20_000)}]}`,
    `{"items":[${JSON.stringify(camera('good'))},${JSON.stringify(camera('huge')).slice(0, -1)},"extra":${hugeArray(120_000)}}]}`,
  ];
  let served = 0;
  const feed = http.createServer((_req, res) => {
    const body = bodies[Math.min(served++, bodies.length - 1)] as string;
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => feed.listen(0, '127.0.0.1', resolve));
  const source = createHttpPollSource({
    name: 'feed',
    url: `http://127.0.0.1:${(feed.address() as AddressInfo).port}/feed.json`,
    parser: {
      format: 'test-items',
      topic: 'cameras',
      parse: (body) => ({ topic: 'cameras', upserts: (body as { items: unknown[] }).items }),
    },
    intervalMs: 600_000, // after the second body succeeds, no third poll within the test
    backoff: { initialMs: 10, maxMs: 20 },
  });
  const aggregator = new DataAggregator({ sources: [source], alerts: false });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  t.after(async () => {
    await aggregator.stop();
    feed.closeAllConnections();
    await new Promise<void>((resolve) => feed.close(() => resolve()));
  });
  await aggregator.start();
  await waitFor(() => publisher.of('cameras').length >= 1, 'the second body applied');
  const status = aggregator.sourceStatus()[0];
  assert.equal(status?.rejected, 2, 'the deep body and the huge entity');
  assert.deepEqual(
    aggregator.getTopicSnapshot('cameras').entities.map((e) => e.id),
    ['good'],
  );
});

// ---------------------------------------------------------------------------------------------------------------
// The bound function itself
// ---------------------------------------------------------------------------------------------------------------

/** Reference measures, recursive (fine for the small values fast-check makes). */
function measure(value: unknown): {
  depth: number;
  nodes: number;
  string: number;
  key: number;
  size: number;
} {
  if (typeof value === 'string')
    return { depth: 0, nodes: 1, string: value.length, key: 0, size: 1 + value.length };
  if (typeof value !== 'object' || value === null) return { depth: 0, nodes: 1, string: 0, key: 0, size: 1 };
  const out = { depth: 0, nodes: 1, string: 0, key: 0, size: 1 };
  const entries = Array.isArray(value) ? value.map((v) => ['', v] as const) : Object.entries(value);
  for (const [key, child] of entries) {
    const m = measure(child);
    out.depth = Math.max(out.depth, m.depth);
    out.nodes += m.nodes;
    out.string = Math.max(out.string, m.string);
    out.key = Math.max(out.key, m.key, key.length);
    out.size += m.size + key.length;
  }
  out.depth += 1;
  return out;
}

test('property: checkJsonBounds refuses exactly the values a reference measure puts outside the bounds', () => {
  const bounds = fc.record({
    maxDepth: fc.integer({ min: 0, max: 6 }),
    maxNodes: fc.integer({ min: 1, max: 60 }),
    maxStringLength: fc.integer({ min: 0, max: 12 }),
    maxKeyLength: fc.integer({ min: 0, max: 6 }),
    maxSize: fc.integer({ min: 1, max: 300 }),
  });
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), bounds, (value, b: JsonBounds) => {
      const m = measure(value);
      const violated = new Set<JsonBoundsCode>();
      if (m.depth > b.maxDepth) violated.add('TOO_DEEP');
      if (
        m.nodes > b.maxNodes ||
        m.string > b.maxStringLength ||
        m.key > b.maxKeyLength ||
        m.size > b.maxSize
      )
        violated.add('TOO_LARGE');
      const result = checkJsonBounds(value, b);
      if (violated.size === 0) {
        assert.equal(result, null);
      } else {
        assert.ok(result !== null, `expected one of ${[...violated].join(', ')}`);
        assert.ok(violated.has(result.code), `${result.code} not among ${[...violated].join(', ')}`);
      }
    }),
    { numRuns: 500 },
  );
});

test('checkJsonBounds: no recursion (20,000 deep, a cycle), toJSON as JSON.stringify sees it, defaults documented', () => {
  assert.equal(checkJsonBounds(deepValue(20_000))?.code, 'TOO_DEEP');
  assert.equal(checkJsonBounds(JSON.parse(deepArray(20_000)))?.code, 'TOO_DEEP');
  assert.equal(checkJsonBounds(deepValue(DEFAULT_JSON_BOUNDS.maxDepth)), null);
  assert.equal(checkJsonBounds(deepValue(DEFAULT_JSON_BOUNDS.maxDepth + 1))?.code, 'TOO_DEEP');
  assert.equal(checkJsonBounds({ at: new Date(0), buffer: Buffer.from('ab') }), null);
  assert.equal(checkJsonBounds({ toJSON: () => deepValue(100) })?.code, 'TOO_DEEP');
  assert.deepEqual(DEFAULT_JSON_BOUNDS, {
    maxDepth: 64,
    maxNodes: 100_000,
    maxStringLength: 1024 * 1024,
    maxKeyLength: 1024,
    maxSize: 4 * 1024 * 1024,
  });
  assert.equal(resolveJsonBounds({ maxDepth: 3 }).maxDepth, 3);
  assert.throws(() => resolveJsonBounds({ maxDepth: -1 }), RangeError);
});
