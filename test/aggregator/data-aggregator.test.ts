import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { createSimulator } from '../../src/aggregator/simulator.js';
import type { EntityChange } from '../../src/protocol/topics.js';
import { ManualClock, PushSource, RecordingPublisher, accident, camera } from './helpers.js';

function setup(options: { ttlMs?: Record<string, number>; attach?: boolean } = {}) {
  const clock = new ManualClock();
  const source = new PushSource('feed', ['cameras', 'accidents', 'airQuality', 'weather']);
  const aggregator = new DataAggregator({
    sources: [source],
    now: clock.now,
    alerts: false,
    ...(options.ttlMs ? { ttlMs: options.ttlMs } : {}),
  });
  const publisher = new RecordingPublisher();
  if (options.attach !== false) aggregator.attach(publisher);
  return { clock, source, aggregator, publisher };
}

test('an upsert publishes one UPDATE with the whole entity and the snapshot records its seq', async (t) => {
  const { source, aggregator, publisher } = setup();
  t.after(() => aggregator.stop());
  await aggregator.start();
  source.emit({ topic: 'cameras', upserts: [camera('c1'), camera('c2')] });

  const updates = publisher.of('cameras', 'UPDATE');
  assert.equal(updates.length, 1);
  const data = updates[0]?.message.data as EntityChange;
  assert.deepEqual(
    data.upserts.map((e) => e.id),
    ['c1', 'c2'],
  );
  assert.deepEqual(data.removes, []);
  assert.equal((data.upserts[0] as unknown as { source: string }).source, 'feed', 'source filled in');
  assert.equal(updates[0]?.message.topic, 'cameras');
  assert.equal(typeof updates[0]?.message.timestamp, 'string');

  const snap = aggregator.getTopicSnapshot('cameras');
  assert.equal(snap.seq, 1);
  assert.equal(snap.epoch, 'test-epoch');
  assert.deepEqual(
    snap.entities.map((e) => e.id),
    ['c1', 'c2'],
  );
});

test('identical readings publish nothing; a changed field publishes only that entity', async (t) => {
  const { source, aggregator, publisher } = setup();
  t.after(() => aggregator.stop());
  await aggregator.start();
  source.emit({ topic: 'cameras', upserts: [camera('c1'), camera('c2')] });
  source.emit({ topic: 'cameras', upserts: [camera('c2'), camera('c1')] });
  assert.equal(publisher.of('cameras').length, 1, 'no UPDATE for a repeat');

  source.emit({ topic: 'cameras', upserts: [camera('c1'), camera('c2', { status: 'offline' })] });
  const updates = publisher.of('cameras', 'UPDATE');
  assert.equal(updates.length, 2);
  const data = updates[1]?.message.data as EntityChange;
  assert.deepEqual(
    data.upserts.map((e) => [e.id, (e as unknown as { status: string }).status]),
    [['c2', 'offline']],
  );
  assert.equal(aggregator.getTopicSnapshot('cameras').seq, 2);
});

test('removes publish ids; a remove of an unknown id publishes nothing', async (t) => {
  const { source, aggregator, publisher } = setup();
  t.after(() => aggregator.stop());
  await aggregator.start();
  source.emit({ topic: 'accidents', upserts: [accident('a1'), accident('a2')] });
  source.emit({ topic: 'accidents', removes: ['nope'] });
  assert.equal(publisher.of('accidents').length, 1);
  source.emit({ topic: 'accidents', removes: ['a1'] });
  const last = publisher.of('accidents').at(-1)?.message.data as EntityChange;
  assert.deepEqual(last, { upserts: [], removes: ['a1'] });
  assert.deepEqual(
    aggregator.getTopicSnapshot('accidents').entities.map((e) => e.id),
    ['a2'],
  );
});

test('a complete batch removes what the source no longer reports, but not other sources\u2019 entities', async (t) => {
  const clock = new ManualClock();
  const a = new PushSource('a', ['cameras']);
  const b = new PushSource('b', ['cameras']);
  const aggregator = new DataAggregator({ sources: [a, b], now: clock.now, alerts: false });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  t.after(() => aggregator.stop());
  await aggregator.start();
  a.emit({ topic: 'cameras', upserts: [camera('a1'), camera('a2')], complete: true });
  b.emit({ topic: 'cameras', upserts: [camera('b1')], complete: true });
  a.emit({ topic: 'cameras', upserts: [camera('a2')], complete: true });
  const last = publisher.of('cameras').at(-1)?.message.data as EntityChange;
  assert.deepEqual(last, { upserts: [], removes: ['a1'] });
  assert.deepEqual(
    aggregator
      .getTopicSnapshot('cameras')
      .entities.map((e) => e.id)
      .sort(),
    ['a2', 'b1'],
  );
});

