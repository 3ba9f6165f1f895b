/**
 * Operations end to end: the numbers `GET /metrics` serves after real traffic, and the graceful drain (1001
 * closes spread over `drainMs`), in-process and through the CLI on SIGTERM.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { CloseCode, ServerMessageType } from '../../src/protocol/messages.js';
import { startServer } from '../helpers/servers.js';
import { startCli } from '../helpers/cli.js';
import type { TestClient } from '../helpers/test-client.js';
import { WAIT_MS, eventually } from '../helpers/test-client.js';
import { SECRET, mint } from '../security/tokens.js';
import { openClient, refusedStatus, sample, scrape } from './helpers.js';

describe('GET /metrics', () => {
  it('counts connections, subscriptions, messages out, auth failures and heartbeat terminations', async (t) => {
    const server = await startServer(t, {
      auth: { secret: SECRET },
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 2500,
      metricsPort: 0, // with auth on, the main port serves /metrics only to a publish key
    });
    const token = await mint({ topics: ['*'] }, { secret: SECRET });
    const headers = { authorization: `Bearer ${token}` };
    const a = await openClient(t, `${server.wsUrl}?topics=weather`, { headers });
    const b = await openClient(t, `${server.wsUrl}?topics=weather,cameras`, { headers });
    await a.nextOfType(ServerMessageType.Snapshot);
    await b.nextOfType(ServerMessageType.Snapshot);
    // A client that never answers protocol pings.
    const silent = new WebSocket(server.wsUrl, { headers, autoPong: false });
    silent.on('error', () => {});
    t.after(() => silent.terminate());
    await once(silent, 'open');

    assert.equal(await refusedStatus(server.wsUrl), 401);
    const expired = await mint({ topics: ['*'] }, { secret: SECRET }, { expiresAt: Date.now() - 60_000 });
    assert.equal(
      await refusedStatus(server.wsUrl, [], { headers: { authorization: `Bearer ${expired}` } }),
      401,
    );
    assert.equal(await refusedStatus(`${server.wsUrl}?token=${encodeURIComponent(expired)}`), 401);

    const [closeCode] = (await Promise.race([
      once(silent, 'close'),
      new Promise((_, reject) => setTimeout(() => reject(new Error('silent client not terminated')), 10_000)),
    ])) as [number];
    assert.equal(closeCode, 1006, 'terminated, not closed');
    await eventually(
      () => server.service.getClientCount() === 2,
      WAIT_MS,
      'the server dropped the silent client',
    );

    for (let n = 1; n <= 3; n++) {
      server.service.publish('weather', { type: 'UPDATE', data: { n }, timestamp: new Date().toISOString() });
    }
    server.service.publish('cameras', { type: 'ALERT', data: { n: 4 }, timestamp: new Date().toISOString() });
    server.service.broadcast({ type: 'ALERT', data: { n: 5 }, timestamp: new Date().toISOString() });
    await a.nextOfType(ServerMessageType.Update, 3);
    await b.nextOfType(ServerMessageType.Update, 3);
    await b.nextOfType(ServerMessageType.Alert, 2);
    a.send({ type: 'ping', id: 1 });
    await a.nextOfType(ServerMessageType.Pong);

    const text = await scrape(new URL(server.metricsUrl ?? 'http://metrics-port-missing').origin);
    const expect = (name: string, labels: Record<string, string>, value: number) =>
      assert.equal(sample(text, name, labels), value, `${name}${JSON.stringify(labels)}`);
    expect('citypulse_connections', {}, 2);
    expect('citypulse_connections_opened_total', {}, 3);
    expect('citypulse_heartbeat_terminations_total', {}, 1);
    expect('citypulse_subscriptions', { topic: 'weather' }, 2);
    expect('citypulse_subscriptions', { topic: 'cameras' }, 1);
    expect('citypulse_subscriptions', { topic: 'accidents' }, 0);
    expect('citypulse_messages_out_total', { type: 'UPDATE', topic: 'weather' }, 6);
    expect('citypulse_messages_out_total', { type: 'ALERT', topic: 'cameras' }, 1);
    expect('citypulse_messages_out_total', { type: 'ALERT', topic: '*' }, 2);
    expect('citypulse_auth_failures_total', { reason: 'missing' }, 1);
    expect('citypulse_auth_failures_total', { reason: 'expired' }, 2);
    expect('citypulse_upgrades_rejected_total', { stage: 'auth', reason: 'expired' }, 2);
    expect('citypulse_messages_in_total', { type: 'ping' }, 1);
    assert.ok((sample(text, 'citypulse_bytes_out_total') ?? 0) > 0);
    assert.ok((sample(text, 'citypulse_publish_latency_seconds_count', { topic: 'weather' }) ?? 0) >= 3);
  });

  it('counts conflated UPDATEs of a client that stopped reading, and its resync snapshot', async (t) => {
    const server = await startServer(t, {
      // Plain frames: 'x' padding deflates ~100x, a compressed socket would never fill.
      compression: false,
      highWaterBytes: 64 * 1024,
      backlogBytes: 128 * 1024,
      maxQueuedBytes: 64 * 1024 * 1024,
    });
    const slow = await openClient(t, `${server.wsUrl}?topics=accidents`);
    await slow.nextOfType(ServerMessageType.Snapshot);
    slow.ws.pause();
    const padding = 'x'.repeat(2000);
    for (let n = 0; n < 6000; n++) {
      server.service.publish('accidents', {
        type: 'UPDATE',
        data: { n, padding },
        timestamp: new Date().toISOString(),
      });
      if (n % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    }
    const conflated = server.service.counters().conflatedFrames;
    assert.ok(conflated > 0, 'the paused client was conflated');
    const text = await scrape(server.url);
    assert.equal(
      sample(text, 'citypulse_messages_dropped_total', { reason: 'conflated', topic: 'accidents' }),
      conflated,
    );
    assert.equal(sample(text, 'citypulse_slow_consumer_actions_total', { action: 'close' }) ?? 0, 0);

    slow.ws.resume();
    await slow.next((m) => m.type === ServerMessageType.Snapshot && m.topic === 'accidents', 10_000);
    const after = await scrape(server.url);
    assert.equal(sample(after, 'citypulse_slow_consumer_actions_total', { action: 'snapshot' }), 1);
  });
});

/** Opens `count` clients and records when (performance.now) and how each one is closed. */
async function openMany(
  t: { after: (fn: () => unknown) => void },
  url: string,
  count: number,
): Promise<{ clients: TestClient[]; closes: Promise<{ code: number; reason: string; at: number }[]> }> {
  const clients: TestClient[] = [];
  for (let i = 0; i < count; i++) clients.push(await openClient(t, url));
  await Promise.all(clients.map((c) => c.nextOfType(ServerMessageType.Snapshot)));
  const closes = Promise.all(
    clients.map(async (c) => {
      const { code, reason } = await c.waitForClose(10_000);
      return { code, reason, at: performance.now() };
    }),
  );
  closes.catch(() => {});
  return { clients, closes };
}

