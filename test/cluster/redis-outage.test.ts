/**
 * Redis trouble, on a throwaway `redis-server` of the test's own (the machine's shared Redis is never touched):
 * - subscription connections dropped while Redis keeps its data: nodes fill the gap from the streams, clients lose
 *   nothing and need no snapshot;
 * - Redis killed and restarted empty mid-stream: nodes keep their clients connected and report not ready, publishes
 *   are refused; once Redis is back they are ready again and every client gets a fresh per-topic SNAPSHOT
 *   (`recovered: false`, new epoch) followed by every later frame in order.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import type { Source } from '../../src/aggregator/source.js';
import type { CityPulseServer } from '../../src/app/create-server.js';
import { camera } from '../resume/fold-helpers.js';
import {
  RecordingClient,
  redisServerInstalled,
  sleep,
  startNode,
  ThrowawayRedis,
  waitFor,
} from './helpers.js';

const hasRedisServer = await redisServerInstalled();
const TOPICS = ['weather', 'cameras'];

/** A change valid on both topics by the state model (an entity may carry the other topic's fields too). */
function change(n: number): { upserts: Record<string, unknown>[]; removes: string[] } {
  const entity = {
    id: `e${n % 10}`,
    updatedAt: '2026-03-01T12:00:00.000Z',
    source: 'test',
    n,
    name: `e${n % 10}`,
    location: { lat: 52.37, lon: 4.89 },
    temperatureC: 10,
    condition: 'clear',
    status: 'online',
  };
  return { upserts: [entity], removes: [] };
}

async function publishRound(node: CityPulseServer, n: number): Promise<void> {
  for (const topic of TOPICS) {
    await node.service.publish(topic, {
      type: 'UPDATE',
      topic,
      data: change(n),
      timestamp: new Date().toISOString(),
    });
  }
}

async function ready(node: CityPulseServer): Promise<number> {
  return (await fetch(`${node.url}/readyz`)).status;
}

async function setup(
  t: TestContext,
): Promise<{ redis: ThrowawayRedis; nodes: CityPulseServer[]; clients: RecordingClient[] }> {
  const redis = await ThrowawayRedis.start(t);
  const nodes: CityPulseServer[] = [];
  for (let i = 0; i < 2; i++)
    nodes.push(
      await startNode(t, { redisUrl: redis.url, redisKeyPrefix: 'citypulse-test:outage:', nodeId: `o${i}` }),
    );
  const clients = Array.from({ length: 20 }, () => new RecordingClient(TOPICS));
  t.after(() => clients.forEach((c) => c.close()));
  await Promise.all(clients.map((c, i) => c.connect((nodes[i % 2] as CityPulseServer).wsUrl)));
  return { redis, nodes, clients };
}

test(
  'subscriptions dropped (data kept): nodes fill the gap from the streams, nothing lost, no snapshot',
  { skip: !hasRedisServer && 'no redis-server binary', timeout: 90_000 },
  async (t) => {
    const { redis, nodes, clients } = await setup(t);
    const admin = new Redis(redis.url);
    admin.on('error', () => {});
    t.after(() => admin.disconnect());
    const publisher = nodes[0] as CityPulseServer;
    const rounds = 80;
    let killed = 0;
    for (let n = 1; n <= rounds; n++) {
      await publishRound(publisher, n);
      if (n === 30) killed = Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
    }
    assert.equal(killed, 2, 'both nodes lost their subscription connection mid-stream');
    await waitFor(
      'every client caught up',
      () => clients.every((c) => TOPICS.every((topic) => c.seqOf(topic) >= rounds)),
      30_000,
    );
    await sleep(200);
    for (const [i, client] of clients.entries()) {
      assert.deepEqual(client.errors, [], `client ${i}`);
      assert.equal(client.snapshots, 0, `client ${i}`);
      for (const topic of TOPICS) {
        assert.deepEqual(
          client.seqs.get(topic),
          Array.from({ length: rounds }, (_, k) => k + 1),
          `client ${i} ${topic}`,
        );
      }
    }
  },
);

