/**
 * A client that stops reading must not eat the server's memory or slow anyone else down, and must converge once it
 * reads again: its queued UPDATEs are conflated into one fresh per-topic SNAPSHOT, ALERTs are kept.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import type { EntityBase } from '../../src/protocol/topics.js';
import { eventually } from '../helpers/test-client.js';
import { startServer } from '../helpers/servers.js';

interface Frame {
  type: string;
  topic?: string;
  seq?: number;
  data: unknown;
  recovered?: boolean;
}

/** A client-side fold of per-topic SNAPSHOT + UPDATEs into an entity map. */
class Folder {
  readonly entities = new Map<string, EntityBase>();
  seq = 0;
  snapshots = 0;
  /** ALERTs published by this test (the aggregator's rules raise others). */
  alerts = 0;
  apply(m: Frame): void {
    if (m.type === 'SNAPSHOT' && m.topic !== undefined) {
      const state = m.data as { entities: EntityBase[]; seq: number };
      this.entities.clear();
      for (const e of state.entities) this.entities.set(e.id, e);
      // The state is as of its seq; an ALERT seen after that seq changed no state, so the position never goes back.
      this.seq = Math.max(this.seq, m.seq ?? state.seq);
      this.snapshots++;
    } else if (m.type === 'SNAPSHOT') {
      const state = (m.data as Record<string, { entities: EntityBase[]; seq: number }>).accidents;
      if (state === undefined) return;
      for (const e of state.entities) this.entities.set(e.id, e);
      this.seq = state.seq;
    } else if (m.type === 'UPDATE' && (m.seq ?? 0) > this.seq) {
      const change = m.data as { upserts: EntityBase[]; removes: string[] };
      for (const e of change.upserts) this.entities.set(e.id, e);
      for (const id of change.removes) this.entities.delete(id);
      this.seq = m.seq ?? this.seq;
    } else if (m.type === 'ALERT') {
      if (typeof (m.data as { n?: unknown }).n === 'number') this.alerts++;
      // ALERTs take the topic's seq too.
      if ((m.seq ?? 0) > this.seq) this.seq = m.seq ?? this.seq;
    }
  }
}

function accident(i: number, version: number): Record<string, unknown> {
  return {
    id: `acc-${i}`,
    location: { lat: 52.37 + i / 1000, lon: 4.89 },
    severity: ((i + version) % 5) + 1,
    description: `incident ${i} v${version} `.padEnd(1500, '.'),
    kind: 'collision',
    reportedAt: '2026-11-26T08:00:00.000Z',
    updatedAt: new Date(Date.UTC(2026, 10, 26, 8, 0, 0, version)).toISOString(),
  };
}

function open(url: string, folder: Folder): Promise<WebSocket> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  ws.on('message', (d) => folder.apply(JSON.parse(d.toString()) as Frame));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

test('a paused client during 10,000 UPDATEs: bounded queue, others unaffected, convergence after it reads again', async (t) => {
  const maxQueuedBytes = 4 * 1024 * 1024;
  const server = await startServer(t, {
    // Plain frames: the test needs the paused socket to fill (these payloads deflate ~100x; compression.test.ts
    // covers a compressed slow consumer).
    compression: false,
    publishKeys: ['slow-consumer-key'],
    highWaterBytes: 64 * 1024,
    backlogBytes: 128 * 1024,
    maxQueuedBytes,
  });
  const slowFold = new Folder();
  const fastFold = new Folder();
  const slow = await open(`${server.wsUrl}?topics=accidents`, slowFold);
  const fast = await open(`${server.wsUrl}?topics=accidents`, fastFold);
  t.after(() => {
    slow.terminate();
    fast.terminate();
  });
  await eventually(() => server.service.getTopicSubscribers('accidents') === 2);
  slow.pause();

  const total = 10_000;
  let maxQueued = 0;
  for (let n = 0; n < total; n++) {
    const result = server.aggregator.ingest('accidents', [accident(n % 40, n)]);
    assert.ok(result.ok, JSON.stringify(result));
    if (n % 500 === 499) {
      server.service.publish('accidents', {
        type: 'ALERT',
        data: { n },
        timestamp: new Date().toISOString(),
      });
    }
    if (n % 50 === 49) {
      await new Promise((r) => setImmediate(r));
      maxQueued = Math.max(maxQueued, server.service.counters().queuedBytes);
    }
  }
  // The fast client got every UPDATE while the slow one was paused.
  await eventually(
    () => fastFold.seq === server.service.position('accidents').seq,
    10_000,
    'fast client caught up',
  );
  assert.equal(fastFold.snapshots, 0, 'the fast client was never conflated');
  assert.equal(fastFold.alerts, 20);
  const counters = server.service.counters();
  assert.ok(counters.conflatedFrames > 0, 'the slow client was conflated');
  assert.equal(counters.slowConsumerCloses, 0);
  assert.ok(maxQueued <= maxQueuedBytes, `queued ${maxQueued} bytes`);

  slow.resume();
  const expected = new Map(server.aggregator.getTopicSnapshot('accidents').entities.map((e) => [e.id, e]));
  await eventually(
    () => slowFold.seq === server.service.position('accidents').seq,
    10_000,
    'slow client caught up',
  );
  assert.ok(slowFold.snapshots >= 1, 'a fresh snapshot replaced what was conflated');
  assert.equal(slowFold.alerts, 20, 'no ALERT was dropped');
  assert.deepEqual(slowFold.entities, expected);
  assert.equal(slow.readyState, WebSocket.OPEN);
});
