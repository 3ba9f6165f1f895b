/**
 * Property: active alerts are one rule. Random sequences of ALERTs (raised, raised without a state, resolved, resolved
 * for an unknown id, id-less, another state, a non-string or too long id, duplicates, floods of new ids past the
 * bound of 256) interleaved with UPDATEs are driven through every implementation, and all hold the same active
 * alerts, in the same order, after every step:
 * - the protocol's rule (`applyAlert` on a Map), the reference;
 * - the pure fold of `src/aggregator/fold.ts` (`applyFrame`);
 * - the aggregator attached to a real `WebSocketService`: ALERTs published by others through the library's
 *   `publish` reach it through `onChange`; its `getTopicSnapshot()` at seq N holds every ALERT up to N;
 * - the client SDK's `TopicStore` fed the sequenced frames, and a late joiner's store that took a snapshot midway;
 * - the Redis state (the publish script's alerts hash) read by a snapshot, through the library publish path on a
 *   real Redis with its own key prefix (skipped when no Redis answers).
 * The stored set never exceeds 256.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WebSocketServer } from 'ws';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { applyFrame, fromSnapshot, type FoldedTopic } from '../../src/aggregator/fold.js';
import { TopicStore, toSnapshotContent } from '../../src/client/topic-store.js';
import { WebSocketService } from '../../src/gateway/websocket-service.js';
import {
  MAX_ACTIVE_ALERTS,
  MAX_ACTIVE_ALERT_SIZE,
  alertEffect,
  applyAlert,
} from '../../src/protocol/alert-state.js';
import type { WebSocketMessage } from '../../src/protocol/messages.js';
import { redisUp, startRedisService } from '../cluster/helpers.js';
import { accident } from '../aggregator/helpers.js';

const TOPIC = 'accidents';
const IDS = ['a', 'b', 'c', 'd', 'e'];

type Op =
  | { readonly kind: 'raise'; readonly id: string; readonly stateless: boolean; readonly v: number }
  | { readonly kind: 'resolve'; readonly id: string }
  | {
      readonly kind: 'transient';
      readonly shape: 'noId' | 'otherState' | 'numericId' | 'longId' | 'string' | 'oversize';
    }
  | { readonly kind: 'flood'; readonly tag: number; readonly count: number }
  | { readonly kind: 'update'; readonly id: string }
  | { readonly kind: 'join' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('raise' as const),
      id: fc.constantFrom(...IDS),
      stateless: fc.boolean(),
      v: fc.nat(3),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('resolve' as const), id: fc.constantFrom(...IDS, 'nobody') }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('transient' as const),
      shape: fc.constantFrom(
        'noId' as const,
        'otherState' as const,
        'numericId' as const,
        'longId' as const,
        'string' as const,
        'oversize' as const,
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('flood' as const),
      tag: fc.nat(1),
      count: fc.integer({ min: 1, max: 300 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('update' as const), id: fc.constantFrom(...IDS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('join' as const) }) },
);
const opsArb = fc.array(opArb, { minLength: 1, maxLength: 14 });

/** The messages one op publishes, in order. */
function messagesOf(op: Op): WebSocketMessage[] {
  const timestamp = '2026-03-01T12:00:00.000Z';
  const alert = (data: unknown): WebSocketMessage => ({ type: 'ALERT', topic: TOPIC, data, timestamp });
  switch (op.kind) {
    case 'raise':
      return [
        alert({
          id: op.id,
          ...(op.stateless ? {} : { state: 'raised' }),
          message: `alert ${op.id} v${op.v}`,
          severity: 'warning',
        }),
      ];
    case 'resolve':
      return [alert({ id: op.id, state: 'resolved', message: `alert ${op.id} over` })];
    case 'transient':
      return [
        alert(
          {
            noId: { message: 'no id', severity: 'info' },
            otherState: { id: 'a', state: 'acknowledged', message: 'neither' },
            numericId: { id: 7, message: 'numeric id' },
            longId: { id: 'x'.repeat(257), message: 'too long' },
            string: 'a bare string',
            oversize: { id: 'b', message: 'x'.repeat(MAX_ACTIVE_ALERT_SIZE) },
          }[op.shape],
        ),
      ];
    case 'flood':
      return Array.from({ length: op.count }, (_, j) =>
        alert({ id: `flood-${op.tag}-${j}`, message: `flood ${j}`, severity: 'critical' }),
      );
    case 'update':
      return [
        {
          type: 'UPDATE',
          topic: TOPIC,
          data: { upserts: [accident(op.id, { source: 'prop' })], removes: [] },
          timestamp,
        },
      ];
    case 'join':
      return [];
  }
}

/** A service with the in-memory broker and an aggregator attached, as `createServer` wires them. */
function singleNode(): { service: WebSocketService; aggregator: DataAggregator; close: () => Promise<void> } {
  const wss = new WebSocketServer({ noServer: true });
  const service = new WebSocketService(wss, { topics: [TOPIC], heartbeatIntervalMs: 60_000 });
  const aggregator = new DataAggregator({ topics: [TOPIC], alerts: false });
  aggregator.attach(service);
  return {
    service,
    aggregator,
    close: async () => {
      await service.close();
      wss.close();
    },
  };
}

