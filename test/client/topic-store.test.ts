import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MAX_HELD_FRAMES,
  TopicStore,
  toEntityChange,
  toSnapshotContent,
} from '../../src/client/topic-store.js';
import type { EntityBase } from '../../src/protocol/topics.js';

function entity(id: string, extra: Record<string, unknown> = {}): EntityBase {
  return { id, updatedAt: '2026-01-01T00:00:00.000Z', source: 'test', ...extra } as EntityBase;
}

function ids(store: TopicStore): string[] {
  return [...store.entities.keys()].sort();
}

test('toEntityChange reads a valid {upserts, removes} by the protocol rule, normalised, and nothing else', () => {
  const cases: Array<[unknown, unknown]> = [
    [
      { upserts: [entity('a')], removes: ['b'] },
      { upserts: [entity('a')], removes: ['b'] },
    ],
    // The protocol's one rule: all or nothing, no bare entity as data, each id once, removes after upserts.
    [{ upserts: [entity('a'), { no: 'id' }, 3] }, null],
    [{ removes: ['x', 4] }, null],
    [{ removes: ['x', 'x'] }, { upserts: [], removes: ['x'] }],
    [
      { upserts: [entity('a'), entity('b')], removes: ['a'] },
      { upserts: [entity('b')], removes: ['a'] },
    ],
    [{ upserts: [{ id: 'bare' }] }, null],
    [entity('solo'), null],
    [{ upserts: [], extra: 1 }, null],
    [{ message: 'hello' }, null],
    ['text', null],
    [null, null],
    [[entity('a')], null],
  ];
  for (const [input, expected] of cases)
    assert.deepEqual(toEntityChange(input), expected, JSON.stringify(input));
});

test('toSnapshotContent reads a TopicState, an array or an id map; envelope seq/epoch win', () => {
  assert.deepEqual(toSnapshotContent({ entities: [entity('a')], seq: 4, epoch: 'e1' }), {
    entities: [entity('a')],
    alerts: [],
    seq: 4,
    epoch: 'e1',
  });
  assert.deepEqual(toSnapshotContent({ entities: [entity('a')], seq: 4, epoch: 'e1' }, 9, 'e2'), {
    entities: [entity('a')],
    alerts: [],
    seq: 9,
    epoch: 'e2',
  });
  assert.deepEqual(toSnapshotContent([entity('a'), 'junk']), {
    entities: [entity('a')],
    alerts: [],
    seq: undefined,
    epoch: undefined,
  });
  assert.deepEqual(toSnapshotContent({ a: entity('a'), b: entity('b') }).entities.length, 2);
  assert.deepEqual(toSnapshotContent(null).entities, []);
  const alerts = [{ id: 'x', message: 'm' }, 'junk'];
  assert.deepEqual(toSnapshotContent({ entities: [], seq: 1, alerts }).alerts, alerts);
});

test('a snapshot sets the active alerts by the rule; sequenced ALERTs fold; unsequenced ones are transient', () => {
  const store = new TopicStore();
  const raised = (id: string, extra: Record<string, unknown> = {}) => ({ id, message: id, ...extra });
  store.applySnapshot(
    toSnapshotContent({
      entities: [],
      seq: 3,
      epoch: 'e',
      alerts: [raised('a'), 'junk', { message: 'no id' }],
    }),
  );
  assert.deepEqual([...store.alerts.keys()], ['a']);
  const alert = (seq: number | undefined, data: unknown) => ({
    seq,
    epoch: 'e',
    change: null,
    alert: { data },
  });
  assert.equal(store.fold(alert(4, raised('b'))), 'applied');
  assert.equal(store.fold(alert(5, raised('a', { state: 'resolved' }))), 'applied');
  assert.equal(store.fold(alert(undefined, raised('c'))), 'applied');
  assert.equal(store.fold(alert(6, raised('b', { message: 'again' }))), 'applied');
  assert.deepEqual([...store.alerts.values()], [raised('b', { message: 'again' })]);
  store.reset();
  assert.equal(store.alerts.size, 0);
});

