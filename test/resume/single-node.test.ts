/**
 * History and resume on one node, against a real server and real `ws` clients: a client that missed 1000 UPDATEs
 * gets exactly those (marked `recovered: true`), then live ones, with no gap and no duplicate, and its folded state
 * equals the server's; past the history it gets a per-topic SNAPSHOT marked `recovered: false`; a position from
 * another epoch (or the future) is never trusted.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { ServerMessage } from '../../src/protocol/messages.js';
import type { CityPulseServer, CityPulseServerOptions } from '../../src/app/create-server.js';
import { startServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/test-client.js';
import { StrictFold, camera, comparableState } from './fold-helpers.js';

const TOPIC = 'cameras';
const KEY = 'resume-test-key-0123456789';

function client(t: TestContext, url: string): TestClient {
  const c = new TestClient(url);
  t.after(() => c.ws.terminate());
  return c;
}

/** Publishes `count` changes of the cameras topic through the aggregator (ids cycle over 40 cameras, some removed). */
function publishChanges(server: CityPulseServer, from: number, count: number): void {
  for (let i = from; i < from + count; i++) {
    const result =
      i % 7 === 6
        ? server.aggregator.ingest(TOPIC, [camera(`cam-${i % 40}`, i)], [`cam-${(i + 13) % 40}`])
        : server.aggregator.ingest(TOPIC, [camera(`cam-${i % 40}`, i)]);
    assert.ok(result.ok);
  }
}

function isTopicFrame(m: ServerMessage): boolean {
  return (m.type === 'UPDATE' || m.type === 'ALERT') && (m as { topic?: string }).topic === TOPIC;
}

/** Connects subscribed to the topic, folds its snapshot and returns the client and the fold. */
async function connectAndFold(
  t: TestContext,
  server: CityPulseServer,
): Promise<{ c: TestClient; fold: StrictFold }> {
  const c = client(t, `${server.wsUrl}?topics=${TOPIC}`);
  assert.equal((await c.next()).type, 'CONNECTED');
  const snapshot = await c.next();
  assert.equal(snapshot.type, 'SNAPSHOT');
  const fold = new StrictFold(TOPIC);
  fold.snapshot((snapshot.data as Record<string, unknown>)[TOPIC]);
  return { c, fold };
}

/** Takes frames until the fold reaches `seq`, asserting each is a topic frame with the given `recovered` marker. */
async function foldUntil(
  c: TestClient,
  fold: StrictFold,
  seq: number,
  recovered: true | undefined,
): Promise<void> {
  while ((fold.state?.seq ?? 0) < seq) {
    const frame = await c.next();
    assert.ok(isTopicFrame(frame), `expected a ${TOPIC} frame, got ${JSON.stringify(frame).slice(0, 200)}`);
    assert.equal((frame as { recovered?: boolean }).recovered, recovered);
    fold.apply(frame);
  }
}

/** Proves nothing else is queued: a ping's PONG is the very next frame. */
async function assertNothingMore(c: TestClient): Promise<void> {
  c.send({ type: 'ping', id: 'end' });
  const frame = await c.next();
  assert.equal(frame.type, 'PONG', `unexpected extra frame ${JSON.stringify(frame).slice(0, 200)}`);
}

async function start(t: TestContext, options: CityPulseServerOptions = {}): Promise<CityPulseServer> {
  return startServer(t, { publishKeys: [KEY], ...options });
}

async function disconnect(c: TestClient): Promise<void> {
  c.ws.close();
  await c.closed;
}

