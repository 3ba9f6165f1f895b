import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AlertEngine } from '../../src/aggregator/alerts.js';
import { MAX_ALERT_MESSAGE_LENGTH, compare, renderMessage } from '../../src/aggregator/threshold-alerts.js';
import { readEntityPath as valueAt } from '../../src/protocol/entity-path.js';
import type { ThresholdOperator, ThresholdRule } from '../../src/protocol/topic-definition.js';
import type { CityAlert, EntityBase } from '../../src/protocol/topics.js';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { createTopicRegistry } from '../../src/protocol/topic-registry.js';
import { ManualClock, RecordingPublisher } from './helpers.js';

const garage = (id: string, free: unknown, extra: Record<string, unknown> = {}): EntityBase =>
  ({
    id,
    updatedAt: '2026-03-01T12:00:00.000Z',
    source: 's',
    name: `Garage ${id}`,
    free,
    ...extra,
  }) as EntityBase;

const FULL: ThresholdRule = {
  name: 'parking-full',
  field: 'free',
  op: '<=',
  value: 5,
  severity: 'warning',
  message: '{name}: {free} free',
};
const summary = (alerts: CityAlert[]) => alerts.map((a) => `${a.id}:${a.state}`);

test('compare: a table of operators, types and missing values', () => {
  const cases: [unknown, ThresholdOperator, number | string | boolean, boolean][] = [
    [5, '<=', 5, true],
    [6, '<=', 5, false],
    [5, '<', 5, false],
    [6, '>', 5, true],
    [5, '>=', 5, true],
    [5, '==', 5, true],
    [5, '!=', 5, false],
    ['5', '==', 5, false], // strict
    ['5', '<=', 5, false], // a string never orders against a number
    ['b', '>', 'a', true], // strings order among themselves
    [true, '==', true, true],
    [false, '!=', true, true],
    [undefined, '!=', 5, false], // a missing field compares false, even with !=
    [null, '==', 5, false],
    [{ a: 1 }, '!=', 5, false],
    [[5], '==', 5, false],
    [Number.NaN, '<', 5, false],
    [Infinity, '>', 5, false],
  ];
  for (const [actual, op, expected, result] of cases)
    assert.equal(compare(actual, op, expected), result, `${String(actual)} ${op} ${String(expected)}`);
});

test("rule fields are read by the protocol's readEntityPath: own dotted paths only", () => {
  assert.equal(valueAt({ a: { b: 2 } }, 'a.b'), 2);
  assert.equal(valueAt({ a: { b: 2 } }, 'a.c'), undefined);
  assert.equal(valueAt({ a: 1 }, 'constructor'), undefined);
  assert.equal(valueAt({ a: 1 }, '__proto__'), undefined);
  assert.equal(valueAt({ a: 'x' }, 'a.length'), undefined);
});

test('renderMessage substitutes once, never recursively, and stays bounded', () => {
  assert.equal(renderMessage('{name}: {free} free, {missing}', garage('g', 3)), 'Garage g: 3 free, ?');
  // A value holding a placeholder is not expanded again.
  assert.equal(renderMessage('{name}', garage('g', 3, { name: '{free}' })), '{free}');
  assert.equal(renderMessage('{loc}', garage('g', 3, { loc: { lat: 1 } })), '{"lat":1}');
  fc.assert(
    fc.property(
      fc.string({ maxLength: 2000 }),
      fc.dictionary(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 10 }),
      (template, entity) => {
        const out = renderMessage(template, entity);
        assert.ok(out.length <= MAX_ALERT_MESSAGE_LENGTH);
      },
    ),
    { numRuns: 300 },
  );
  const many = '{name}'.repeat(100);
  assert.ok(
    renderMessage(many, garage('g', 1, { name: 'x'.repeat(1000) })).length <= MAX_ALERT_MESSAGE_LENGTH,
  );
});

