/**
 * Property: one state model. Random sequences of raw UPDATE `data` (valid, invalid, bare entities, duplicate ids, an
 * upsert and a remove of the same id, unknown removes, opaque and malformed data) are driven through every
 * implementation of "how an UPDATE changes a topic's state", and every one holds the same entities after every step:
 * - the protocol's fold (`foldUpdate`, `src/protocol/state-model.ts`);
 * - the aggregator's state (`publishUpdate`, the path of `POST /api/publish`);
 * - the client SDK's `TopicStore`, fed the frames the aggregator published (folded by the SDK's default, the base
 *   rule) and, separately, the raw data itself (folded with the topic registry's validator, as the SDK allows);
 * - the Redis broker's stored state, through `WebSocketService.publish` (the library's path) on a real Redis with a
 *   key prefix of its own (skipped when no Redis answers).
 * Invalid data must be refused everywhere (no state change, no seq).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { TopicStore, toEntityChange } from '../../src/client/topic-store.js';
import { foldUpdate, parseUpdate, UpdateRejectedError } from '../../src/protocol/state-model.js';
import { defaultTopicRegistry } from '../../src/protocol/topic-registry.js';
import type { EntityBase } from '../../src/protocol/topics.js';
import { RecordingPublisher } from '../aggregator/helpers.js';
import { redisUp, startRedisService } from '../cluster/helpers.js';

const TOPIC = 'accidents';
const IDS = ['a', 'b', 'c', 'd'];
/** The topic's validator: the base rule and the accidents schema, compiled by the topic registry. */
const VALIDATE = defaultTopicRegistry().validator(TOPIC);

type Item =
  | { readonly kind: 'valid'; readonly id: string; readonly variant: number }
  | { readonly kind: 'invalid'; readonly id: string }
  | { readonly kind: 'bare'; readonly id: string };

interface Op {
  readonly shape: 'change' | 'opaque' | 'bareData' | 'extraKey' | 'badRemove' | 'upsertsNotArray';
  readonly upserts: readonly Item[];
  readonly removes: readonly string[];
}

function entity(id: string, variant: number): Record<string, unknown> {
  return {
    id,
    location: { lat: 52.36, lon: 4.9 },
    severity: 1 + (variant % 5),
    description: `collision ${variant}`,
    kind: 'collision',
    reportedAt: '2026-03-01T11:59:00.000Z',
    updatedAt: '2026-03-01T12:00:00.000Z',
    source: 'prop',
  };
}

function item(i: Item): Record<string, unknown> {
  switch (i.kind) {
    case 'valid':
      return entity(i.id, i.variant);
    case 'invalid':
      return { ...entity(i.id, 0), severity: 9 };
    case 'bare':
      return { id: i.id };
  }
}

/** The raw `data` of one UPDATE. */
function dataOf(op: Op): unknown {
  const upserts = op.upserts.map(item);
  switch (op.shape) {
    case 'change':
      return { upserts, removes: [...op.removes] };
    case 'opaque':
      return { n: op.removes.length };
    case 'bareData':
      return entity(op.upserts[0]?.id ?? 'a', 1);
    case 'extraKey':
      return { upserts, removes: [...op.removes], note: 'x' };
    case 'badRemove':
      return { upserts, removes: [...op.removes, 7] };
    case 'upsertsNotArray':
      return { upserts: upserts[0] ?? {}, removes: [] };
  }
}

const itemArb: fc.Arbitrary<Item> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('valid' as const),
      id: fc.constantFrom(...IDS),
      variant: fc.nat(9),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('invalid' as const), id: fc.constantFrom(...IDS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bare' as const), id: fc.constantFrom(...IDS) }) },
);
const opArb: fc.Arbitrary<Op> = fc.record({
  shape: fc.oneof(
    { weight: 12, arbitrary: fc.constant('change' as const) },
    { weight: 1, arbitrary: fc.constantFrom('opaque' as const, 'bareData' as const) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('extraKey' as const, 'badRemove' as const, 'upsertsNotArray' as const),
    },
  ),
  // Duplicate ids and an id both upserted and removed come from the small id pool; unknown removes too.
  upserts: fc.array(itemArb, { maxLength: 4 }),
  removes: fc.array(fc.constantFrom(...IDS, 'zz'), { maxLength: 3 }),
});
const opsArb = fc.array(opArb, { minLength: 1, maxLength: 12 });

/** Entities by id, in a canonical order (the order of a topic's entities carries no meaning). */
function canonical(entities: Iterable<EntityBase> | Iterable<unknown>): string[] {
  return [...(entities as Iterable<unknown>)].map((e) => JSON.stringify(e)).sort();
}

interface Implementations {
  fold: ReadonlyMap<string, EntityBase>;
  aggregator: DataAggregator;
  publisher: RecordingPublisher;
  frameStore: TopicStore;
  rawStore: TopicStore;
}

function fresh(): Implementations {
  const publisher = new RecordingPublisher();
  const aggregator = new DataAggregator({ topics: [TOPIC], alerts: false });
  aggregator.attach(publisher);
  const frameStore = new TopicStore();
  frameStore.applySnapshot({ entities: [], seq: 0, epoch: publisher.epoch });
  const rawStore = new TopicStore();
  rawStore.applySnapshot({ entities: [], seq: 0, epoch: 'raw' });
  return { fold: new Map(), aggregator, publisher, frameStore, rawStore };
}

