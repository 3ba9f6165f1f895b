/**
 * Node failure: three node processes on the real Redis; one is SIGKILLed mid-stream; its clients reconnect to the
 * others with `?resume=` and lose nothing (no gap, no duplicate, no fallback snapshot).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_TOPICS } from '../../src/protocol/messages.js';
import {
  KEY,
  REDIS_URL,
  RecordingClient,
  assertRange,
  redisClient,
  redisSeq,
  redisUp,
  sleep,
  startNodeProcess,
  testPrefix,
  waitFor,
  type NodeProcess,
} from './helpers.js';

const up = await redisUp();

async function publish(node: NodeProcess, topic: string, n: number): Promise<void> {
  const res = await fetch(`${node.url}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ topic, type: 'UPDATE', data: { upserts: [], removes: [`n${n}`] } }),
  });
  assert.equal(res.status, 202);
}

test(
  'a node SIGKILLed mid-stream: its clients resume on the others and lose nothing',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 90_000 },
  async (t) => {
    const prefix = testPrefix(t);
    const redis = redisClient(t);
    const nodes = await Promise.all(
      [0, 1, 2].map((i) =>
        startNodeProcess(t, [
          '--redis',
          REDIS_URL,
          '--redis-prefix',
          prefix,
          '--source',
          'none',
          '--publish-key',
          KEY,
          '--node-id',
          `n${i}`,
        ]),
      ),
    );
    const [n0, n1, victim] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    const topics = [...DEFAULT_TOPICS];
    const clients = Array.from(
      { length: 60 },
      (_, i) => new RecordingClient([topics[i % 4] as string, topics[(i + 1) % 4] as string]),
    );
    t.after(() => clients.forEach((c) => c.close()));
    await Promise.all(clients.map((c, i) => c.connect((nodes[i % 3] as NodeProcess).wsUrl)));

    // The victim's clients reconnect to a survivor, resuming from what they have.
    // They come back after 10 more rounds were published, so those must be replayed.
    let openGate: () => void = () => {};
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const reconnected: Promise<void>[] = [];
    clients.forEach((client, i) => {
      if (i % 3 !== 2) return;
      reconnected.push(
        client.closed().then(async () => {
          await gate;
          await sleep(i % 10);
          await client.connect((i % 2 === 0 ? n0 : n1).wsUrl);
        }),
      );
    });

    const rounds = 150;
    for (let n = 1; n <= rounds; n++) {
      await Promise.all(topics.map((topic, k) => publish((n + k) % 2 === 0 ? n0 : n1, topic, n)));
      if (n === 50) victim.child.kill('SIGKILL');
      if (n === 60) openGate();
    }
    await victim.exited;
    await Promise.all(reconnected);
    for (const topic of topics)
      await waitFor(`${topic} published`, async () => (await redisSeq(redis, prefix, topic)) === rounds);
    await waitFor(
      'every client caught up',
      () => clients.every((c) => c.topics.every((topic) => c.seqOf(topic) >= rounds)),
      30_000,
    );
    await sleep(200);

    let recovered = 0;
    for (const [i, client] of clients.entries()) {
      assert.deepEqual(client.errors, [], `client ${i}`);
      assert.equal(client.snapshots, 0, `client ${i} needed no fallback snapshot`);
      assert.equal(client.connections, i % 3 === 2 ? 2 : 1, `client ${i} connections`);
      for (const topic of client.topics)
        assertRange(client.seqs.get(topic) ?? [], 1, rounds, `client ${i} ${topic}`);
      recovered += client.frames.filter((f) => f.recovered === true).length;
    }
    // The victim's clients did miss frames while reconnecting, and got them back from history.
    assert.ok(recovered > 0, 'some frames were replayed');
  },
);