test('folds contiguous frames, ignores stale ones, reports gaps and epoch changes', () => {
  const store = new TopicStore();
  store.applySnapshot({ entities: [entity('a'), entity('b')], seq: 10, epoch: 'e1' });
  assert.deepEqual(store.position, { epoch: 'e1', seq: 10 });

  assert.equal(
    store.fold({ seq: 10, epoch: 'e1', change: { upserts: [entity('stale')], removes: [] } }),
    'stale',
  );
  assert.equal(
    store.fold({ seq: 11, epoch: 'e1', change: { upserts: [entity('c')], removes: ['a'] } }),
    'applied',
  );
  assert.deepEqual(ids(store), ['b', 'c']);
  assert.equal(
    store.fold({ seq: 13, epoch: 'e1', change: { upserts: [entity('gap')], removes: [] } }),
    'gap',
  );
  assert.equal(
    store.fold({ seq: 12, epoch: 'e2', change: { upserts: [entity('other')], removes: [] } }),
    'gap',
  );
  // An ALERT advances the seq without touching entities.
  assert.equal(store.fold({ seq: 12, epoch: 'e1', change: null }), 'applied');
  assert.equal(store.seq, 12);
  assert.deepEqual(ids(store), ['b', 'c']);
});

test('upserts replace whole entities', () => {
  const store = new TopicStore();
  store.applySnapshot({ entities: [entity('a', { v: 1, old: true })], seq: 0, epoch: undefined });
  store.fold({ seq: 1, change: { upserts: [entity('a', { v: 2 })], removes: [] } });
  assert.deepEqual(store.entities.get('a'), entity('a', { v: 2 }));
});

test('frames before the first snapshot are held and replayed onto it, in seq order', () => {
  const store = new TopicStore();
  assert.equal(store.fold({ seq: 7, change: { upserts: [entity('late')], removes: [] } }), 'held');
  assert.equal(store.fold({ seq: 6, change: { upserts: [entity('early')], removes: [] } }), 'held');
  assert.equal(store.fold({ seq: 5, change: { upserts: [entity('covered')], removes: [] } }), 'held');
  store.applySnapshot({ entities: [entity('base')], seq: 5, epoch: 'e' });
  assert.deepEqual(ids(store), ['base', 'early', 'late']);
  assert.equal(store.seq, 7);
});

test('held frames are bounded', () => {
  const store = new TopicStore();
  for (let seq = 1; seq <= MAX_HELD_FRAMES + 10; seq++) {
    store.fold({ seq, change: { upserts: [entity(`e${seq}`)], removes: [] } });
  }
  // The oldest ten were dropped: replaying from seq 0 stops at the first gap.
  store.applySnapshot({ entities: [], seq: 0, epoch: 'e' });
  assert.equal(store.entities.size, 0);
  assert.equal(store.seq, 0);
});

test('a snapshot older than the state within one epoch is ignored; a new epoch always wins', () => {
  const store = new TopicStore();
  store.applySnapshot({ entities: [entity('a')], seq: 8, epoch: 'e1' });
  assert.equal(store.applySnapshot({ entities: [entity('old')], seq: 3, epoch: 'e1' }), false);
  assert.deepEqual(ids(store), ['a']);
  assert.equal(store.applySnapshot({ entities: [entity('new')], seq: 1, epoch: 'e2' }), true);
  assert.deepEqual(ids(store), ['new']);
  assert.deepEqual(store.position, { epoch: 'e2', seq: 1 });
  // A server without epochs (a restart resets seq): the snapshot is authoritative.
  const plain = new TopicStore();
  plain.applySnapshot({ entities: [entity('a')], seq: 50, epoch: undefined });
  assert.equal(plain.applySnapshot({ entities: [entity('b')], seq: 0, epoch: undefined }), true);
  assert.deepEqual(ids(plain), ['b']);
  assert.equal(plain.position, undefined);
});

test('frames without seq are applied unordered; reset forgets everything', () => {
  const store = new TopicStore();
  assert.equal(store.fold({ change: { upserts: [entity('x')], removes: [] } }), 'applied');
  assert.deepEqual(ids(store), ['x']);
  store.reset();
  assert.equal(store.entities.size, 0);
  assert.equal(store.hasBaseline, false);
});