test('a threshold rule raises once when the comparison turns true and resolves once when it turns false', () => {
  const clock = new ManualClock();
  const engine = new AlertEngine({}, clock.now, (topic) => (topic === 'parking' ? [FULL] : []));
  const run = (free: unknown) => summary(engine.onChange('parking', [garage('g1', free)], []));
  assert.deepEqual(run(20), []);
  assert.deepEqual(run(5), ['parking-full:parking:g1:raised']);
  assert.deepEqual(run(3), [], 'still true: not raised again');
  assert.deepEqual(run(6), ['parking-full:parking:g1:resolved']);
  assert.deepEqual(run(7), [], 'still false: not resolved again');
  const [raised] = engine.onChange('parking', [garage('g1', 0)], []);
  assert.deepEqual(raised, {
    id: 'parking-full:parking:g1',
    rule: 'parking-full',
    severity: 'warning',
    topic: 'parking',
    entityId: 'g1',
    message: 'Garage g1: 0 free',
    raisedAt: '2026-03-01T12:00:00.000Z',
    state: 'raised',
  });
  assert.deepEqual(engine.activeAlerts(), [raised]);
  assert.deepEqual(
    run(undefined),
    ['parking-full:parking:g1:resolved'],
    'a field that goes missing resolves',
  );
  // Removal resolves; other topics never see the rule.
  engine.onChange('parking', [garage('g2', 1)], []);
  assert.deepEqual(summary(engine.onChange('other', [garage('g2', 1)], [])), []);
  clock.advance(1000);
  const [resolved] = engine.onChange('parking', [], ['g2']);
  assert.equal(resolved?.id, 'parking-full:parking:g2');
  assert.equal(resolved?.resolvedAt, '2026-03-01T12:00:01.000Z');
  assert.deepEqual(engine.activeAlerts(), []);
});

test('threshold rules on a city topic run beside its built-in rule, with distinct ids', () => {
  const clock = new ManualClock();
  const rule: ThresholdRule = { ...FULL, name: 'accident-severity', field: 'severity', op: '>=', value: 2 };
  const engine = new AlertEngine({ accidentSeverity: { minSeverity: 4 } }, clock.now, (t) =>
    t === 'accidents' ? [rule] : [],
  );
  const accident = {
    id: 'a1',
    updatedAt: '2026-03-01T12:00:00.000Z',
    source: 's',
    severity: 5,
    kind: 'collision',
    description: 'x',
  } as unknown as EntityBase;
  const out = engine.onChange('accidents', [accident], []);
  assert.equal(out.length, 2);
  assert.equal(new Set(out.map((a) => a.id)).size, 2);
  assert.ok(out.some((a) => a.id === 'accident-severity:accidents:a1'));
  assert.equal(engine.onChange('accidents', [], ['a1']).length, 2);
  assert.deepEqual(engine.activeAlerts(), []);
});

test('property: the alerts of a rule alternate raised/resolved per entity and match the last state', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          entity: fc.constantFrom('a', 'b', 'c'),
          free: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
          remove: fc.boolean(),
        }),
        { maxLength: 60 },
      ),
      (steps) => {
        const engine = new AlertEngine(
          {},
          () => 0,
          () => [FULL],
        );
        const last = new Map<string, string>();
        const expected = new Map<string, boolean>();
        for (const step of steps) {
          const out = step.remove
            ? engine.onChange('parking', [], [step.entity])
            : engine.onChange('parking', [garage(step.entity, step.free)], []);
          for (const alert of out) {
            assert.notEqual(last.get(alert.entityId), alert.state, 'states alternate');
            last.set(alert.entityId, alert.state);
          }
          expected.set(step.entity, !step.remove && step.free !== undefined && step.free <= 5);
        }
        const active = new Set(engine.activeAlerts().map((a) => a.entityId));
        for (const [entity, on] of expected) assert.equal(active.has(entity), on, entity);
      },
    ),
    { numRuns: 200 },
  );
});

test('the aggregator runs a topic definition’s threshold rules, even with the built-in rules off', () => {
  const clock = new ManualClock();
  const registry = createTopicRegistry([
    {
      name: 'parking',
      idField: 'id',
      locationField: null,
      display: { label: 'Parking', color: '#000', fields: [] },
      schema: { type: 'object', properties: { free: { type: 'integer' } } },
      ttlMs: 0,
      alerts: [FULL],
    },
  ]);
  const aggregator = new DataAggregator({ registry, alerts: false, now: clock.now });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  assert.equal(aggregator.ingest('parking', [{ id: 'g1', name: 'North', free: 2 }]).ok, true);
  assert.deepEqual(summary(aggregator.activeAlerts()), ['parking-full:parking:g1:raised']);
  assert.equal(aggregator.ingest('parking', [{ id: 'g1', name: 'North', free: 50 }]).ok, true);
  assert.deepEqual(aggregator.activeAlerts(), []);
  const alerts = publisher.messages
    .filter((m) => m.message.type === 'ALERT')
    .map((m) => m.message.data as CityAlert);
  assert.deepEqual(summary(alerts), ['parking-full:parking:g1:raised', 'parking-full:parking:g1:resolved']);
});
