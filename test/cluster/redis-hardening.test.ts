/**
 * Redis failures an attack run found, on a throwaway `redis-server` of the test's own (never the shared one):
 * - a subscription made while Redis is down comes alive when it is back (with and without its data): the client
 *   gets a fresh snapshot, then every frame published after it;
 * - a frozen Redis (SIGSTOP past the command timeout): readiness reports it, publishes answer 503 within the
 *   deadline (and are not applied later), a joining client gets SNAPSHOT_UNAVAILABLE at once and its snapshot
 *   once Redis answers again;
 * - Redis restarted empty, ALERTs published at once: every acknowledged one reaches a subscriber on each node, in
 *   order, exactly once (repeated, to make a race show).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { CityPulseServer } from '../../src/app/create-server.js';
import {
  KEY,
  RecordingClient,
  redisServerInstalled,
  sleep,
  startNode,
  ThrowawayRedis,
  type Frame,
  waitFor,
} from './helpers.js';

const hasRedisServer = await redisServerInstalled();
const skip = !hasRedisServer && 'no redis-server binary';

/** Two nodes on `redis` with shrunk deadlines. */
async function twoNodes(t: TestContext, redis: ThrowawayRedis, name: string): Promise<CityPulseServer[]> {
  const nodes: CityPulseServer[] = [];
  for (let i = 0; i < 2; i++) {
    nodes.push(
      await startNode(t, {
        redisUrl: redis.url,
        redisKeyPrefix: `citypulse-test:${name}:`,
        nodeId: `${name}${i}`,
        redisCommandTimeoutMs: 400,
        redisHealthIntervalMs: 100,
        snapshotRetryMs: 200,
      }),
    );
  }
  return nodes;
}

interface Ack {
  readonly status: number;
  readonly seq?: number;
  readonly epoch?: string;
}

