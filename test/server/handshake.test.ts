import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServerMessageType, type ServerMessage } from '../../src/protocol/messages.js';
import type { TestClient } from '../helpers/test-client.js';
import { connect, eventually } from '../helpers/test-client.js';
import { isoNow, startService } from '../helpers/servers.js';

const STATE = {
  cameras: { entities: [{ id: 'c1' }], seq: 0 },
  weather: { entities: [{ id: 'w1' }], seq: 0 },
  accidents: { entities: [], seq: 0 },
  airQuality: { entities: [{ id: 'a1' }], seq: 0 },
};

/** `STATE` as the connect-time SNAPSHOT sends it: a state that names no epoch gets its topic's. */
function withEpoch(state: Record<string, object>, epoch: string): Record<string, object> {
  return Object.fromEntries(Object.entries(state).map(([topic, s]) => [topic, { ...s, epoch }]));
}

function dataOf(m: ServerMessage): Record<string, unknown> {
  return m.data as Record<string, unknown>;
}

test('CONNECTED is the first frame and a full SNAPSHOT the second', async (t) => {
  const { service, url } = await startService(t, { heartbeatIntervalMs: 1234, heartbeatTimeoutMs: 5678 });
  service.setSnapshotProvider(() => STATE);
  const { client, connected, snapshot } = await connect(url);
  t.after(() => client.close());
  assert.equal(connected.type, ServerMessageType.Connected);
  const data = dataOf(connected);
  assert.equal(typeof data.clientId, 'string');
  assert.equal(data.protocol, 1);
  assert.deepEqual(data.topics, ['cameras', 'weather', 'accidents', 'airQuality']);
  assert.deepEqual(data.subscribed, []);
  assert.deepEqual(data.heartbeat, { intervalMs: 1234, timeoutMs: 5678 });
  assert.ok(!Number.isNaN(Date.parse(connected.timestamp)));
  assert.equal(snapshot.type, ServerMessageType.Snapshot);
  assert.equal((snapshot as { topic?: string }).topic, undefined);
  assert.deepEqual(snapshot.data, withEpoch(STATE, service.position('weather').epoch));
});

test('?topics= subscribes at once and scopes the snapshot', async (t) => {
  const { service, url } = await startService(t);
  service.setSnapshotProvider(() => STATE);
  const { client, connected, snapshot } = await connect(url, 'topics=weather,airQuality');
  t.after(() => client.close());
  assert.deepEqual(dataOf(connected).subscribed, ['weather', 'airQuality']);
  assert.deepEqual(
    snapshot.data,
    withEpoch({ weather: STATE.weather, airQuality: STATE.airQuality }, service.position('weather').epoch),
  );
  assert.equal(service.getTopicSubscribers('weather'), 1);
  assert.equal(service.getTopicSubscribers('airQuality'), 1);
  assert.equal(service.getTopicSubscribers('cameras'), 0);
});

test('subscribe answers SUBSCRIBED then one SNAPSHOT per newly subscribed topic; unsubscribe answers UNSUBSCRIBED', async (t) => {
  const { service, url } = await startService(t);
  service.setSnapshotProvider(() => STATE);
  service.publish('weather', { type: 'UPDATE', data: { n: 1 }, timestamp: isoNow() });
  const { client } = await connect(url, 'topics=cameras');
  t.after(() => client.close());

  client.send({ type: 'subscribe', topics: ['cameras', 'weather'] });
  const subscribed = await client.next();
  assert.equal(subscribed.type, ServerMessageType.Subscribed);
  assert.deepEqual(dataOf(subscribed).topics, ['cameras', 'weather']);
  const perTopic = await client.next();
  assert.equal(perTopic.type, ServerMessageType.Snapshot);
  assert.equal((perTopic as { topic?: string }).topic, 'weather');
  // The state says it reflects seq 0, but the topic was at 1 when the snapshot was taken and that UPDATE (published
  // before this client asked) changed no state the provider knows of: the snapshot stands for position 1.
  assert.deepEqual(perTopic.data, { ...STATE.weather, seq: 1 });
  assert.equal((perTopic as { seq?: number }).seq, 1);
  assert.equal((perTopic as { epoch?: string }).epoch, service.epoch);

  client.send({ type: 'PING', id: 'after' });
  const pong = await client.next();
  assert.equal(pong.type, ServerMessageType.Pong, 'no second snapshot for the already-subscribed topic');

  client.send({ type: 'unsubscribe', topics: ['weather'] });
  const unsubscribed = await client.next();
  assert.equal(unsubscribed.type, ServerMessageType.Unsubscribed);
  assert.deepEqual(dataOf(unsubscribed).topics, ['weather']);
  assert.equal(service.getTopicSubscribers('weather'), 0);
  assert.equal(service.getTopicSubscribers('cameras'), 1);
});