test('malformed readings are counted as rejected, never published, and do not stop the source', async (t) => {
  const { source, aggregator, publisher } = setup();
  t.after(() => aggregator.stop());
  await aggregator.start();
  source.emit({
    topic: 'cameras',
    upserts: [
      camera('ok1'),
      camera('bad1', { location: { lat: 200, lon: 4 } }),
      'not an object',
      camera('bad2', { status: 'on fire' }),
    ],
  });
  source.emit({ topic: 'cameras', upserts: [camera('ok2')] });

  const ids = publisher
    .of('cameras')
    .flatMap((p) => (p.message.data as EntityChange).upserts.map((e) => e.id));
  assert.deepEqual(ids, ['ok1', 'ok2']);
  const status = aggregator.sourceStatus().find((s) => s.name === 'feed');
  assert.equal(status?.readings, 2);
  assert.equal(status?.rejected, 3);
  assert.equal(status?.state, 'running');
});

test('a rejected reading of a known entity does not remove it in a complete batch', async (t) => {
  const { source, aggregator } = setup();
  t.after(() => aggregator.stop());
  await aggregator.start();
  source.emit({ topic: 'cameras', upserts: [camera('c1')], complete: true });
  source.emit({ topic: 'cameras', upserts: [camera('c1', { status: 42 })], complete: true });
  assert.deepEqual(
    aggregator.getTopicSnapshot('cameras').entities.map((e) => (e as unknown as { status: string }).status),
    ['online'],
  );
});

test('before attach() state changes but nothing is published and seq stays 0', async (t) => {
  const { source, aggregator } = setup({ attach: false });
  t.after(() => aggregator.stop());
  await aggregator.start();
  source.emit({ topic: 'cameras', upserts: [camera('c1')] });
  const snap = aggregator.getTopicSnapshot('cameras');
  assert.equal(snap.seq, 0);
  assert.equal(snap.epoch, undefined);
  assert.equal(snap.entities.length, 1);

  const publisher = new RecordingPublisher('e2');
  aggregator.attach(publisher);
  source.emit({ topic: 'cameras', upserts: [camera('c2')] });
  assert.equal(publisher.messages.length, 1);
  assert.deepEqual(aggregator.getTopicSnapshot('cameras').seq, 1);
  assert.deepEqual(aggregator.getTopicSnapshot('cameras').epoch, 'e2');
});

test('getSnapshot() returns the same object until something changes', async (t) => {
  const { source, aggregator } = setup();
  t.after(() => aggregator.stop());
  await aggregator.start();
  const first = aggregator.getSnapshot();
  assert.equal(aggregator.getSnapshot(), first);
  assert.deepEqual(Object.keys(first), ['cameras', 'weather', 'accidents', 'airQuality']);
  assert.deepEqual(first.cameras, { entities: [], seq: 0, alerts: [] });

  source.emit({ topic: 'cameras', upserts: [camera('c1')] });
  const second = aggregator.getSnapshot();
  assert.notEqual(second, first);
  assert.equal(aggregator.getSnapshot(), second);
  assert.equal(second.weather, first.weather, 'unchanged topics keep their state object');

  source.emit({ topic: 'cameras', upserts: [camera('c1')] });
  assert.equal(aggregator.getSnapshot(), second, 'a no-op reading keeps the identity');
});

test('entities expire after the topic TTL with a removes entry; reports refresh the TTL', async (t) => {
  const { clock, source, aggregator, publisher } = setup({ ttlMs: { cameras: 60_000 } });
  t.after(() => aggregator.stop());
  await aggregator.start();
  source.emit({ topic: 'cameras', upserts: [camera('c1'), camera('c2')] });
  clock.advance(40_000);
  source.emit({ topic: 'cameras', upserts: [camera('c2')] }); // unchanged, but seen
  clock.advance(20_000);
  aggregator.sweep();
  const last = publisher.of('cameras').at(-1)?.message.data as EntityChange;
  assert.deepEqual(last, { upserts: [], removes: ['c1'] });
  clock.advance(39_000);
  aggregator.sweep();
  assert.equal(aggregator.getTopicSnapshot('cameras').entities.length, 1);
  clock.advance(1_000);
  aggregator.sweep();
  assert.equal(aggregator.getTopicSnapshot('cameras').entities.length, 0);
  assert.equal(publisher.of('cameras').length, 3);
});