test(
  'Redis restarted empty mid-stream: clients stay, not ready meanwhile, then fresh snapshots and every later frame',
  { skip: !hasRedisServer && 'no redis-server binary', timeout: 90_000 },
  async (t) => {
    const { redis, nodes, clients } = await setup(t);
    const [publisher, other] = nodes as [CityPulseServer, CityPulseServer];
    assert.equal(await ready(publisher), 200);
    for (let n = 1; n <= 30; n++) await publishRound(publisher, n);
    await waitFor('first part delivered', () =>
      clients.every((c) => TOPICS.every((topic) => c.seqOf(topic) >= 30)),
    );
    const oldEpoch = clients[0]?.position.get('weather')?.epoch;

    await redis.kill();
    await waitFor(
      'both nodes not ready',
      async () => (await ready(publisher)) === 503 && (await ready(other)) === 503,
    );
    await assert.rejects(
      Promise.resolve(
        publisher.service.publish('weather', {
          type: 'UPDATE',
          topic: 'weather',
          data: change(0),
          timestamp: new Date().toISOString(),
        }),
      ),
    );
    // Connected clients stay connected; the nodes keep serving them (a ping is answered).
    assert.ok(clients.every((c) => c.ws?.readyState === WebSocket.OPEN));
    assert.equal(publisher.service.getClientCount() + other.service.getClientCount(), clients.length);

    await redis.restart();
    await waitFor(
      'both nodes ready again',
      async () => (await ready(publisher)) === 200 && (await ready(other)) === 200,
      30_000,
    );
    const rounds = 40;
    for (let n = 1; n <= rounds; n++) await publishRound(publisher, 100 + n);
    await waitFor(
      'every client on the new epoch, caught up',
      () =>
        clients.every((c) =>
          TOPICS.every((topic) => c.seqOf(topic) >= rounds && c.position.get(topic)?.epoch !== oldEpoch),
        ),
      30_000,
    );
    await sleep(200);
    for (const [i, client] of clients.entries()) {
      assert.deepEqual(client.errors, [], `client ${i}`);
      assert.equal(client.ws?.readyState, WebSocket.OPEN);
      for (const topic of TOPICS) {
        const seqs = client.seqs.get(topic) ?? [];
        // 1..30 of the old life, one fresh snapshot marker (-S), then S+1..40 of the new life.
        assert.deepEqual(
          seqs.slice(0, 30),
          Array.from({ length: 30 }, (_, k) => k + 1),
          `client ${i} ${topic} before`,
        );
        const marker = seqs[30] as number;
        assert.ok(marker <= 0, `client ${i} ${topic}: a fresh snapshot follows the restart (got ${marker})`);
        const after = seqs.slice(31);
        assert.deepEqual(
          after,
          Array.from({ length: rounds + marker }, (_, k) => -marker + k + 1),
          `client ${i} ${topic} after`,
        );
      }
      const recoveredFalse = client.frames.filter(
        (f) => f.type === 'SNAPSHOT' && f.topic !== undefined && f.recovered === false,
      );
      assert.equal(recoveredFalse.length, TOPICS.length, `client ${i}: one fresh snapshot per topic`);
    }
    // The fresh snapshots carried the shared state of the new life (from Redis).
    const shared = (await (await fetch(`${other.url}/api/snapshot`)).json()) as Record<
      string,
      { seq: number; entities: unknown[] }
    >;
    assert.equal(shared.weather?.seq, rounds);
    assert.equal(shared.weather?.entities.length, 10);
  },
);

test(
  'after Redis lost its data, the source-leading node restores the shared state from its own',
  { skip: !hasRedisServer && 'no redis-server binary', timeout: 90_000 },
  async (t) => {
    const redis = await ThrowawayRedis.start(t);
    // A feed that reports once when started and then stays quiet: nothing would ever rebuild the lost state by itself.
    const quiet: Source = {
      name: 'quiet',
      kind: 'test',
      topics: ['cameras'],
      start(context) {
        context.emit({
          topic: 'cameras',
          upserts: [0, 1, 2, 3, 4].map((k) => camera(`q${k}`, k)),
          complete: true,
        });
      },
      async stop() {},
    };
    const node = await startNode(t, {
      redisUrl: redis.url,
      redisKeyPrefix: 'citypulse-test:reconcile:',
      sources: [quiet],
      leaseTtlMs: 600,
    });
    const sharedIds = async (): Promise<string> => {
      const res = await fetch(`${node.url}/api/snapshot`);
      if (res.status !== 200) return '';
      const shared = (await res.json()) as Record<string, { entities: { id: string }[] }>;
      return (shared.cameras?.entities ?? [])
        .map((e) => e.id)
        .sort()
        .join(',');
    };
    await waitFor('shared state built', async () => (await sharedIds()) === 'q0,q1,q2,q3,q4');
    await redis.kill();
    await sleep(1500); // longer than the lease: the node stops its source
    await redis.restart();
    await waitFor('ready again', async () => (await ready(node)) === 200, 30_000);
    await waitFor('shared state restored', async () => (await sharedIds()) === 'q0,q1,q2,q3,q4', 30_000);
  },
);