/** POST /api/publish; a hang fails the test (bounded by an abort). */
async function httpPublish(node: CityPulseServer, topic: string, type: string, data: unknown): Promise<Ack> {
  const res = await fetch(`${node.url}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ topic, type, data }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json()) as { seq?: number; epoch?: string };
  return { status: res.status, seq: body.seq, epoch: body.epoch };
}

async function readyz(node: CityPulseServer): Promise<{ status: number; redis?: string; reason?: string }> {
  const res = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(15_000) });
  const body = (await res.json()) as { redis?: string; reason?: string };
  return { status: res.status, redis: body.redis, reason: body.reason };
}

async function allReady(nodes: readonly CityPulseServer[], status: number): Promise<boolean> {
  for (const node of nodes) if ((await readyz(node)).status !== status) return false;
  return true;
}

const unavailable = (c: RecordingClient, topic: string): boolean =>
  c.errors.some((e) => e.includes('SNAPSHOT_UNAVAILABLE') && e.includes(`"${topic}"`));
/** The client's errors other than the SNAPSHOT_UNAVAILABLE it was told. */
const otherErrors = (c: RecordingClient): string[] =>
  c.errors.filter((e) => !e.includes('SNAPSHOT_UNAVAILABLE'));

/**
 * Asserts that `client` got a per-topic SNAPSHOT of `topic` (`recovered: false`, epoch `epoch`, or none when the
 * topic had no frame yet) and then exactly the frames after its seq, up to `last`.
 */
function assertSnapshotThenRest(
  client: RecordingClient,
  topic: string,
  epoch: string,
  last: number,
  what: string,
): void {
  let at = client.frames.length - 1;
  while (at >= 0 && !(client.frames[at]?.type === 'SNAPSHOT' && client.frames[at]?.topic === topic)) at--;
  assert.ok(at >= 0, `${what}: a per-topic SNAPSHOT of ${topic}`);
  const snapshot = client.frames[at] as Frame;
  assert.equal(snapshot.recovered, false, `${what}: the snapshot says recovered:false`);
  assert.ok(
    snapshot.epoch === undefined || snapshot.epoch === epoch,
    `${what}: the snapshot is of the current epoch (or of none yet), got ${snapshot.epoch}`,
  );
  const from = (snapshot.seq ?? 0) + 1;
  const after = client.frames
    .slice(at + 1)
    .filter((f) => f.topic === topic && (f.type === 'UPDATE' || f.type === 'ALERT'))
    .map((f) => f.seq);
  assert.deepEqual(
    after,
    Array.from({ length: last - from + 1 }, (_, k) => from + k),
    `${what}: every frame after the snapshot (seq ${from - 1}), once, in order`,
  );
}

for (const keepData of [false, true]) {
  test(
    `item 5: a subscription made while Redis is down comes alive when Redis is back ${keepData ? 'with' : 'without'} its data`,
    { skip, timeout: 90_000 },
    async (t) => {
      const redis = await ThrowawayRedis.start(t);
      const [a, b] = (await twoNodes(t, redis, keepData ? 'down-kept' : 'down-lost')) as [
        CityPulseServer,
        CityPulseServer,
      ];
      for (let n = 1; n <= 10; n++)
        assert.equal((await httpPublish(a, 'weather', 'ALERT', { n })).status, 202, `warm-up ${n}`);

      if (keepData) await redis.stopKeepingData();
      else await redis.kill();
      await waitFor('both nodes not ready', () => allReady([a, b], 503));

      // One client asks at connect time, one with a subscribe frame; both during the outage, both on node A.
      const atConnect = new RecordingClient(['weather']);
      const bySubscribe = new RecordingClient(['cameras', 'weather'], ['cameras']);
      t.after(() => [atConnect, bySubscribe].forEach((c) => c.close()));
      await atConnect.connect(a.wsUrl);
      await bySubscribe.connect(a.wsUrl);
      bySubscribe.ws?.send(JSON.stringify({ type: 'subscribe', topics: ['weather'] }));
      await waitFor(
        'both told SNAPSHOT_UNAVAILABLE for weather',
        () => unavailable(atConnect, 'weather') && unavailable(bySubscribe, 'weather'),
      );
      assert.equal(a.service.getTopicSubscribers('weather'), 2, 'the subscriptions stand');

      await redis.restart();
      await waitFor('both nodes ready again', () => allReady([a, b], 200), 30_000);
      // Published through the other node, at once (the snapshot may come before, between or after them).
      const acks: Ack[] = [];
      for (let n = 1; n <= 20; n++) acks.push(await httpPublish(b, 'weather', 'ALERT', { n: 100 + n }));
      assert.deepEqual(
        acks.map((ack) => ack.status),
        Array.from({ length: 20 }, () => 202),
        'every publish after the outage acknowledged',
      );
      const last = acks[19] as Ack;
      assert.equal(last.seq, keepData ? 30 : 20, 'the stream went on (data kept) or began again (data lost)');
      for (const [name, client] of Object.entries({ atConnect, bySubscribe })) {
        await waitFor(`${name} reached the last frame`, () => client.seqOf('weather') === last.seq);
        assert.deepEqual(otherErrors(client), [], name);
        assertSnapshotThenRest(client, 'weather', last.epoch as string, last.seq as number, name);
      }
      assert.equal(a.service.getTopicSubscribers('weather'), 2, 'node A counts both subscribers');
      assert.equal(b.service.getTopicSubscribers('weather'), 0, 'node B counts none');
    },
  );
}

test(
  'item 8: a frozen Redis is reported by /readyz, publishes answer 503 in time, a joining client gets its snapshot later',
  { skip, timeout: 90_000 },
  async (t) => {
    const redis = await ThrowawayRedis.start(t);
    const [a, b] = (await twoNodes(t, redis, 'frozen')) as [CityPulseServer, CityPulseServer];
    const early = new RecordingClient(['weather']);
    t.after(() => early.close());
    await early.connect(a.wsUrl);
    for (let n = 1; n <= 5; n++)
      assert.equal(
        (await httpPublish(a, 'weather', 'UPDATE', { removes: [`n${n}`] })).status,
        202,
        `before ${n}`,
      );
    await waitFor('early client has 5', () => early.seqOf('weather') === 5);
    redis.freeze();
    t.after(() => {
      console.error('after thaw');
      redis.thaw();
    }); // never leave it stopped
    await waitFor('both nodes report the stalled Redis', async () => {
      for (const node of [a, b]) {
        const r = await readyz(node);
        if (r.status !== 503 || r.redis !== 'stalled' || !(r.reason ?? '').includes('stalled')) return false;
      }
      return true;
    });
    // Publishes are answered (503), not left hanging; the abort in httpPublish fails the test on a hang.
    const refused = await Promise.all(
      [1, 2, 3].map((n) => httpPublish(n % 2 ? a : b, 'weather', 'ALERT', { n })),
    );
    assert.deepEqual(
      refused.map((r) => r.status),
      [503, 503, 503],
      'publishes refused while frozen',
    );
    const joiner = new RecordingClient(['weather']);
    t.after(() => joiner.close());
    await joiner.connect(b.wsUrl);
    await waitFor('the joining client is told SNAPSHOT_UNAVAILABLE', () => unavailable(joiner, 'weather'));
    assert.equal(b.service.getTopicSubscribers('weather'), 1, 'its subscription stands');
    redis.thaw();
    await waitFor('both nodes ready again', () => allReady([a, b], 200), 30_000);
    await waitFor('the joining client got its snapshot', () =>
      joiner.frames.some((f) => f.type === 'SNAPSHOT' && f.topic === 'weather'),
    );
    for (let n = 6; n <= 15; n++)
      assert.equal(
        (await httpPublish(b, 'weather', 'UPDATE', { removes: [`n${n}`] })).status,
        202,
        `after ${n}`,
      );
    await waitFor(
      'both clients reached seq 15',
      () => early.seqOf('weather') === 15 && joiner.seqOf('weather') === 15,
    );
    // The refused publishes were not applied once Redis resumed: the stream went 5 -> 6..15, nothing between.
    assert.deepEqual(
      early.seqs.get('weather'),
      Array.from({ length: 15 }, (_, k) => k + 1),
    );
    assert.deepEqual(early.errors, [], 'the early client saw no error');
    assert.deepEqual(otherErrors(joiner), [], 'the joiner saw no other error');
    assertSnapshotThenRest(joiner, 'weather', early.position.get('weather')?.epoch ?? '', 15, 'joiner');
  },
);

test(
  'item 10: after Redis restarted empty, every acknowledged ALERT reaches a subscriber on each node, in order, once',
  { skip, timeout: 120_000 },
  async (t) => {
    const redis = await ThrowawayRedis.start(t);
    const nodes = (await twoNodes(t, redis, 'epoch')) as [CityPulseServer, CityPulseServer];
    const clients = nodes.map(() => new RecordingClient(['accidents']));
    t.after(() => clients.forEach((c) => c.close()));
    await Promise.all(clients.map((c, i) => c.connect((nodes[i] as CityPulseServer).wsUrl)));
    for (let n = 1; n <= 3; n++)
      assert.equal((await httpPublish(nodes[0], 'accidents', 'ALERT', { n })).status, 202, `warm-up ${n}`);

    const rounds = 4;
    const perRound = 5;
    for (let round = 1; round <= rounds; round++) {
      await redis.kill();
      await redis.restart();
      // At once, alternating nodes, without waiting for readiness: only what was acknowledged must arrive.
      const acked: { seq: number; epoch: string; id: string }[] = [];
      for (let attempt = 0; acked.length < perRound && attempt < 2000; attempt++) {
        const id = `r${round}a${attempt}`;
        const ack = await httpPublish(nodes[attempt % 2] as CityPulseServer, 'accidents', 'ALERT', { id });
        if (ack.status === 202) acked.push({ seq: ack.seq as number, epoch: ack.epoch as string, id });
        else await sleep(5);
      }
      assert.equal(acked.length, perRound, `round ${round}: ${perRound} ALERTs acknowledged`);
      const epoch = (acked[0] as { epoch: string }).epoch;
      assert.ok(
        acked.every((a) => a.epoch === epoch),
        `round ${round}: one epoch`,
      );
      for (const [i, client] of clients.entries()) {
        const alerts = (): Frame[] => client.frames.filter((f) => f.type === 'ALERT' && f.epoch === epoch);
        await waitFor(`round ${round}: client on node ${i} got every acknowledged ALERT`, () =>
          acked.every((a) => alerts().some((f) => (f.data as { id?: string }).id === a.id)),
        );
        assert.deepEqual(
          alerts().map((f) => `${f.seq}:${(f.data as { id: string }).id}`),
          acked.map((a) => `${a.seq}:${a.id}`),
          `round ${round}, node ${i}: in order, exactly once`,
        );
        assert.deepEqual(client.errors, [], `round ${round}, node ${i}`);
      }
    }
  },
);
