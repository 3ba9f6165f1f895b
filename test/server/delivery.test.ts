import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { ServerMessageType } from '../../src/protocol/messages.js';
import { TestClient, connect, eventually } from '../helpers/test-client.js';
import { isoNow, startService } from '../helpers/servers.js';

test('500 rapid UPDATEs arrive in order, none lost, seq 1..500', async (t) => {
  const { service, url } = await startService(t);
  const { client } = await connect(url, 'topics=accidents');
  t.after(() => client.close());
  for (let i = 1; i <= 500; i++)
    service.publish('accidents', { type: 'UPDATE', data: { i }, timestamp: isoNow() });
  for (let i = 1; i <= 500; i++) {
    const m = await client.next();
    assert.equal(m.type, ServerMessageType.Update);
    assert.equal((m as { seq?: number }).seq, i);
    assert.deepEqual(m.data, { i });
  }
  // Coalescing: 500 frames published in one turn left in far fewer writes than frames.
  const { writes, framesOut } = service.counters();
  assert.ok(writes < framesOut / 10, `${writes} writes for ${framesOut} frames`);
});

test('200 clients each receive all 100 UPDATEs in order', async (t) => {
  const { service, url } = await startService(t);
  const clients = 200;
  const messages = 100;
  const sockets: WebSocket[] = [];
  const received = new Array<number[]>(clients);
  t.after(() => sockets.forEach((ws) => ws.terminate()));
  await Promise.all(
    Array.from({ length: clients }, (_, k) => {
      received[k] = [];
      const ws = new WebSocket(`${url}?topics=airQuality`);
      sockets.push(ws);
      ws.on('message', (d) => {
        const m = JSON.parse(d.toString()) as { type: string; seq?: number };
        if (m.type === 'UPDATE') received[k]?.push(m.seq ?? -1);
      });
      return new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
    }),
  );
  await eventually(() => service.getTopicSubscribers('airQuality') === clients, 5000);
  for (let i = 1; i <= messages; i++) {
    service.publish('airQuality', { type: 'UPDATE', data: { i, pad: 'x'.repeat(200) }, timestamp: isoNow() });
    if (i % 10 === 0) await new Promise((r) => setImmediate(r));
  }
  await eventually(() => received.every((r) => r.length === messages), 10_000, 'all deliveries');
  const expected = Array.from({ length: messages }, (_, i) => i + 1);
  for (const r of received) assert.deepEqual(r, expected);
});

test('a slow async snapshot provider blocks neither other clients nor the heartbeat, and no live frame overtakes it', async (t) => {
  const { service, url } = await startService(t, { heartbeatIntervalMs: 20, heartbeatTimeoutMs: 2000 });
  let release: (value: unknown) => void = () => {};
  let slow = false;
  service.setSnapshotProvider(() => {
    if (!slow) return { weather: { entities: [], seq: service.position('weather').seq } };
    // Captures the state as of the call (seq now), resolves later.
    const state = { weather: { entities: [{ id: 'w' }], seq: service.position('weather').seq } };
    return new Promise((resolve) => {
      release = () => resolve(state);
    });
  });
  const fast = await connect(url, 'topics=weather');
  t.after(() => fast.client.close());
  service.publish('weather', { type: 'UPDATE', data: 1, timestamp: isoNow() });
  slow = true;
  const waiting = new TestClient(`${url}?topics=weather`);
  t.after(() => waiting.close());
  await waiting.opened;
  const connected = await waiting.next();
  assert.equal(connected.type, ServerMessageType.Connected);
  let pings = 0;
  waiting.ws.on('ping', () => pings++);
  waiting.send({ type: 'ping', id: 'early' });
  // While its snapshot is pending: live messages flow to the other client, and heartbeats go on.
  service.publish('weather', { type: 'UPDATE', data: 2, timestamp: isoNow() });
  service.publish('weather', { type: 'UPDATE', data: 3, timestamp: isoNow() });
  assert.equal((await fast.client.next()).data, 1);
  assert.equal((await fast.client.next()).data, 2);
  assert.equal((await fast.client.next()).data, 3);
  await eventually(() => pings >= 2, 2000, 'heartbeat pings during the pending snapshot');
  assert.equal(waiting.pending().length, 0, 'nothing may precede the snapshot');
  release(undefined);
  const snapshot = await waiting.next();
  assert.equal(snapshot.type, ServerMessageType.Snapshot);
  // A state that names no epoch is sent with the topic's (every snapshot carries its epoch).
  assert.deepEqual(snapshot.data, {
    weather: { entities: [{ id: 'w' }], seq: 1, epoch: service.position('weather').epoch },
  });
  // Frames held meanwhile follow with seq > 1, then the queued ping is answered.
  const after = [await waiting.next(), await waiting.next(), await waiting.next()];
  assert.deepEqual(
    after.map((m) => [m.type, m.data]),
    [
      ['UPDATE', 2],
      ['UPDATE', 3],
      ['PONG', { id: 'early' }],
    ],
  );
});

test('the connect-time snapshot is encoded once per state object', async (t) => {
  const { service, url } = await startService(t);
  let state = { weather: { entities: [{ id: 'a' }], seq: 0 } };
  let calls = 0;
  service.setSnapshotProvider(() => {
    calls++;
    return state;
  });
  const first = await connect(url, 'topics=weather');
  const second = await connect(url, 'topics=weather');
  t.after(() => {
    first.client.close();
    second.client.close();
  });
  assert.equal(calls, 2);
  // Same object: byte-identical frame, including its timestamp.
  assert.deepEqual(second.snapshot, first.snapshot);
  await new Promise((r) => setTimeout(r, 5));
  state = { weather: { entities: [{ id: 'b' }], seq: 0 } };
  const third = await connect(url, 'topics=weather');
  t.after(() => third.client.close());
  assert.deepEqual(third.snapshot.data, {
    weather: { ...state.weather, epoch: service.position('weather').epoch },
  });
});
