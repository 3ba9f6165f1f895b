/**
 * The dashboard's readers of hostile input (`web/topic-info.ts`): the `GET /api/topics` body, display hints,
 * dotted paths, positions and values. Tables of bad cases and fast-check properties: whatever the server or a
 * publisher sends, the readers return bounded, plain values and never throw.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  MAX_FIELDS,
  MAX_TEXT,
  MAX_TOPICS,
  defaultTopicInfo,
  displayName,
  formatValue,
  locationOf,
  readTopicInfo,
  readTopicsResponse,
  safeColor,
  truncate,
} from '../../web/topic-info.js';
import { readEntityPath as readPath } from '../../src/protocol/entity-path.js';

const parking = {
  name: 'parking',
  idField: 'garageId',
  locationField: 'position',
  display: {
    label: 'Parking',
    color: '#2f80ed',
    icon: 'P',
    fields: [{ field: 'free', label: 'Free', unit: 'spaces' }, { field: 'capacity' }],
  },
};

test('reads a well-formed /api/topics body as it is', () => {
  assert.deepEqual(readTopicsResponse({ topics: [parking] }), [parking]);
});

test('refuses bodies that are not the contract', () => {
  for (const body of [null, [], 'topics', 42, {}, { topics: 'parking' }, { topics: { 0: parking } }]) {
    assert.equal(readTopicsResponse(body), null, JSON.stringify(body));
  }
});

test('skips entries without a valid name, keeps each name once, bounds the count', () => {
  const bad = [
    null,
    'parking',
    {},
    { name: '' },
    { name: 42 },
    { name: 'a b' },
    { name: '<img src=x>' },
    { name: 'x'.repeat(65) },
    { name: '__proto__"' },
  ];
  assert.deepEqual(readTopicsResponse({ topics: bad }), []);
  assert.deepEqual(
    readTopicsResponse({ topics: [parking, { ...parking, display: { label: 'again' } }] })?.map(
      (t) => t.display.label,
    ),
    ['Parking'],
  );
  const many = Array.from({ length: 500 }, (_, i) => ({ name: `t${i}` }));
  assert.equal(readTopicsResponse({ topics: many })?.length, MAX_TOPICS);
});

test('bad display hints fall back to defaults', () => {
  const table: { hint: unknown; check: (info: NonNullable<ReturnType<typeof readTopicInfo>>) => void }[] = [
    { hint: { display: null }, check: (i) => assert.equal(i.display.label, 'x') },
    { hint: { display: { label: 7 } }, check: (i) => assert.equal(i.display.label, 'x') },
    { hint: { display: { label: 'L'.repeat(500) } }, check: (i) => assert.ok(i.display.label.length <= 48) },
    {
      hint: { display: { color: 'red;background:url(//evil)' } },
      check: (i) => assert.match(i.display.color, /^#/),
    },
    {
      hint: { display: { color: 'expression(alert(1))' } },
      check: (i) => assert.match(i.display.color, /^#/),
    },
    { hint: { display: { color: 'rgb(1,2,3)' } }, check: (i) => assert.equal(i.display.color, 'rgb(1,2,3)') },
    {
      hint: { display: { icon: '🚲🚲🚲🚲🚲🚲' } },
      check: (i) => assert.ok((i.display.icon ?? '').length <= 8),
    },
    { hint: { display: { fields: 'free' } }, check: (i) => assert.deepEqual(i.display.fields, []) },
    {
      hint: {
        display: {
          fields: [null, { field: '' }, { field: 'a..b' }, { field: 'a.b.c.d.e.f.g' }, { field: 3 }],
        },
      },
      check: (i) => assert.deepEqual(i.display.fields, []),
    },
    {
      hint: { display: { fields: Array.from({ length: 50 }, (_, n) => ({ field: `f${n}` })) } },
      check: (i) => assert.equal(i.display.fields.length, MAX_FIELDS),
    },
    { hint: { locationField: null }, check: (i) => assert.equal(i.locationField, null) },
    { hint: { locationField: 5 }, check: (i) => assert.equal(i.locationField, 'location') },
    { hint: { idField: {} }, check: (i) => assert.equal(i.idField, 'id') },
  ];
  for (const { hint, check } of table) {
    const info = readTopicInfo({ name: 'x', ...(hint as object) });
    assert.ok(info !== null, JSON.stringify(hint));
    check(info);
  }
});

test('any JSON as a topic list: never throws, every result bounded and coloured safely', () => {
  fc.assert(
    fc.property(
      fc.jsonValue({ maxDepth: 5 }),
      fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 8 }),
      (raw, items) => {
        for (const body of [
          raw,
          { topics: items },
          { topics: items.map((i) => ({ name: 'n', display: i })) },
        ]) {
          const topics = readTopicsResponse(body) ?? [];
          assert.ok(topics.length <= MAX_TOPICS);
          for (const info of topics) {
            assert.match(
              info.display.color,
              /^(#[0-9a-f]{3,8}|[a-z]{3,24}|(rgb|rgba|hsl|hsla)\([0-9.,%\s/-]{1,40}\))$/i,
            );
            assert.ok(info.display.fields.length <= MAX_FIELDS);
            assert.ok(info.display.label.length <= 48);
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('paths follow own keys only', () => {
  const entity = JSON.parse('{"id":"a","__proto__":{"polluted":1},"nested":{"deep":{"value":3}}}') as unknown;
  assert.equal(readPath(entity, 'nested.deep.value'), 3);
  assert.deepEqual(readPath(entity, '__proto__'), { polluted: 1 }, 'an own key named __proto__ is data');
  assert.equal(readPath({ id: 'a' }, 'constructor'), undefined);
  assert.equal(readPath({ id: 'a' }, 'toString'), undefined);
  assert.equal(readPath({ id: 'a' }, '__proto__.polluted'), undefined);
  assert.equal(readPath({ list: [1, 2] }, 'list.0'), undefined, 'arrays are not walked');
  assert.equal(readPath(null, 'a'), undefined);
});

test('positions: only finite coordinates in range', () => {
  const info = defaultTopicInfo('x');
  const table: [unknown, { lat: number; lon: number } | null][] = [
    [{ location: { lat: 52.1, lon: 4.9 } }, { lat: 52.1, lon: 4.9 }],
    [{ location: { lat: '52', lon: 4 } }, null],
    [{ location: { lat: 91, lon: 4 } }, null],
    [{ location: { lat: 1, lon: -181 } }, null],
    [{ location: { lat: Number.NaN, lon: 4 } }, null],
    [{ location: [52, 4] }, null],
    [{ location: null }, null],
    [{}, null],
  ];
  for (const [entity, expected] of table)
    assert.deepEqual(locationOf(info, entity), expected, JSON.stringify(entity));
  assert.equal(locationOf({ ...info, locationField: null }, { location: { lat: 1, lon: 1 } }), null);
});

test('values come out as short plain text', () => {
  const table: [unknown, string | undefined, string][] = [
    [42, 'spaces', '42 spaces'],
    [3.14159, undefined, '3.14'],
    [true, undefined, 'yes'],
    [false, undefined, 'no'],
    [undefined, 'm', '—'],
    [null, undefined, '—'],
    ['', undefined, '—'],
    [Number.POSITIVE_INFINITY, undefined, '—'],
    [[1, 2, 3], undefined, '[3 items]'],
    [{ a: 1 }, undefined, '{…}'],
    ['<b>bold</b>', undefined, '<b>bold</b>'],
  ];
  for (const [value, unit, expected] of table) assert.equal(formatValue(value, unit), expected);
  fc.assert(
    fc.property(fc.anything(), fc.option(fc.string(), { nil: undefined }), (value, unit) => {
      assert.ok(Array.from(formatValue(value, unit)).length <= MAX_TEXT);
    }),
    { numRuns: 300 },
  );
});

test('truncation counts code points and marks the cut', () => {
  assert.equal(truncate('short', 10), 'short');
  assert.equal(truncate('abcdefghijk', 5), 'abcd…');
  const emoji = '🚲'.repeat(100);
  const cut = truncate(emoji, 10);
  assert.equal(Array.from(cut).length, 10);
  assert.ok(cut.endsWith('…'));
  assert.equal(displayName({ id: 'i', name: 'n'.repeat(1000) }).length, MAX_TEXT);
  assert.equal(displayName({ id: 'i', name: 7 }), 'i');
  assert.equal(safeColor(undefined, 'parking'), safeColor(undefined, 'parking'), 'stable per name');
});
