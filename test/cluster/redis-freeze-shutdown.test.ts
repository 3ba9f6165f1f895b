/**
 * SIGTERM while Redis is frozen (SIGSTOP), through the real CLI with its default deadlines and the simulator running
 * under its lease: every client is closed with 1001 (not dropped with 1006) and the process exits 0, before its
 * forced-exit deadline (which would exit 1). Draining clients never waits on Redis.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { redisServerInstalled, startNodeProcess, ThrowawayRedis, waitFor } from './helpers.js';

const hasRedisServer = await redisServerInstalled();

test(
  'item 9: SIGTERM while Redis is frozen closes every client with 1001 and exits 0',
  { skip: !hasRedisServer && 'no redis-server binary', timeout: 120_000 },
  async (t) => {
    const redis = await ThrowawayRedis.start(t);
    const node = await startNodeProcess(t, [
      '--redis',
      redis.url,
      '--redis-prefix',
      'citypulse-test:freeze-term:',
      '--node-id',
      'freeze-term',
    ]);
    const readyz = async (): Promise<{ status: number; redis?: string; leading?: string[] }> => {
      const res = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(15_000) });
      return { status: res.status, ...((await res.json()) as { redis?: string; leading?: string[] }) };
    };
    // The node leads the simulator (a lease to release at shutdown) and serves clients.
    await waitFor('ready and leading the simulator', async () => {
      const r = await readyz();
      return r.status === 200 && (r.leading ?? []).length > 0;
    });
    const codes: (number | null)[] = [];
    const sockets = Array.from({ length: 5 }, () => new WebSocket(`${node.wsUrl}?topics=weather,cameras`));
    t.after(() => sockets.forEach((ws) => ws.terminate()));
    const closed = sockets.map(
      (ws, i) =>
        new Promise<void>((resolve) => {
          codes[i] = null;
          ws.on('error', () => {});
          ws.once('close', (code) => {
            codes[i] = code;
            resolve();
          });
        }),
    );
    await Promise.all(
      sockets.map((ws) => new Promise<void>((resolve) => ws.once('message', () => resolve()))),
    );

    redis.freeze();
    t.after(() => redis.thaw()); // never leave it stopped
    await waitFor(
      'the node reports the stalled Redis',
      async () => (await readyz()).redis === 'stalled',
      30_000,
    );

    node.child.kill('SIGTERM');
    const exitCode = await node.exited;
    await Promise.all(closed);
    assert.equal(exitCode, 0, `exit code (the forced exit would give 1): ${node.stderr().slice(-2000)}`);
    assert.deepEqual(codes, [1001, 1001, 1001, 1001, 1001], 'every client closed with 1001');
  },
);
