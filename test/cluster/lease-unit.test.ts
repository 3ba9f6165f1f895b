/**
 * The lease on its own, against the real Redis: one holder at a time, release hands over, and a holder that cannot
 * reach Redis gives the lease up before anyone else can take it.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { Lease } from '../../src/cluster/lease.js';
import { parseServeArgs, UsageError } from '../../src/app/cli-args.js';
import { REDIS_URL, redisClient, redisUp, testPrefix, waitFor } from './helpers.js';

const up = await redisUp();

function connection(t: TestContext): Redis {
  const redis = new Redis(REDIS_URL, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  t.after(() => redis.disconnect());
  return redis;
}

test(
  'one holder at a time; stop() releases and another node takes over',
  { skip: !up && 'no Redis', timeout: 30_000 },
  async (t) => {
    const key = `${testPrefix(t)}lease:x`;
    const events: string[] = [];
    const make = (name: string, redis: Redis): Lease =>
      new Lease({
        redis,
        key,
        nodeId: name,
        ttlMs: 600,
        renewMs: 50,
        onAcquired: () => events.push(`${name}+`),
        onLost: () => events.push(`${name}-`),
      });
    const a = make('a', connection(t));
    const b = make('b', connection(t));
    t.after(() => Promise.all([a.stop(), b.stop()]));
    const ra = redisClient(t);
    a.start();
    await waitFor('a leads', () => a.state === 'leading');
    b.start();
    // b keeps following while a renews (several renewal periods pass).
    await waitFor('several renewals', async () => (await ra.pttl(key)) > 0 && events.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(b.state, 'following');
    assert.equal(await ra.get(key), 'a');
    await a.stop();
    await waitFor('b leads', () => b.state === 'leading');
    assert.equal(await ra.get(key), 'b');
    assert.deepEqual(events, ['a+', 'a-', 'b+']);
  },
);

test(
  'a holder that cannot reach Redis gives the lease up before it can expire',
  { skip: !up && 'no Redis', timeout: 30_000 },
  async (t) => {
    const key = `${testPrefix(t)}lease:y`;
    const events: string[] = [];
    const redisA = connection(t);
    const a = new Lease({
      redis: redisA,
      key,
      nodeId: 'a',
      ttlMs: 600,
      renewMs: 50,
      onAcquired: () => events.push('a+'),
      onLost: () => events.push('a-'),
    });
    const b = new Lease({
      redis: connection(t),
      key,
      nodeId: 'b',
      ttlMs: 600,
      renewMs: 50,
      onAcquired: () => events.push('b+'),
      onLost: () => events.push('b-'),
    });
    t.after(() => Promise.all([a.stop(), b.stop()]));
    a.start();
    await waitFor('a leads', () => a.state === 'leading');
    b.start();
    redisA.disconnect(); // a is cut off from Redis: it cannot renew
    await waitFor('b leads', () => b.state === 'leading', 10_000);
    assert.deepEqual(events, ['a+', 'a-', 'b+'], 'a stopped leading before b started');
  },
);

test('cluster flags: --redis, --redis-prefix, --node-id, --history-size, --lease-ttl (and env)', () => {
  const parsed = parseServeArgs(
    [
      'serve',
      '--redis',
      'redis://10.0.0.5:6380/2',
      '--redis-prefix',
      'city:',
      '--node-id',
      'n1',
      '--history-size',
      '50',
      '--lease-ttl',
      '3000',
    ],
    {},
  );
  assert.ok(!parsed.help);
  if (parsed.help) return;
  assert.equal(parsed.options.redisUrl, 'redis://10.0.0.5:6380/2');
  assert.equal(parsed.options.redisKeyPrefix, 'city:');
  assert.equal(parsed.options.nodeId, 'n1');
  assert.equal(parsed.options.historySize, 50);
  assert.equal(parsed.options.leaseTtlMs, 3000);
  const fromEnv = parseServeArgs([], { CITYPULSE_REDIS_URL: 'redis://r:6379', CITYPULSE_NODE_ID: 'e1' });
  assert.ok(
    !fromEnv.help && fromEnv.options.redisUrl === 'redis://r:6379' && fromEnv.options.nodeId === 'e1',
  );
  const single = parseServeArgs([], {});
  assert.ok(!single.help && single.options.redisUrl === undefined, 'no Redis unless asked');
  assert.throws(() => parseServeArgs(['--redis', 'http://x'], {}), UsageError);
  assert.throws(() => parseServeArgs(['--lease-ttl', '5'], {}), UsageError);
});
