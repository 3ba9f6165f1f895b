import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { eventually } from '../helpers/test-client.js';
import { startService } from '../helpers/servers.js';

function open(url: string, autoPong: boolean): Promise<WebSocket> {
  const ws = new WebSocket(url, { autoPong });
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

test('a silent client is terminated within timeout + interval; an answering one survives several timeouts', async (t) => {
  // Margins wide enough for a loaded 2-core CI machine: an answering client must never miss a 600 ms deadline.
  const intervalMs = 100;
  const timeoutMs = 600;
  const { service, url } = await startService(t, {
    heartbeatIntervalMs: intervalMs,
    heartbeatTimeoutMs: timeoutMs,
  });
  const answering = await open(url, true);
  let pings = 0;
  answering.on('ping', () => pings++);
  const silent = await open(url, false);
  t.after(() => {
    answering.terminate();
    silent.terminate();
  });
  const openedAt = Date.now();
  const silentClosed = new Promise<number>((resolve) =>
    silent.once('close', () => resolve(Date.now() - openedAt)),
  );
  await eventually(() => service.getClientCount() === 2, 10_000);
  const elapsed = await Promise.race([
    silentClosed,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('silent client never terminated')), 10_000).unref(),
    ),
  ]);
  // Never before the timeout (the only timing bound asserted is the protocol's own lower bound).
  assert.ok(elapsed >= timeoutMs, `terminated after ${elapsed} ms, before the ${timeoutMs} ms timeout`);
  await eventually(() => service.getClientCount() === 1, 10_000, 'silent client removed from the count');
  assert.equal(service.counters().heartbeatTerminations, 1);
  // The answering client keeps living across several timeouts' worth of pings.
  await eventually(
    () => pings >= Math.ceil((3 * timeoutMs) / intervalMs),
    5000,
    'pings across three timeouts',
  );
  assert.equal(answering.readyState, WebSocket.OPEN);
  assert.equal(service.getClientCount(), 1);
});

test('client frames count as liveness: a client that never pongs but keeps talking stays', async (t) => {
  const { service, url } = await startService(t, { heartbeatIntervalMs: 50, heartbeatTimeoutMs: 400 });
  const talker = await open(url, false);
  t.after(() => talker.terminate());
  let pongs = 0;
  talker.on('message', (d) => {
    if (JSON.parse(d.toString()).type === 'PONG') pongs++;
  });
  const timer = setInterval(() => talker.send(JSON.stringify({ type: 'ping' })), 25);
  t.after(() => clearInterval(timer));
  // Forty pongs span more than two heartbeat timeouts.
  await eventually(() => pongs >= 40, 10_000, 'forty app-level pongs');
  assert.equal(talker.readyState, WebSocket.OPEN);
  assert.equal(service.counters().heartbeatTerminations, 0);
});