describe('graceful drain', () => {
  it('closes 20 clients with 1001 spread over drainMs', async (t) => {
    const server = await startServer(t, { drainMs: 400 });
    const { closes } = await openMany(t, server.wsUrl, 20);
    await server.close();
    const results = await closes;
    for (const { code, reason } of results) {
      assert.equal(code, CloseCode.GoingAway);
      assert.equal(reason, 'server shutting down');
    }
    const times = results.map((r) => r.at);
    const spread = Math.max(...times) - Math.min(...times);
    // A lower bound only: closes spread over a 400 ms window cannot all land within 100 ms.
    assert.ok(spread > 100, `closes spread over ${spread.toFixed(0)} ms`);
  });

  it('citypulse serve --drain 300: SIGTERM closes clients with 1001 and exits 0', async (t) => {
    const cli = await startCli(t, ['--source', 'none', '--drain', '300'], {
      logLevel: 'silent',
      timeoutMs: 20_000,
    });
    const { closes } = await openMany(t, cli.wsUrl, 5);

    cli.child.kill('SIGTERM');
    const results = await closes;
    assert.deepEqual(
      results.map((r) => r.code),
      Array<number>(5).fill(CloseCode.GoingAway),
    );
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      cli.exited,
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 15_000))),
    ]);
    clearTimeout(timer);
    assert.equal(code, 0, `exit: ${String(code)} ${cli.stderr()}`);
  });
});
