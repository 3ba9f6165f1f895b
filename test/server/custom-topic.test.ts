/**
 * Issue 12 item 1: a topic defined only as a `TopicDefinition` passed to `createServer` (`parking`, its own schema
 * and id field) gets everything a built-in topic has: `GET /api/topics`, subscribe, a SNAPSHOT with its epoch from
 * the first frame on, `POST /api/ingest` accepted and refused by its schema (400 naming the field, no seq
 * consumed), UPDATE frames, resume after reconnect, ACL patterns, metric labels, and the same on two nodes over
 * Redis; and the same topic defined only in a config file, served by two `citypulse serve` processes over Redis.
 * Real sockets on port 0, real Redis (skipped when none answers).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { CityPulseServer } from '../../src/app/create-server.js';
import type { TopicDefinition } from '../../src/protocol/topic-definition.js';
import type { ServerMessage } from '../../src/protocol/messages.js';
import type { TopicState } from '../../src/protocol/topics.js';
import { UpdateRejectedError } from '../../src/protocol/state-model.js';
import { resolveTopicRegistry } from '../../src/protocol/topic-registry.js';
import { startCli } from '../helpers/cli.js';
import { startServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/test-client.js';
import { REDIS_URL, redisUp, startNode, startRedisService, testPrefix } from '../cluster/helpers.js';
import { SECRET, mint } from '../security/tokens.js';

const KEY = 'custom-topic-publish-key';
const BASE = { updatedAt: '2026-03-01T12:00:00.000Z', source: 'test' };

/** A topic only this test knows: parking lots keyed by `lotId`, with an integer `freeSpaces`. */
const PARKING: TopicDefinition = {
  name: 'parking',
  idField: 'lotId',
  locationField: 'location',
  display: {
    label: 'Parking',
    color: '#336699',
    icon: 'P',
    fields: [{ field: 'freeSpaces', label: 'Free' }],
  },
  schema: {
    type: 'object',
    required: ['freeSpaces', 'location'],
    properties: {
      freeSpaces: { type: 'integer', minimum: 0, maximum: 100_000 },
      location: {
        type: 'object',
        required: ['lat', 'lon'],
        properties: { lat: { type: 'number' }, lon: { type: 'number' } },
      },
    },
  },
  ttlMs: 0,
  alerts: [],
};

const lot = (lotId: string, freeSpaces: unknown) => ({
  lotId,
  freeSpaces,
  location: { lat: 52.37, lon: 4.89 },
});