test("topic messages reach exactly that topic's subscribers; broadcast reaches everyone", async (t) => {
  const { service, url } = await startService(t);
  service.setSnapshotProvider(() => STATE);
  const weather = await connect(url, 'topics=weather');
  const accidents = await connect(url, 'topics=accidents');
  const both = await connect(url, 'topics=weather,accidents');
  const none = await connect(url);
  const clients = [weather, accidents, both, none].map((c) => c.client);
  t.after(() => clients.forEach((c) => c.close()));
  assert.equal(service.getClientCount(), 4);
  assert.equal(service.getTopicSubscribers('weather'), 2);
  assert.equal(service.getTopicSubscribers('accidents'), 2);

  for (let i = 1; i <= 3; i++)
    service.broadcastToTopic('weather', { type: 'UPDATE', data: { i }, timestamp: isoNow() });
  for (let i = 1; i <= 2; i++)
    service.broadcastToTopic('accidents', { type: 'ALERT', data: { i }, timestamp: isoNow() });
  service.broadcast({ type: 'ALERT', data: { everyone: true }, timestamp: isoNow() });

  const take = async (c: TestClient, n: number): Promise<ServerMessage[]> => {
    const out: ServerMessage[] = [];
    for (let i = 0; i < n; i++) out.push(await c.next());
    return out;
  };
  const w = await take(weather.client, 4);
  assert.deepEqual(
    w.map((m) => [m.type, (m as { topic?: string }).topic, (m as { seq?: number }).seq]),
    [
      ['UPDATE', 'weather', 1],
      ['UPDATE', 'weather', 2],
      ['UPDATE', 'weather', 3],
      ['ALERT', undefined, undefined],
    ],
  );
  const a = await take(accidents.client, 3);
  assert.deepEqual(
    a.map((m) => [m.type, (m as { seq?: number }).seq]),
    [
      ['ALERT', 1],
      ['ALERT', 2],
      ['ALERT', undefined],
    ],
  );
  const b = await take(both.client, 6);
  assert.equal(b.filter((m) => (m as { topic?: string }).topic === 'weather').length, 3);
  assert.equal(b.filter((m) => (m as { topic?: string }).topic === 'accidents').length, 2);
  const n = await take(none.client, 1);
  assert.deepEqual(n[0]?.data, { everyone: true });

  // Nothing more arrives: a ping round-trip proves the queues are empty.
  for (const c of clients) {
    c.send({ type: 'ping', id: 7 });
    const pong = await c.next();
    assert.equal(pong.type, 'PONG');
    assert.deepEqual(pong.data, { id: 7 });
  }
});

test("every UPDATE/ALERT carries the topic's seq and epoch; a published SNAPSHOT carries the current seq", async (t) => {
  const { service, url } = await startService(t, { epoch: 'e-test' });
  const { client } = await connect(url, 'topics=weather,cameras');
  t.after(() => client.close());
  const p1 = service.publish('weather', { type: 'UPDATE', data: 1, timestamp: isoNow() });
  const p2 = service.publish('cameras', { type: 'UPDATE', data: 2, timestamp: isoNow() });
  const p3 = service.publish('weather', { type: 'ALERT', data: 3, timestamp: isoNow() });
  service.publish('weather', { type: 'SNAPSHOT', data: { entities: [] }, timestamp: isoNow() });
  assert.deepEqual(
    [p1, p2, p3],
    [
      { epoch: 'e-test', seq: 1 },
      { epoch: 'e-test', seq: 1 },
      { epoch: 'e-test', seq: 2 },
    ],
  );
  const frames = [await client.next(), await client.next(), await client.next(), await client.next()];
  assert.deepEqual(
    frames.map((m) => [
      m.type,
      (m as { topic?: string }).topic,
      (m as { seq?: number }).seq,
      (m as { epoch?: string }).epoch,
    ]),
    [
      ['UPDATE', 'weather', 1, 'e-test'],
      ['UPDATE', 'cameras', 1, 'e-test'],
      ['ALERT', 'weather', 2, 'e-test'],
      ['SNAPSHOT', 'weather', 2, 'e-test'],
    ],
  );
  assert.throws(() => service.publish('nope', { type: 'UPDATE', data: 1, timestamp: isoNow() }), {
    code: 'ERR_UNKNOWN_TOPIC',
  });
});

test('counts drop after a clean close and after an abrupt drop', async (t) => {
  const { service, url } = await startService(t);
  const a = await connect(url, 'topics=weather');
  const b = await connect(url, 'topics=weather,cameras');
  assert.equal(service.getClientCount(), 2);
  a.client.ws.close(1000);
  await eventually(() => service.getClientCount() === 1, 2000, 'clean close counted');
  assert.equal(service.getTopicSubscribers('weather'), 1);
  b.client.ws.terminate();
  await eventually(() => service.getClientCount() === 0, 2000, 'abrupt drop counted');
  assert.equal(service.getTopicSubscribers('weather'), 0);
  assert.equal(service.getTopicSubscribers('cameras'), 0);
});
