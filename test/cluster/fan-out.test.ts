/**
 * Three nodes on the real Redis, 300 clients spread across them with mixed subscriptions, publishes from every node:
 * every client gets exactly its topics' messages, in seq order, none lost, none duplicated; nodes subscribe only to
 * the channels their clients need; stats sum across the cluster.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_TOPICS } from '../../src/protocol/messages.js';
import type { RedisBroker } from '../../src/cluster/redis-broker.js';
import type { CityPulseServer } from '../../src/app/create-server.js';
import {
  KEY,
  RecordingClient,
  assertRange,
  redisClient,
  redisSeq,
  redisUp,
  startNode,
  testPrefix,
  waitFor,
} from './helpers.js';

const up = await redisUp();
const PER_TOPIC = 120;

test(
  '3 nodes, 300 clients, mixed subscriptions: exactly their topics, in order, none lost, none duplicated',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 60_000 },
  async (t) => {
    const prefix = testPrefix(t);
    const redis = redisClient(t);
    const nodes: CityPulseServer[] = [];
    for (let i = 0; i < 3; i++)
      nodes.push(
        await startNode(t, { redisKeyPrefix: prefix, nodeId: `node-${i}`, clusterStatsIntervalMs: 200 }),
      );
    const topics = [...DEFAULT_TOPICS];
    // Node 2's clients never take `airQuality`: that node must not subscribe to its channel.
    const clients: { client: RecordingClient; node: number }[] = [];
    for (let i = 0; i < 300; i++) {
      const node = i % 3;
      const mask = (i % 15) + 1;
      let mine = topics.filter((_, k) => (mask & (1 << k)) !== 0);
      if (node === 2) mine = mine.filter((topic) => topic !== 'airQuality');
      if (mine.length === 0) mine = ['cameras'];
      clients.push({ client: new RecordingClient(mine), node });
    }
    t.after(() => clients.forEach(({ client }) => client.close()));
    for (let i = 0; i < clients.length; i += 50) {
      await Promise.all(
        clients
          .slice(i, i + 50)
          .map(({ client, node }) => client.connect((nodes[node] as CityPulseServer).wsUrl)),
      );
    }

    // Publish from every node at once, through the service (aggregator path) and the HTTP API.
    const jobs: Promise<unknown>[] = [];
    for (let n = 0; n < PER_TOPIC; n++) {
      for (const [k, topic] of topics.entries()) {
        const node = nodes[(n + k) % 3] as CityPulseServer;
        const data = { n, topic };
        if (n % 4 === 0) {
          jobs.push(
            fetch(`${node.url}/api/publish`, {
              method: 'POST',
              headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
              // An UPDATE through the API must be a valid change (a remove of an unknown id changes nothing).
              body: JSON.stringify(
                n % 8 === 0
                  ? { topic, type: 'ALERT', data }
                  : { topic, type: 'UPDATE', data: { upserts: [], removes: [`${topic}-${n}`] } },
              ),
            }).then((res) => assert.equal(res.status, 202)),
          );
        } else {
          jobs.push(
            Promise.resolve(
              node.service.publish(topic, {
                type: 'UPDATE',
                topic,
                data,
                timestamp: new Date().toISOString(),
              }),
            ),
          );
        }
      }
    }
    await Promise.all(jobs);
    for (const topic of topics)
      await waitFor(`${topic} published`, async () => (await redisSeq(redis, prefix, topic)) === PER_TOPIC);

    await waitFor(
      'every client caught up',
      () => clients.every(({ client }) => client.topics.every((topic) => client.seqOf(topic) >= PER_TOPIC)),
      30_000,
    );
    // Give stray duplicates a moment to show up before checking exact counts.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const byTopicSeq = new Map<string, string>();
    for (const [i, { client }] of clients.entries()) {
      assert.deepEqual(client.errors, [], `client ${i}`);
      assert.equal(client.snapshots, 0, `client ${i} got no resync snapshot`);
      for (const topic of client.topics)
        assertRange(client.seqs.get(topic) ?? [], 1, PER_TOPIC, `client ${i} ${topic}`);
      // Everyone saw the same message at each seq.
      for (const frame of client.frames) {
        if (frame.type !== 'UPDATE' && frame.type !== 'ALERT') continue;
        const key = `${frame.topic}:${frame.seq}`;
        const value = `${frame.type}:${JSON.stringify(frame.data)}`;
        const seen = byTopicSeq.get(key);
        if (seen === undefined) byTopicSeq.set(key, value);
        else assert.equal(value, seen, key);
      }
    }
    assert.equal(byTopicSeq.size, PER_TOPIC * topics.length);

    // Interest-based subscription: node 2 never listened to airQuality.
    const broker2 = nodes[2]?.service.broker as RedisBroker;
    assert.ok(!broker2.activeTopics().includes('airQuality'));
    assert.ok((nodes[0]?.service.broker as RedisBroker).activeTopics().includes('airQuality'));

    // Counts stay local; scope=cluster sums.
    assert.equal(
      nodes.reduce((n, node) => n + node.service.getClientCount(), 0),
      300,
    );
    assert.equal(nodes[0]?.service.getClientCount(), 100);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const local = (await (await fetch(`${nodes[0]?.url}/api/stats`)).json()) as { clients: number };
    assert.equal(local.clients, 100);
    const cluster = (await (await fetch(`${nodes[0]?.url}/api/stats?scope=cluster`)).json()) as {
      nodes: number;
      clients: number;
      topics: Record<string, number>;
    };
    assert.equal(cluster.nodes, 3);
    assert.equal(cluster.clients, 300);
    assert.equal(
      cluster.topics.cameras,
      clients.filter(({ client }) => client.topics.includes('cameras')).length,
    );

    // A broadcast on one node reaches every client of every node exactly once (the origin drops its own echo).
    const res = await fetch(`${nodes[1]?.url}/api/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'ALERT', data: { message: 'to everyone' } }),
    });
    assert.equal(res.status, 202);
    await waitFor('broadcast everywhere', () => clients.every(({ client }) => client.broadcasts.length >= 1));
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const [i, { client }] of clients.entries()) {
      assert.equal(client.broadcasts.length, 1, `client ${i}`);
      assert.deepEqual(client.broadcasts[0]?.data, { message: 'to everyone' });
    }
  },
);