test('resume with ?resume= after 1000 missed UPDATEs: exactly the missed frames, recovered, then live ones', async (t) => {
  const server = await start(t);
  publishChanges(server, 0, 5);
  const { c, fold } = await connectAndFold(t, server);
  publishChanges(server, 5, 3);
  await foldUntil(c, fold, server.service.position(TOPIC).seq, undefined);
  await disconnect(c);

  const before = fold.comparable();
  publishChanges(server, 8, 1000);
  const missedUntil = server.service.position(TOPIC).seq;
  assert.ok(missedUntil >= before.seq + 1000);

  const c2 = client(t, `${server.wsUrl}?resume=${TOPIC}:${before.epoch}:${before.seq}`);
  const connected = await c2.next();
  assert.equal(connected.type, 'CONNECTED');
  assert.deepEqual((connected.data as { subscribed: readonly string[] }).subscribed, [TOPIC]);
  const snapshot = await c2.next();
  assert.equal(snapshot.type, 'SNAPSHOT');
  assert.deepEqual(snapshot.data, {}, 'a resumed topic is not in the initial snapshot');
  await foldUntil(c2, fold, missedUntil, true);

  publishChanges(server, 1008, 25);
  await foldUntil(c2, fold, server.service.position(TOPIC).seq, undefined);
  await assertNothingMore(c2);
  assert.deepEqual(
    fold.seqs,
    Array.from({ length: fold.seqs.length }, (_, i) => (fold.seqs[0] as number) + i),
  );
  assert.deepEqual(fold.comparable(), comparableState(server.aggregator.getTopicSnapshot(TOPIC)));
});

test('resume with a resume message while publishing continues: replay first, then live, no gap, no duplicate', async (t) => {
  // The live publishing below is bounded (LIVE_CHANGES) and history is sized for the missed frames plus all of
  // it, so however late the server reads the resume (a loaded machine), history still covers the position.
  const MISSED_CHANGES = 1000;
  const LIVE_CHANGES = 300;
  const HISTORY = 4000;
  const server = await start(t, { historySize: HISTORY });
  publishChanges(server, 0, 10);
  const { c, fold } = await connectAndFold(t, server);
  await foldUntil(c, fold, server.service.position(TOPIC).seq, undefined);
  await disconnect(c);
  publishChanges(server, 10, MISSED_CHANGES);

  const c2 = client(t, server.wsUrl);
  assert.equal((await c2.next()).type, 'CONNECTED');
  assert.equal((await c2.next()).type, 'SNAPSHOT');
  const position = fold.comparable();
  c2.send({ type: 'resume', topics: { [TOPIC]: { epoch: position.epoch, seq: position.seq } } });
  // Keep publishing while the resume is in flight: the server handles it before, between or after these.
  let n = 5000;
  let live: NodeJS.Timeout | undefined;
  const liveDone = new Promise<void>((resolve) => {
    live = setInterval(() => {
      publishChanges(server, n, 3);
      n += 3;
      if (n >= 5000 + LIVE_CHANGES) {
        clearInterval(live);
        resolve();
      }
    }, 1);
  });
  t.after(() => clearInterval(live));
  assert.equal((await c2.next()).type, 'SUBSCRIBED');
  let recovered = 0;
  let sawLive = false;
  const take = async (): Promise<void> => {
    const frame = await c2.next();
    assert.ok(isTopicFrame(frame), `unexpected ${JSON.stringify(frame).slice(0, 200)}`);
    if ((frame as { recovered?: boolean }).recovered === true) {
      assert.ok(!sawLive, 'a recovered frame after a live one');
      recovered++;
    } else {
      sawLive = true;
    }
    fold.apply(frame);
  };
  // Every frame up to the end of the live publishing: recovered ones first, then live ones.
  await liveDone;
  const target = server.service.position(TOPIC).seq;
  assert.ok(
    target - position.seq < HISTORY,
    `history (${HISTORY}) covers the ${target - position.seq} frames`,
  );
  while ((fold.state?.seq ?? 0) < target) await take();
  await assertNothingMore(c2);
  assert.ok(recovered >= MISSED_CHANGES, `recovered ${recovered}`);
  assert.deepEqual(fold.comparable(), comparableState(server.aggregator.getTopicSnapshot(TOPIC)));
});