/** Drives one op through the in-process implementations; returns whether the rule accepted it as a change. */
function step(impl: Implementations, op: Op, i: number): boolean {
  const data = dataOf(op);
  const accepted = parseUpdate(TOPIC, data, VALIDATE).ok;
  impl.fold = foldUpdate(TOPIC, impl.fold, data, VALIDATE);
  const before = impl.publisher.messages.length;
  const result = impl.aggregator.publishUpdate(TOPIC, data);
  assert.equal(
    result.ok,
    accepted,
    `aggregator accepts exactly what the rule accepts: ${JSON.stringify(data)}`,
  );
  assert.equal(impl.publisher.messages.length, before + (accepted ? 1 : 0), 'a refused UPDATE takes no seq');
  for (const published of impl.publisher.messages.slice(before)) {
    const change = toEntityChange(published.message.data, TOPIC);
    assert.notEqual(change, null, 'what the aggregator publishes is a valid change');
    const folded = impl.frameStore.fold({
      seq: published.position.seq,
      epoch: published.position.epoch,
      change,
    });
    assert.equal(folded, 'applied');
  }
  assert.equal(
    impl.rawStore.fold({ seq: i + 1, epoch: 'raw', change: toEntityChange(data, TOPIC, VALIDATE) }),
    'applied',
  );
  const expected = canonical(impl.fold.values());
  assert.deepEqual(canonical(impl.aggregator.getTopicSnapshot(TOPIC).entities), expected, 'aggregator');
  assert.deepEqual(
    canonical(impl.frameStore.entities.values()),
    expected,
    'TopicStore fed the published frames',
  );
  assert.deepEqual(canonical(impl.rawStore.entities.values()), expected, 'TopicStore fed the raw data');
  return accepted;
}

test('every in-process implementation folds random UPDATE sequences into the same state', () => {
  fc.assert(
    fc.property(opsArb, (ops) => {
      const impl = fresh();
      ops.forEach((op, i) => step(impl, op, i));
    }),
    { numRuns: 300 },
  );
});

test('the rule: duplicates (last wins), upsert+remove (removed), unknown remove, bare entity, partly invalid', () => {
  const a1 = entity('a', 1);
  const a2 = entity('a', 2);
  const cases: Array<[string, unknown, { upserts: unknown[]; removes: string[] } | string]> = [
    ['duplicate ids: the last wins', { upserts: [a1, a2] }, { upserts: [a2], removes: [] }],
    [
      'upsert and remove of one id: removed',
      { upserts: [a1], removes: ['a'] },
      { upserts: [], removes: ['a'] },
    ],
    ['unknown remove: valid', { removes: ['nobody'] }, { upserts: [], removes: ['nobody'] }],
    ['bare entity: refused (not a valid accident)', { upserts: [{ id: 'a' }] }, 'upserts[0].updatedAt'],
    [
      'partly invalid: the whole UPDATE refused',
      { upserts: [a1, { ...a2, severity: 9 }] },
      'upserts[1].severity',
    ],
    ['an id too long', { removes: ['x'.repeat(257)] }, 'removes[0]'],
    ['an unknown key', { upserts: [], extra: 1 }, 'extra'],
    ['not change-shaped', { id: 'a' }, ''],
  ];
  for (const [name, data, expected] of cases) {
    const result = parseUpdate(TOPIC, data, VALIDATE);
    if (typeof expected === 'string') {
      assert.equal(result.ok, false, name);
      if (!result.ok) assert.equal(result.field, expected, name);
    } else {
      assert.deepEqual(result.ok ? result.change : result, expected, name);
    }
  }
});

const up = await redisUp();

test(
  'the Redis broker stores the same state, through the library publish path; invalid changes take no seq',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 120_000 },
  async (t) => {
    const { service, broker } = await startRedisService(t, { topics: [TOPIC] });
    await fc.assert(
      fc.asyncProperty(opsArb, async (ops) => {
        await broker.redis.del(broker.key(TOPIC, 'state')); // a fresh state per run (seqs go on)
        const impl = fresh();
        for (const [i, op] of ops.entries()) {
          const accepted = step(impl, op, i);
          const data = dataOf(op);
          const seqBefore = Number(await broker.redis.hget(broker.key(TOPIC, 'meta'), 'seq'));
          const message = {
            type: 'UPDATE' as const,
            topic: TOPIC,
            data,
            timestamp: new Date().toISOString(),
          };
          if (
            accepted ||
            !(typeof data === 'object' && data !== null && ('upserts' in data || 'removes' in data))
          ) {
            await service.publish(TOPIC, message); // a valid change, or an opaque message: sequenced
            assert.equal(Number(await broker.redis.hget(broker.key(TOPIC, 'meta'), 'seq')), seqBefore + 1);
          } else {
            assert.throws(() => service.publish(TOPIC, message), UpdateRejectedError);
            assert.equal(
              Number(await broker.redis.hget(broker.key(TOPIC, 'meta'), 'seq')),
              seqBefore,
              'no seq',
            );
          }
          const snapshot = await broker.snapshot([TOPIC]);
          assert.deepEqual(
            canonical(snapshot[TOPIC]?.entities ?? []),
            canonical(impl.fold.values()),
            'Redis state',
          );
        }
      }),
      { numRuns: 40 },
    );
  },
);
