/**
 * Resume on a different node than the one lost, on the real Redis: the second node has no subscriber of the topic
 * (so it must subscribe, then read history) while publishing goes on; the client gets exactly the missed frames
 * (`recovered: true`) then live ones, and its folded state equals the shared state. Past the history it gets a fresh
 * snapshot from Redis (`recovered: false`); a position of another epoch is never trusted.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { RedisBroker } from '../../src/cluster/redis-broker.js';
import type { ServerMessage } from '../../src/protocol/messages.js';
import type { CityPulseServer } from '../../src/app/create-server.js';
import type { TopicState } from '../../src/protocol/topics.js';
import { TestClient } from '../helpers/test-client.js';
import { StrictFold, camera, comparableState } from '../resume/fold-helpers.js';
import { redisUp, sleep, startNode, testPrefix } from './helpers.js';

const up = await redisUp();
const TOPIC = 'cameras';

function client(t: TestContext, url: string): TestClient {
  const c = new TestClient(url);
  t.after(() => c.ws.terminate());
  return c;
}

async function publishChanges(node: CityPulseServer, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    const data = {
      upserts: [{ ...camera(`cam-${i % 30}`, i), source: 'test' }],
      removes: i % 9 === 8 ? [`cam-${(i + 7) % 30}`] : [],
    };
    await node.service.publish(TOPIC, {
      type: 'UPDATE',
      topic: TOPIC,
      data,
      timestamp: new Date().toISOString(),
    });
  }
}

async function shared(node: CityPulseServer): Promise<TopicState> {
  const all = (await (await fetch(`${node.url}/api/snapshot`)).json()) as Record<string, TopicState>;
  return all[TOPIC] as TopicState;
}

function isTopicFrame(m: ServerMessage): boolean {
  return (m.type === 'UPDATE' || m.type === 'ALERT') && (m as { topic?: string }).topic === TOPIC;
}

async function twoNodes(t: TestContext, historySize?: number): Promise<[CityPulseServer, CityPulseServer]> {
  const prefix = testPrefix(t);
  const options = { redisKeyPrefix: prefix, ...(historySize === undefined ? {} : { historySize }) };
  return [await startNode(t, { ...options, nodeId: 'a' }), await startNode(t, { ...options, nodeId: 'b' })];
}

/** Connects to `node` subscribed to the topic and folds up to the topic's current seq. */
async function foldOn(
  t: TestContext,
  node: CityPulseServer,
  target: number,
): Promise<{ c: TestClient; fold: StrictFold }> {
  const c = client(t, `${node.wsUrl}?topics=${TOPIC}`);
  assert.equal((await c.next()).type, 'CONNECTED');
  const snapshot = await c.next();
  const fold = new StrictFold(TOPIC);
  fold.snapshot((snapshot.data as Record<string, unknown>)[TOPIC]);
  while ((fold.state?.seq ?? 0) < target) fold.apply(await c.next(isTopicFrame));
  return { c, fold };
}

for (const how of ['query', 'message'] as const) {
  test(
    `resume by ${how} on another node while publishing continues: missed frames, then live, state converges`,
    { skip: !up && 'no Redis', timeout: 60_000 },
    async (t) => {
      const [a, b] = await twoNodes(t);
      await publishChanges(a, 0, 10);
      const { c, fold } = await foldOn(t, a, 10);
      c.ws.close();
      await c.closed;
      await publishChanges(b, 10, 300);
      assert.ok(
        !(b.service.broker as RedisBroker).activeTopics().includes(TOPIC),
        'b listens to nothing yet',
      );

      const { epoch, seq } = fold.comparable();
      const c2 = client(t, how === 'query' ? `${b.wsUrl}?resume=${TOPIC}:${epoch}:${seq}` : b.wsUrl);
      assert.equal((await c2.next()).type, 'CONNECTED');
      assert.equal((await c2.next()).type, 'SNAPSHOT');
      if (how === 'message') c2.send({ type: 'resume', topics: { [TOPIC]: { epoch, seq } } });
      // Publishing goes on, from both nodes, while b subscribes and reads history.
      const more = Promise.all([publishChanges(a, 1000, 40), publishChanges(b, 2000, 40)]);
      if (how === 'message') assert.equal((await c2.next()).type, 'SUBSCRIBED');
      let recovered = 0;
      let sawLive = false;
      await more;
      const target = (await shared(a)).seq;
      assert.equal(target, 390);
      while ((fold.state?.seq ?? 0) < target) {
        const frame = await c2.next();
        assert.ok(isTopicFrame(frame), JSON.stringify(frame).slice(0, 200));
        if ((frame as { recovered?: boolean }).recovered === true) {
          assert.ok(!sawLive, 'recovered after live');
          recovered++;
        } else sawLive = true;
        fold.apply(frame);
      }
      assert.ok(recovered >= 300, `recovered ${recovered}`);
      c2.send({ type: 'ping' });
      assert.equal((await c2.next()).type, 'PONG', 'nothing more (no duplicate)');
      assert.deepEqual(fold.comparable(), comparableState(await shared(b)));
    },
  );
}

test(
  'across nodes: past the history a fresh snapshot from Redis; another epoch is never trusted',
  { skip: !up && 'no Redis', timeout: 60_000 },
  async (t) => {
    const [a, b] = await twoNodes(t, 20);
    await publishChanges(a, 0, 5);
    const { c, fold } = await foldOn(t, a, 5);
    c.ws.close();
    await c.closed;
    await publishChanges(a, 5, 200);
    const old = fold.comparable();
    for (const epoch of [old.epoch, 'another-epoch']) {
      const c2 = client(t, `${b.wsUrl}?resume=${TOPIC}:${epoch}:${old.seq}`);
      assert.equal((await c2.next()).type, 'CONNECTED');
      assert.equal((await c2.next()).type, 'SNAPSHOT');
      const snapshot = await c2.next();
      assert.equal(snapshot.type, 'SNAPSHOT');
      assert.equal((snapshot as { topic?: string }).topic, TOPIC);
      assert.equal((snapshot as { recovered?: boolean }).recovered, false);
      assert.equal((snapshot as { seq?: number }).seq, (await shared(a)).seq);
      const fresh = new StrictFold(TOPIC);
      fresh.snapshot(snapshot.data);
      assert.deepEqual(fresh.comparable(), comparableState(await shared(a)));
      await publishChanges(a, 500, 3);
      const target = (await shared(a)).seq;
      while ((fresh.state?.seq ?? 0) < target) fresh.apply(await c2.next(isTopicFrame));
      await sleep(50);
      c2.send({ type: 'ping' });
      assert.equal((await c2.next()).type, 'PONG');
      c2.ws.close();
      await c2.closed;
    }
  },
);