test('the rule: raise, re-raise keeps its place, resolve, transient shapes, the bound', () => {
  const active = new Map<string, unknown>();
  assert.equal(applyAlert(active, { id: 'a', message: 'one' }), true);
  assert.equal(applyAlert(active, { id: 'b', state: 'raised', message: 'two' }), true);
  assert.equal(applyAlert(active, { id: 'a', message: 'one again' }), true);
  assert.deepEqual([...active.keys()], ['a', 'b'], 're-raised keeps its place');
  assert.deepEqual(active.get('a'), { id: 'a', message: 'one again' });
  const transient: unknown[] = [
    { message: 'no id' },
    { id: '', message: 'empty id' },
    { id: 'x'.repeat(257) },
    { id: 3 },
    { id: 'a', state: 'acknowledged' },
    { id: 'a', state: null },
    'text',
    null,
    [{ id: 'a' }],
    { id: 'a', message: 'x'.repeat(MAX_ACTIVE_ALERT_SIZE) },
  ];
  for (const data of transient) {
    assert.equal(alertEffect(data), null, JSON.stringify(data));
    assert.equal(applyAlert(active, data), false, JSON.stringify(data));
  }
  assert.equal(applyAlert(active, { id: 'zz', state: 'resolved' }), false, 'unknown resolve changes nothing');
  assert.equal(applyAlert(active, { id: 'a', state: 'resolved' }), true);
  assert.deepEqual([...active.keys()], ['b']);
  for (let i = 0; i < 1000; i++) applyAlert(active, { id: `n${i}` });
  assert.equal(active.size, MAX_ACTIVE_ALERTS);
  assert.equal(applyAlert(active, { id: 'b', message: 'still replaces at the bound' }), true);
  assert.equal(applyAlert(active, { id: 'n999' }), false, 'a new id past the bound is not kept');
});

test('every in-process implementation holds the same active alerts after every step', async () => {
  await fc.assert(
    fc.asyncProperty(opsArb, async (ops) => {
      const node = singleNode();
      try {
        const reference = new Map<string, unknown>();
        let folded: FoldedTopic = fromSnapshot(node.aggregator.getTopicSnapshot(TOPIC));
        const stores = [new TopicStore()];
        stores[0]?.applySnapshot(toSnapshotContent(node.aggregator.getTopicSnapshot(TOPIC)));
        for (const op of ops) {
          if (op.kind === 'join') {
            const late = new TopicStore();
            late.applySnapshot(toSnapshotContent(node.aggregator.getTopicSnapshot(TOPIC)));
            stores.push(late);
          }
          for (const message of messagesOf(op)) {
            const position = await node.service.publish(TOPIC, message);
            if (message.type === 'ALERT') applyAlert(reference, message.data);
            const frame = { ...message, seq: position.seq, epoch: position.epoch };
            const result = applyFrame(folded, frame);
            assert.ok(result.ok);
            folded = result.state;
            for (const store of stores) {
              const alert = message.type === 'ALERT' ? { data: message.data } : undefined;
              assert.equal(store.fold({ ...position, change: null, alert }), 'applied');
            }
            const snapshot = node.aggregator.getTopicSnapshot(TOPIC);
            assert.equal(snapshot.seq, position.seq, 'the snapshot covers the message');
            const expected = [...reference.values()];
            assert.deepEqual(snapshot.alerts, expected, 'aggregator snapshot');
            assert.deepEqual([...folded.alerts.values()], expected, 'applyFrame');
            for (const store of stores) assert.deepEqual([...store.alerts.values()], expected, 'TopicStore');
          }
          assert.ok(reference.size <= MAX_ACTIVE_ALERTS);
        }
      } finally {
        await node.close();
      }
    }),
    { numRuns: 150 },
  );
});

const up = await redisUp();

test(
  'the Redis state holds the same active alerts, in order, through the library publish path',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 180_000 },
  async (t) => {
    const { service, broker } = await startRedisService(t, { topics: [TOPIC], heartbeatIntervalMs: 60_000 });
    await fc.assert(
      fc.asyncProperty(opsArb, async (ops) => {
        await broker.redis.del(broker.key(TOPIC, 'alerts'), broker.key(TOPIC, 'state')); // fresh per run
        const reference = new Map<string, unknown>();
        for (const op of ops) {
          for (const message of messagesOf(op)) {
            await service.publish(TOPIC, message);
            if (message.type === 'ALERT') applyAlert(reference, message.data);
          }
          const snapshot = (await broker.snapshot([TOPIC]))[TOPIC];
          assert.deepEqual(snapshot?.alerts, [...reference.values()], 'Redis state');
          assert.ok((await broker.redis.hlen(broker.key(TOPIC, 'alerts'))) <= MAX_ACTIVE_ALERTS);
        }
      }),
      { numRuns: 25 },
    );
  },
);