test('past the history (historySize 50) a resume gets a fresh per-topic SNAPSHOT marked recovered: false', async (t) => {
  const server = await start(t, { historySize: 50 });
  publishChanges(server, 0, 5);
  const { c, fold } = await connectAndFold(t, server);
  await disconnect(c);
  const old = fold.comparable();
  publishChanges(server, 5, 200);

  for (const how of ['query', 'message'] as const) {
    const c2 = client(
      t,
      how === 'query' ? `${server.wsUrl}?resume=${TOPIC}:${old.epoch}:${old.seq}` : server.wsUrl,
    );
    assert.equal((await c2.next()).type, 'CONNECTED');
    assert.equal((await c2.next()).type, 'SNAPSHOT');
    if (how === 'message') {
      c2.send({ type: 'resume', topics: { [TOPIC]: { epoch: old.epoch, seq: old.seq } } });
      assert.equal((await c2.next()).type, 'SUBSCRIBED');
    }
    const snapshot = await c2.next();
    assert.equal(snapshot.type, 'SNAPSHOT');
    assert.equal((snapshot as { topic?: string }).topic, TOPIC);
    assert.equal((snapshot as { recovered?: boolean }).recovered, false);
    assert.equal((snapshot as { seq?: number }).seq, server.service.position(TOPIC).seq);
    const fresh = new StrictFold(TOPIC);
    fresh.snapshot(snapshot.data);
    publishChanges(server, 1000, 5);
    await foldUntil(c2, fresh, server.service.position(TOPIC).seq, undefined);
    await assertNothingMore(c2);
    assert.deepEqual(fresh.comparable(), comparableState(server.aggregator.getTopicSnapshot(TOPIC)));
  }
});

test('a position from another epoch or from the future is never trusted: fresh SNAPSHOT, recovered: false', async (t) => {
  const server = await start(t);
  publishChanges(server, 0, 20);
  const { epoch, seq } = server.service.position(TOPIC);
  const cases = [
    { epoch: 'some-old-epoch', seq }, // same seq, another life
    { epoch: 'some-old-epoch', seq: 3 },
    { epoch, seq: seq + 5 }, // the future
  ];
  for (const position of cases) {
    const c = client(t, `${server.wsUrl}?resume=${TOPIC}:${position.epoch}:${position.seq}`);
    assert.equal((await c.next()).type, 'CONNECTED');
    assert.equal((await c.next()).type, 'SNAPSHOT');
    const snapshot = await c.next();
    assert.equal(snapshot.type, 'SNAPSHOT', JSON.stringify(position));
    assert.equal((snapshot as { recovered?: boolean }).recovered, false);
    assert.equal((snapshot as { epoch?: string }).epoch, epoch);
    assert.equal((snapshot as { seq?: number }).seq, seq);
    await assertNothingMore(c);
  }
  // The current position itself is covered: nothing to replay, nothing else sent, live frames follow.
  const c = client(t, `${server.wsUrl}?resume=${TOPIC}:${epoch}:${seq}`);
  assert.equal((await c.next()).type, 'CONNECTED');
  assert.equal((await c.next()).type, 'SNAPSHOT');
  publishChanges(server, 100, 1);
  const frame = await c.next();
  assert.equal(frame.type, 'UPDATE');
  assert.equal((frame as { seq?: number }).seq, seq + 1);
  assert.equal((frame as { recovered?: boolean }).recovered, undefined);
});

test('history older than historyTtlMs is not replayed', async (t) => {
  let clock = Date.parse('2026-03-01T12:00:00.000Z');
  const server = await start(t, { historyTtlMs: 60_000, now: () => clock });
  publishChanges(server, 0, 5);
  const old = server.service.position(TOPIC);
  publishChanges(server, 5, 5);
  clock += 61_000;
  publishChanges(server, 10, 5);
  const c = client(t, `${server.wsUrl}?resume=${TOPIC}:${old.epoch}:${old.seq}`);
  assert.equal((await c.next()).type, 'CONNECTED');
  assert.equal((await c.next()).type, 'SNAPSHOT');
  const snapshot = await c.next();
  assert.equal(snapshot.type, 'SNAPSHOT');
  assert.equal((snapshot as { recovered?: boolean }).recovered, false);
  // A position inside the fresh part of history is still replayed.
  const recent = server.service.position(TOPIC).seq - 3;
  const c2 = client(t, `${server.wsUrl}?resume=${TOPIC}:${old.epoch}:${recent}`);
  assert.equal((await c2.next()).type, 'CONNECTED');
  assert.equal((await c2.next()).type, 'SNAPSHOT');
  for (let i = 1; i <= 3; i++) {
    const frame = await c2.next();
    assert.equal((frame as { seq?: number }).seq, recent + i);
    assert.equal((frame as { recovered?: boolean }).recovered, true);
  }
});