test('ingest validates all entities first and names the bad field', async (t) => {
  const { aggregator, publisher } = setup();
  t.after(() => aggregator.stop());
  await aggregator.start();
  const bad = aggregator.ingest('accidents', [accident('a1'), accident('a2', { severity: 9 })]);
  assert.deepEqual(bad, {
    ok: false,
    error: 'entities[1].severity: must be <= 5',
    field: 'entities[1].severity',
  });
  assert.equal(publisher.messages.length, 0, 'nothing applied');

  assert.deepEqual(aggregator.ingest('nope', []), {
    ok: false,
    error: 'unknown topic "nope"',
    field: 'topic',
  });
  assert.equal(aggregator.ingest('accidents', [], [''] as string[]).ok, false);

  const { updatedAt: _u, ...withoutTime } = accident('a1');
  const ok = aggregator.ingest('accidents', [withoutTime]);
  assert.deepEqual(ok, { ok: true, seq: 1 });
  const entity = aggregator.getTopicSnapshot('accidents').entities[0] as unknown as {
    source: string;
    updatedAt: string;
  };
  assert.equal(entity.source, 'ingest');
  assert.equal(entity.updatedAt, '2026-03-01T12:00:00.000Z');

  assert.deepEqual(aggregator.ingest('accidents', [], ['a1']), { ok: true, seq: 2 });
  const ingest = aggregator.sourceStatus().find((s) => s.name === 'ingest');
  assert.equal(ingest?.readings, 1);
  assert.equal(ingest?.rejected, 1);
});

test('ingest of air quality fills aqi and category from pm25', async (t) => {
  const { aggregator } = setup();
  t.after(() => aggregator.stop());
  const result = aggregator.ingest('airQuality', [
    { id: 's1', name: 'S1', location: { lat: 1, lon: 2 }, pm25: 40 },
  ]);
  assert.deepEqual(result, { ok: true, seq: 1 });
  const entity = aggregator.getTopicSnapshot('airQuality').entities[0] as unknown as {
    aqi: number;
    category: string;
  };
  assert.equal(entity.aqi, 112);
  assert.equal(entity.category, 'unhealthy-sensitive');
});

test('a failing source shows in sourceStatus and recovers on its next success', async (t) => {
  const { clock, source, aggregator } = setup();
  t.after(() => aggregator.stop());
  await aggregator.start();
  assert.equal(aggregator.isReady(), true);
  source.fail(new Error('HTTP 500'));
  let status = aggregator.sourceStatus()[0];
  assert.equal(status?.state, 'failing');
  assert.equal(status?.lastError, 'HTTP 500');
  assert.equal(status?.lastErrorAt, new Date(clock.ms).toISOString());
  assert.equal(status?.lastSuccessAt, null);
  clock.advance(5000);
  source.context?.reportSuccess();
  status = aggregator.sourceStatus()[0];
  assert.equal(status?.state, 'running');
  assert.equal(status?.lastSuccessAt, new Date(clock.ms).toISOString());
  assert.equal(status?.lastError, 'HTTP 500', 'the last error stays visible');
});

test('a source whose start throws is failing; the others run and the aggregator is ready', async (t) => {
  const good = new PushSource('good', ['cameras']);
  const broken = {
    name: 'broken',
    kind: 'test',
    topics: ['cameras'],
    start() {
      throw new Error('cannot start');
    },
    async stop() {},
  };
  const aggregator = new DataAggregator({ sources: [good, broken], alerts: false });
  t.after(() => aggregator.stop());
  await aggregator.start();
  assert.equal(aggregator.isReady(), true);
  assert.deepEqual(
    aggregator.sourceStatus().map((s) => [s.name, s.state]),
    [
      ['good', 'running'],
      ['broken', 'failing'],
    ],
  );
});

test('stop() is idempotent, stops every source and ignores later emits', async () => {
  const { source, aggregator, publisher } = setup();
  await aggregator.start();
  const ctx = source.context;
  await Promise.all([aggregator.stop(), aggregator.stop()]);
  await aggregator.stop();
  assert.equal(source.stopped, 1);
  assert.equal(aggregator.isReady(), false);
  ctx?.emit({ topic: 'cameras', upserts: [camera('late')] });
  assert.equal(publisher.messages.length, 0);
  assert.equal(aggregator.sourceStatus()[0]?.state, 'stopped');
});

test('unknown topics and duplicate source names are refused at construction', () => {
  assert.throws(
    () => new DataAggregator({ sources: [new PushSource('x', ['nope'])] }),
    /unknown topic "nope"/,
  );
  assert.throws(
    () =>
      new DataAggregator({ sources: [new PushSource('x', ['cameras']), new PushSource('x', ['weather'])] }),
    /duplicate source name/,
  );
});

