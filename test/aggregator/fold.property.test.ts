/**
 * Property: for any stream of source readings (upserts, removes, complete batches, invalid readings, ingest, TTL
 * expiry driven by an injected clock), a client that takes a topic snapshot at any point and folds every later
 * UPDATE/ALERT of that topic holds exactly `getTopicSnapshot()` after every step, both with the pure fold of
 * `src/aggregator/fold.ts` and with the client SDK's `TopicStore`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { applyFrame, fromSnapshot, toTopicState } from '../../src/aggregator/fold.js';
import type { FoldedTopic } from '../../src/aggregator/fold.js';
import { TopicStore, toEntityChange, toSnapshotContent } from '../../src/client/topic-store.js';
import { ManualClock, PushSource, RecordingPublisher, accident, camera } from './helpers.js';

const TOPICS = ['cameras', 'accidents'] as const;
type Topic = (typeof TOPICS)[number];
const IDS = ['e0', 'e1', 'e2', 'e3', 'e4', 'e5'];

interface Reading {
  id: string;
  variant: number;
  valid: boolean;
}

type Command =
  | { kind: 'emit'; source: 0 | 1; topic: Topic; upserts: Reading[]; removes: string[]; complete: boolean }
  | { kind: 'ingest'; topic: Topic; upserts: Reading[]; removes: string[] }
  | { kind: 'tick'; ms: number }
  | { kind: 'join' };

const reading = fc.record({
  id: fc.constantFrom(...IDS),
  variant: fc.integer({ min: 0, max: 5 }),
  valid: fc.boolean(),
});
const topic = fc.constantFrom<Topic>(...TOPICS);
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('emit' as const),
      source: fc.constantFrom<0 | 1>(0, 1),
      topic,
      upserts: fc.array(reading, { maxLength: 5 }),
      removes: fc.array(fc.constantFrom(...IDS), { maxLength: 2 }),
      complete: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('ingest' as const),
      topic,
      upserts: fc.array(reading, { maxLength: 3 }),
      removes: fc.array(fc.constantFrom(...IDS), { maxLength: 2 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 40_000 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('join' as const) }) },
);

function entityOf(t: Topic, r: Reading): Record<string, unknown> {
  if (t === 'cameras') {
    return camera(r.id, {
      status: r.variant % 2 === 0 ? 'online' : 'offline',
      name: `cam ${r.variant}`,
      ...(r.valid ? {} : { location: { lat: 999, lon: 0 } }),
    });
  }
  // Severities 1..5 so the accident-severity rule raises and resolves ALERTs on the same topic.
  return accident(r.id, { severity: r.valid ? (r.variant === 0 ? 5 : r.variant) : 0 });
}

test('snapshot + folded UPDATEs equal getSnapshot() after every step', () => {
  fc.assert(
    fc.property(fc.array(command, { minLength: 1, maxLength: 60 }), (commands) => {
      const clock = new ManualClock();
      const sources = [new PushSource('s0', [...TOPICS]), new PushSource('s1', [...TOPICS])];
      const aggregator = new DataAggregator({
        sources,
        now: clock.now,
        ttlMs: { cameras: 60_000, accidents: 90_000 },
        alerts: { cameraOffline: { afterMs: 30_000 }, accidentSeverity: { minSeverity: 4 } },
      });
      const publisher = new RecordingPublisher();
      aggregator.attach(publisher);
      void aggregator.start();
      /** Clients: each joined at some point with a snapshot; `cursor` is the next published message to fold. */
      // The same stream is also folded by the client SDK's TopicStore, which must agree.
      const clients: { topic: Topic; state: FoldedTopic; store: TopicStore; cursor: number }[] = [];
      const join = (): void => {
        for (const t of TOPICS) {
          const snapshot = aggregator.getTopicSnapshot(t);
          const store = new TopicStore();
          store.applySnapshot(toSnapshotContent(snapshot));
          clients.push({ topic: t, state: fromSnapshot(snapshot), store, cursor: publisher.messages.length });
        }
      };
      join();
      try {
        for (const cmd of commands) {
          switch (cmd.kind) {
            case 'emit':
              sources[cmd.source]?.emit({
                topic: cmd.topic,
                upserts: cmd.upserts.map((r) => entityOf(cmd.topic, r)),
                removes: cmd.removes,
                complete: cmd.complete,
              });
              break;
            case 'ingest':
              aggregator.ingest(
                cmd.topic,
                cmd.upserts.map((r) => entityOf(cmd.topic, r)),
                cmd.removes,
              );
              break;
            case 'tick':
              clock.advance(cmd.ms);
              aggregator.sweep();
              break;
            case 'join':
              join();
              break;
          }
          for (const client of clients) {
            for (; client.cursor < publisher.messages.length; client.cursor++) {
              const published = publisher.messages[client.cursor];
              if (published === undefined || published.topic !== client.topic) continue;
              const result = applyFrame(client.state, { ...published.message, ...published.position });
              assert.ok(result.ok, `frame applies: ${JSON.stringify(result)}`);
              client.state = result.state;
              const change =
                published.message.type === 'UPDATE' ? toEntityChange(published.message.data) : null;
              assert.equal(client.store.fold({ ...published.position, change }), 'applied');
            }
            const expected = aggregator.getTopicSnapshot(client.topic);
            assert.deepEqual(toTopicState(client.state), expected);
            assert.deepEqual(
              [...client.store.entities.values()],
              expected.entities,
              'client SDK TopicStore agrees',
            );
            assert.equal(client.store.seq, expected.seq);
          }
          for (const t of TOPICS) {
            const last = publisher.of(t).at(-1);
            assert.equal(
              aggregator.getTopicSnapshot(t).seq,
              last?.position.seq ?? 0,
              'snapshot seq = last published seq',
            );
          }
        }
      } finally {
        void aggregator.stop();
      }
    }),
    { numRuns: 300 },
  );
});

test('the fold refuses gaps, foreign epochs and malformed frames, and ignores duplicates', () => {
  const base = fromSnapshot({
    entities: [{ id: 'a', updatedAt: 'x', source: 's' }],
    seq: 3,
    epoch: 'E',
    alerts: [],
  });
  const update = (seq: number, epoch = 'E', data: unknown = { upserts: [], removes: ['a'] }) => ({
    type: 'UPDATE',
    seq,
    epoch,
    data,
  });
  assert.deepEqual(applyFrame(base, update(5)), { ok: false, reason: 'gap' });
  assert.deepEqual(applyFrame(base, update(4, 'F')), { ok: false, reason: 'epoch' });
  assert.deepEqual(applyFrame(base, update(4, 'E', { upserts: [{ noId: 1 }] })), {
    ok: false,
    reason: 'malformed',
  });
  assert.deepEqual(applyFrame(base, update(3)), { ok: true, state: base });
  assert.deepEqual(applyFrame(base, update(4, 'E', { upserts: 'x' })), { ok: false, reason: 'malformed' });
  const raw = applyFrame(base, update(4, 'E', { anything: 'published raw' }));
  assert.deepEqual(raw, { ok: true, state: { ...base, seq: 4 } }, 'a raw publish only advances seq');
  const applied = applyFrame(base, update(4));
  assert.ok(applied.ok);
  assert.equal(applied.state.entities.size, 0);
  assert.equal(base.entities.size, 1, 'input state untouched');
});