async function post(server: Node, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/api/ingest`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function get(url: string, authorization?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    headers: authorization === undefined ? {} : { authorization },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, text: await res.text() };
}

function client(t: TestContext, url: string): TestClient {
  const c = new TestClient(url);
  t.after(() => c.close());
  return c;
}

const isUpdate = (m: ServerMessage): boolean => m.type === 'UPDATE' && m.topic === 'parking';

/** A topic frame as the tests read it. */
type TopicFrame = ServerMessage & { seq?: number; epoch?: string; recovered?: boolean };

/** The next UPDATE of the parking topic. */
async function nextUpdate(c: TestClient): Promise<TopicFrame> {
  return (await c.next(isUpdate)) as TopicFrame;
}

/** The per-topic state inside the connect-time SNAPSHOT. */
function parkingState(snapshot: ServerMessage): { entities: unknown[]; seq: number; epoch?: string } {
  assert.equal(snapshot.type, 'SNAPSHOT');
  const data = snapshot.data as Record<string, { entities: unknown[]; seq: number; epoch?: string }>;
  const state = data.parking;
  assert.ok(state !== undefined, 'the snapshot holds the parking topic');
  return state;
}

/** A node as the tests reach it: an in-process server or a `citypulse serve` process. */
type Node = Pick<CityPulseServer, 'url' | 'wsUrl'>;

/** Drives one node (or two) through the whole life of the custom topic. */
async function exercise(
  t: TestContext,
  writer: Node,
  reader: Node,
  servedTopics: readonly string[] = ['cameras', 'parking'],
): Promise<void> {
  const topics = await get(`${reader.url}/api/topics`);
  assert.equal(topics.status, 200);
  const infos = (JSON.parse(topics.text) as { topics: Record<string, unknown>[] }).topics;
  assert.deepEqual(
    infos.map((info) => info.name),
    servedTopics,
    'registry order',
  );
  assert.deepEqual(infos[servedTopics.indexOf('parking')], {
    name: 'parking',
    idField: 'lotId',
    locationField: 'location',
    display: PARKING.display,
  });
  assert.equal('schema' in (infos[1] as object), false, 'clients see no schema');

  const first = client(t, `${reader.wsUrl}?topics=parking`);
  await first.opened;
  assert.equal((await first.next()).type, 'CONNECTED');
  const initial = parkingState(await first.next());
  assert.equal(initial.seq, 0);
  assert.equal(typeof initial.epoch, 'string', 'the first snapshot carries the epoch');
  assert.notEqual(initial.epoch, '');
  const httpState = JSON.parse((await get(`${reader.url}/api/snapshot`)).text) as Record<string, TopicState>;
  assert.deepEqual(
    { seq: httpState.parking?.seq, epoch: httpState.parking?.epoch },
    { seq: 0, epoch: initial.epoch },
    'GET /api/snapshot: the same epoch before anything was published',
  );

  const accepted = await post(writer, { topic: 'parking', entities: [lot('p1', 12)] });
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  const update1 = await nextUpdate(first);
  assert.equal(update1.seq, 1);
  assert.equal(update1.epoch, initial.epoch);
  const upserts = (update1.data as { upserts: Record<string, unknown>[] }).upserts;
  assert.equal(upserts[0]?.id, 'p1', 'the id comes from the idField');

  // Refused by the topic's own schema: 400 naming the field, and no seq consumed.
  for (const [entity, field] of [
    [lot('p2', -1), 'entities[0].freeSpaces'],
    [lot('p2', 2.5), 'entities[0].freeSpaces'],
    [lot('p2', '3'), 'entities[0].freeSpaces'],
    [{ lotId: 'p2', freeSpaces: 1 }, 'entities[0].location'],
    [{ freeSpaces: 1, location: { lat: 1, lon: 2 } }, 'entities[0].id'],
  ] as const) {
    const refused = await post(writer, { topic: 'parking', entities: [entity] });
    assert.equal(refused.status, 400, JSON.stringify(entity));
    assert.equal((refused.body.error as { field?: unknown }).field, field, JSON.stringify(refused.body));
  }
  assert.equal((await post(writer, { topic: 'parking', entities: [lot('p2', 4)] })).status, 202);
  const update2 = await nextUpdate(first);
  assert.equal(update2.seq, 2, 'refused ingests took no seq');

  // Resume: the frames missed while away, recovered, then live ones.
  first.close();
  await first.waitForClose();
  assert.equal((await post(writer, { topic: 'parking', entities: [lot('p1', 11)] })).status, 202);
  const second = client(t, `${reader.wsUrl}?resume=parking:${initial.epoch}:2`);
  await second.opened;
  const replayed = await nextUpdate(second);
  assert.equal(replayed.seq, 3);
  assert.equal(replayed.recovered, true);
  assert.equal((await post(writer, { topic: 'parking', entities: [lot('p3', 0)] })).status, 202);
  assert.equal((await nextUpdate(second)).seq, 4);

  // The topic is a metric label like any built-in one.
  const metrics = await get(`${reader.url}/metrics`, `Bearer ${KEY}`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.text, /citypulse_[a-z_]+\{[^}]*topic="parking"/);
}

test('a topic defined only as a TopicDefinition works end to end on one node', async (t) => {
  const server = await startServer(t, { topics: ['cameras', PARKING], publishKeys: [KEY] });
  await exercise(t, server, server);
});

test('ACL patterns cover a registry topic: a token for park* reads parking only', async (t) => {
  const server = await startServer(t, {
    topics: ['cameras', PARKING],
    publishKeys: [KEY],
    auth: { secret: SECRET },
  });
  const token = await mint({ topics: ['park*'] }, { secret: SECRET });
  const topics = await get(`${server.url}/api/topics`, `Bearer ${token}`);
  assert.equal(topics.status, 200);
  assert.deepEqual(
    (JSON.parse(topics.text) as { topics: { name: string }[] }).topics.map((info) => info.name),
    ['parking'],
  );
  assert.equal((await get(`${server.url}/api/topics`)).status, 401, 'no credential');
  const ws = client(t, `${server.wsUrl}?topics=parking&token=${token}`);
  await ws.opened;
  assert.equal((await ws.next()).type, 'CONNECTED');
  assert.equal(typeof parkingState(await ws.next()).epoch, 'string');
  ws.send({ type: 'SUBSCRIBE', topics: ['cameras'] });
  const refused = await ws.next((m) => m.type === 'ERROR');
  assert.match(JSON.stringify(refused.data), /FORBIDDEN|not allowed|cameras/i);
  assert.equal((await post(server, { topic: 'parking', entities: [lot('p1', 1)] })).status, 202);
  assert.equal((await nextUpdate(ws)).seq, 1);
});

test('the same topic on two nodes over Redis: ingest on one, subscribe and resume on the other', async (t) => {
  if (!(await redisUp(REDIS_URL))) return t.skip(`no Redis at ${REDIS_URL}`);
  const redisKeyPrefix = testPrefix(t);
  const a = await startNode(t, { redisKeyPrefix, topics: ['cameras', PARKING], publishKeys: [KEY] });
  const b = await startNode(t, { redisKeyPrefix, topics: ['cameras', PARKING], publishKeys: [KEY] });
  await exercise(t, a, b);
});

test('the same topic defined only in a config file, on two citypulse serve processes over Redis', async (t) => {
  if (!(await redisUp(REDIS_URL))) return t.skip(`no Redis at ${REDIS_URL}`);
  const dir = await mkdtemp(join(tmpdir(), 'citypulse-config-topic-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { name: _name, ...definition } = PARKING;
  const file = join(dir, 'parking.json');
  await writeFile(
    file,
    JSON.stringify({
      $schema: '../citypulse.schema.json',
      topics: { parking: definition },
      sources: [{ type: 'simulator', topics: ['cameras'], intervalMs: 60_000 }],
    }),
  );
  const prefix = testPrefix(t);
  const args = ['--config', file, '--redis', REDIS_URL, '--redis-prefix', prefix, '--publish-key', KEY];
  const [a, b] = await Promise.all([startCli(t, args), startCli(t, args)]);
  await exercise(t, a, b, ['cameras', 'weather', 'accidents', 'airQuality', 'parking']);
});

test('citypulse serve without --config serves the four city topics and transit', async (t) => {
  const cli = await startCli(t, []);
  const res = await get(`${cli.url}/api/topics`);
  assert.equal(res.status, 200);
  assert.deepEqual(
    (JSON.parse(res.text) as { topics: { name: string }[] }).topics.map((info) => info.name),
    ['cameras', 'weather', 'accidents', 'airQuality', 'transit'],
  );
  // The built-in simulator drives every served topic it knows, the transit fleet included (bounded wait).
  let vehicles = 0;
  for (let i = 0; i < 100 && vehicles === 0; i++) {
    const snapshot = JSON.parse((await get(`${cli.url}/api/snapshot`)).text) as Record<
      string,
      { entities: unknown[] }
    >;
    vehicles = snapshot.transit?.entities.length ?? 0;
    if (vehicles === 0) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(vehicles > 0, 'the simulator fleet fills the transit topic');
});

test('the Redis broker checks an UPDATE published straight to it with its service registry', async (t) => {
  if (!(await redisUp(REDIS_URL))) return t.skip(`no Redis at ${REDIS_URL}`);
  // The service hands the broker its registry; the test then publishes to the broker alone.
  const { broker } = await startRedisService(t, {
    registry: resolveTopicRegistry(['cameras', PARKING]),
  });
  const seq = async (): Promise<number> =>
    Number((await broker.redis.hget(broker.key('parking', 'meta'), 'seq')) ?? 0);
  const update = (freeSpaces: unknown) => ({
    type: 'UPDATE' as const,
    data: { upserts: [{ id: 'p1', ...BASE, ...lot('p1', freeSpaces) }] },
    timestamp: new Date().toISOString(),
  });
  for (const bad of [-1, 1.5, 'many']) {
    await assert.rejects(
      broker.publish('parking', update(bad)),
      (error: unknown) => error instanceof UpdateRejectedError && error.field === 'upserts[0].freeSpaces',
      String(bad),
    );
  }
  assert.equal(await seq(), 0, 'refused: no seq');
  assert.equal((await broker.publish('parking', update(3))).seq, 1);
});