test('the simulator fills every topic on start and keeps every reading valid', async (t) => {
  const clock = new ManualClock();
  const simulator = createSimulator({ seed: 7, intervalMs: 10_000 });
  const aggregator = new DataAggregator({ sources: [simulator], now: clock.now, alerts: false });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  t.after(() => aggregator.stop());
  await aggregator.start();
  const snap = aggregator.getSnapshot();
  assert.equal(snap.cameras?.entities.length, 12);
  assert.equal(snap.weather?.entities.length, 4);
  assert.equal(snap.airQuality?.entities.length, 7);
  assert.ok((snap.accidents?.entities.length ?? 0) >= 1);
  const status = aggregator.sourceStatus()[0];
  assert.equal(status?.rejected, 0);
  assert.ok((status?.readings ?? 0) >= 24);
  for (const topic of ['cameras', 'weather', 'accidents', 'airQuality']) {
    assert.equal(publisher.of(topic, 'UPDATE').length, 1, `${topic} published once`);
  }
});

/** A camera reading without a time of its own (the aggregator stamps `updatedAt`). */
function timeless(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const { updatedAt: _dropped, ...rest } = camera(id);
  return { ...rest, ...overrides };
}

test('a record without updatedAt that did not change publishes nothing and keeps the time of its last change', async (t) => {
  // Each case: the readings of a second report (one minute after the first: c1 and c2 without a time).
  const cases: ReadonlyArray<{
    name: string;
    second: (via: 'source' | 'ingest') => Record<string, unknown>[];
    changed: string[];
  }> = [
    { name: 'the same readings again', second: () => [timeless('c1'), timeless('c2')], changed: [] },
    { name: 'in another order', second: () => [timeless('c2'), timeless('c1')], changed: [] },
    {
      name: 'one field changed',
      second: () => [timeless('c1'), timeless('c2', { status: 'offline' })],
      changed: ['c2'],
    },
    {
      name: 'a field added',
      second: () => [timeless('c1', { area: 'Dam' }), timeless('c2')],
      changed: ['c1'],
    },
    {
      name: 'an explicit time equal to nothing stored',
      second: () => [timeless('c1', { updatedAt: '2026-03-01T12:05:00.000Z' }), timeless('c2')],
      changed: ['c1'],
    },
    {
      name: 'the same content from another reporter',
      second: (via) => [timeless('c1', { source: via === 'source' ? 'other' : 'feed-2' }), timeless('c2')],
      changed: ['c1'],
    },
  ];
  for (const via of ['source', 'ingest'] as const) {
    for (const { name, second, changed } of cases) {
      const { clock, source, aggregator, publisher } = setup();
      t.after(() => aggregator.stop());
      await aggregator.start();
      const report = (readings: Record<string, unknown>[]) => {
        if (via === 'source') source.emit({ topic: 'cameras', upserts: readings });
        else assert.ok(aggregator.ingest('cameras', readings).ok);
      };
      report([timeless('c1'), timeless('c2')]);
      const firstTime = new Date(clock.ms).toISOString();
      clock.advance(60_000);
      report(second(via));
      await aggregator.stop();

      const updates = publisher.of('cameras', 'UPDATE');
      const label = `${via}: ${name}`;
      assert.equal(updates.length, changed.length === 0 ? 1 : 2, label);
      const published = updates[1]?.message.data as EntityChange | undefined;
      assert.deepEqual(published?.upserts.map((e) => e.id) ?? [], changed, label);
      const snapshot = aggregator.getTopicSnapshot('cameras');
      assert.equal(snapshot.seq, updates.length, `${label}: no seq taken for an unchanged record`);
      for (const entity of snapshot.entities) {
        const expected = changed.includes(entity.id)
          ? (second(via).find((r) => r.id === entity.id)?.updatedAt ?? new Date(clock.ms).toISOString())
          : firstTime;
        assert.equal(entity.updatedAt, expected, `${label}: ${entity.id}'s updatedAt`);
      }
    }
  }
});

test('an unchanged record without updatedAt still refreshes its TTL', async (t) => {
  const { clock, source, aggregator, publisher } = setup({ ttlMs: { cameras: 60_000 } });
  t.after(() => aggregator.stop());
  await aggregator.start();
  source.emit({ topic: 'cameras', upserts: [timeless('c1')] });
  for (let i = 0; i < 5; i++) {
    clock.advance(40_000);
    source.emit({ topic: 'cameras', upserts: [timeless('c1')] });
    aggregator.sweep();
  }
  assert.equal(aggregator.getTopicSnapshot('cameras').entities.length, 1, 'seen every 40 s: never expires');
  assert.equal(publisher.of('cameras').length, 1, 'and never republished');
  clock.advance(60_000);
  aggregator.sweep();
  assert.deepEqual(publisher.of('cameras').at(-1)?.message.data, { upserts: [], removes: ['c1'] });
});
