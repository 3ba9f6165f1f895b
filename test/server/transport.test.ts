/**
 * The seam under `ws`: the fast path writes pre-built frames to the raw socket while `ws` sends its own pings and
 * close frames. These tests pin that the byte stream stays well-formed and ordered for a real `ws` client.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { encodeTextFrame } from '../../src/gateway/frame.js';
import { truncateReason } from '../../src/gateway/transport.js';
import { connect, eventually } from '../helpers/test-client.js';
import { isoNow, startService } from '../helpers/servers.js';

test('frames of every length class decode in a real client', async (t) => {
  const { service, url } = await startService(t);
  const { client } = await connect(url, 'topics=cameras');
  t.after(() => client.close());
  const sizes = [0, 1, 100, 124, 125, 126, 127, 65_535, 65_536, 70_000, 200_000];
  for (const size of sizes)
    service.publish('cameras', { type: 'UPDATE', data: 'x'.repeat(size), timestamp: isoNow() });
  for (const size of sizes) assert.equal(((await client.next()).data as string).length, size);
  assert.equal(encodeTextFrame('').length, 2);
  assert.equal(encodeTextFrame('a'.repeat(126))[1], 126);
  assert.equal(encodeTextFrame('a'.repeat(65_536))[1], 127);
});

test('pings from ws interleave with a heavy stream of fast-path frames without corrupting it', async (t) => {
  const { service, url } = await startService(t, { heartbeatIntervalMs: 1, heartbeatTimeoutMs: 10_000 });
  const ws = new WebSocket(`${url}?topics=weather`);
  t.after(() => ws.terminate());
  let pings = 0;
  const seqs: number[] = [];
  let protocolError: Error | null = null;
  ws.on('error', (e) => (protocolError = e));
  ws.on('ping', () => pings++);
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as { type: string; seq?: number };
    if (m.type === 'UPDATE') seqs.push(m.seq ?? -1);
  });
  await new Promise((r) => ws.once('open', r));
  await eventually(() => service.getTopicSubscribers('weather') === 1);
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 50; i++)
      service.publish('weather', { type: 'UPDATE', data: 'y'.repeat(300), timestamp: isoNow() });
    await new Promise((r) => setTimeout(r, 2));
  }
  await eventually(() => seqs.length === 2000, 10_000, 'all 2000 frames');
  assert.equal(protocolError, null);
  assert.ok(pings > 0, 'pings were sent during the stream');
  assert.deepEqual(
    seqs,
    Array.from({ length: 2000 }, (_, i) => i + 1),
  );
});

test('frames queued before close() arrive before the 1001 close frame', async (t) => {
  const { service, url } = await startService(t);
  const { client } = await connect(url, 'topics=weather');
  for (let i = 1; i <= 20; i++) service.publish('weather', { type: 'UPDATE', data: i, timestamp: isoNow() });
  await service.close();
  assert.equal((await client.waitForClose()).code, 1001);
  const updates = client.received.filter((m) => m.type === 'UPDATE').map((m) => m.data);
  assert.deepEqual(
    updates,
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
  t.after(() => client.close());
});

test('close reasons are cut to 123 bytes on a character boundary', () => {
  assert.equal(truncateReason('short'), 'short');
  const cut = truncateReason('é'.repeat(100));
  assert.ok(Buffer.byteLength(cut) <= 123);
  assert.equal(cut, 'é'.repeat(61));
});
