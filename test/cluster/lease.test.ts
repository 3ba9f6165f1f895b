/**
 * Source leases: three node processes run with the simulator, only one runs it at a time; when that one is
 * SIGKILLed another takes the lease over and the data keeps flowing to clients of the survivors, in order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_TOPICS } from '../../src/protocol/messages.js';
import {
  REDIS_URL,
  RecordingClient,
  redisClient,
  redisUp,
  sleep,
  startNodeProcess,
  testPrefix,
  waitFor,
  type NodeProcess,
} from './helpers.js';

const up = await redisUp();

async function leading(node: NodeProcess): Promise<string[]> {
  const res = await fetch(`${node.url}/readyz`);
  return ((await res.json()) as { leading: string[] }).leading;
}

test(
  'one node runs the source; when it dies another takes over within seconds',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 90_000 },
  async (t) => {
    const prefix = testPrefix(t);
    const redis = redisClient(t);
    const leaseKey = `${prefix}lease:source:simulator`;
    const ids = ['l0', 'l1', 'l2'];
    const nodes = await Promise.all(
      ids.map((id) =>
        startNodeProcess(t, [
          '--redis',
          REDIS_URL,
          '--redis-prefix',
          prefix,
          '--source',
          'simulator',
          '--simulator-interval',
          '100',
          '--lease-ttl',
          '1000',
          '--node-id',
          id,
        ]),
      ),
    );
    await waitFor('a lease holder', async () => ids.includes((await redis.get(leaseKey)) ?? ''));
    const holderId = (await redis.get(leaseKey)) as string;
    const holder = nodes[ids.indexOf(holderId)] as NodeProcess;
    const survivors = nodes.filter((n) => n !== holder);

    // Exactly one node leads (the others keep following).
    await waitFor('the holder reports leading', async () => (await leading(holder)).includes('simulator'));
    for (const node of survivors) assert.deepEqual(await leading(node), []);

    // Clients of the survivors get the holder's data through Redis.
    const clients = survivors.map(() => new RecordingClient([...DEFAULT_TOPICS]));
    t.after(() => clients.forEach((c) => c.close()));
    await Promise.all(clients.map((c, i) => c.connect((survivors[i] as NodeProcess).wsUrl)));
    await waitFor('updates flowing', () => clients.every((c) => c.seqOf('weather') >= 2));

    holder.child.kill('SIGKILL');
    await holder.exited;
    const before = Math.max(...clients.map((c) => c.seqOf('weather')));
    await waitFor(
      'a new holder',
      async () => {
        const id = await redis.get(leaseKey);
        return id !== null && id !== holderId;
      },
      15_000,
    );
    const newId = (await redis.get(leaseKey)) as string;
    const newHolder = nodes[ids.indexOf(newId)] as NodeProcess;
    assert.ok(survivors.includes(newHolder));
    await waitFor('the new holder reports leading', async () =>
      (await leading(newHolder)).includes('simulator'),
    );
    for (const node of survivors) if (node !== newHolder) assert.deepEqual(await leading(node), []);

    // Data flows again, in order, to the clients of both survivors.
    await waitFor(
      'updates after the takeover',
      () => clients.every((c) => c.seqOf('weather') >= before + 3),
      15_000,
    );
    await sleep(100);
    for (const [i, client] of clients.entries()) assert.deepEqual(client.errors, [], `client ${i}`);
  },
);
