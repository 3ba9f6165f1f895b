/**
 * The topic registry (`src/protocol/topic-registry.ts`) and the catalog of built-in topics: a table per built-in
 * topic of valid and invalid entities (every rule of the old hand-written validators keeps its verdict, and the
 * first bad field is named as before), the schemas a registry refuses (outside `$ref`, long patterns, bad names,
 * duplicates), and a fast-check property that a validator never throws and never accepts an entity over the JSON
 * bounds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BUILTIN_TOPICS } from '../../src/protocol/catalog/index.js';
import { DEFAULT_JSON_BOUNDS, checkJsonBounds } from '../../src/protocol/json-bounds.js';
import { DEFAULT_TOPICS } from '../../src/protocol/messages.js';
import { validateBase } from '../../src/protocol/state-model.js';
import type { TopicDefinition } from '../../src/protocol/topic-definition.js';
import {
  MAX_SCHEMA_PATTERN_LENGTH,
  MAX_SCHEMA_PATTERNS,
  TopicRegistry,
  TopicRegistryError,
  createTopicRegistry,
  defaultTopicRegistry,
  genericTopicDefinition,
  resolveTopicRegistry,
} from '../../src/protocol/topic-registry.js';

const REGISTRY = createTopicRegistry(Object.values(BUILTIN_TOPICS));
const BASE = { updatedAt: '2026-03-01T12:00:00.000Z', source: 'test' };
const AT = { lat: 52.37, lon: 4.89 };

const VALID: Record<string, Record<string, unknown>> = {
  cameras: { id: 'c', ...BASE, name: 'C', location: AT, status: 'online' },
  weather: { id: 'w', ...BASE, name: 'W', location: AT, temperatureC: 10, condition: 'clear' },
  accidents: {
    id: 'a',
    ...BASE,
    location: AT,
    severity: 2,
    description: 'Collision',
    kind: 'collision',
    reportedAt: '2026-03-01T11:59:00.000Z',
  },
  airQuality: { id: 's', ...BASE, name: 'S', location: AT, aqi: 42, category: 'good' },
  transit: { id: 'v1', ...BASE, location: AT },
  bikes: {
    id: 'st1',
    ...BASE,
    name: 'Dam',
    location: AT,
    kind: 'station',
    bikesAvailable: 3,
    docksAvailable: 7,
  },
};

const entity = (topic: string, overrides: Record<string, unknown> = {}): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...VALID[topic], ...overrides };
  for (const [key, value] of Object.entries(overrides)) if (value === undefined) delete out[key];
  return out;
};

/** [topic, overrides, expected: true (valid) or the first bad field]. */
const CASES: [string, Record<string, unknown>, true | string][] = [
  // the base rule, on every topic
  ...Object.keys(VALID).flatMap((topic): [string, Record<string, unknown>, true | string][] => [
    [topic, {}, true],
    [topic, { id: '' }, 'id'],
    [topic, { id: 'x'.repeat(257) }, 'id'],
    [topic, { id: 7 }, 'id'],
    [topic, { updatedAt: 'yesterday' }, 'updatedAt'],
    [topic, { updatedAt: `2026-03-01T12:00:00.000Z${' '.repeat(60)}` }, 'updatedAt'],
    [topic, { source: '' }, 'source'],
    [topic, { source: 'x'.repeat(2001) }, 'source'],
    [topic, { source: undefined }, 'source'],
    [topic, { location: [1, 2] }, 'location'],
    [topic, { location: { lat: 1 } }, 'location.lon'],
    [topic, { location: { lat: 91, lon: 0 } }, 'location.lat'],
    [topic, { location: { lat: 0, lon: -180.5 } }, 'location.lon'],
    [topic, { location: { lat: Number.NaN, lon: 0 } }, 'location.lat'],
    [topic, { extra: { anything: [1, 'two'] } }, true],
  ]),
  // cameras
  ['cameras', { name: '' }, 'name'],
  ['cameras', { name: 'x'.repeat(2001) }, 'name'],
  ['cameras', { name: '😀'.repeat(1001) }, 'name'], // 2002 UTF-16 code units
  ['cameras', { status: 'ONLINE' }, 'status'],
  ['cameras', { status: undefined }, 'status'],
  ['cameras', { imageUrl: 'javascript:alert(1)' }, 'imageUrl'],
  ['cameras', { imageUrl: 'https://cams.example/1.jpg' }, true],
  ['cameras', { imageUrl: 'HTTP://cams.example/1.jpg' }, true],
  ['cameras', { imageUrl: 'https://cams.example/a b.jpg' }, 'imageUrl'],
  ['cameras', { imageUrl: `https://x/${'a'.repeat(2000)}` }, 'imageUrl'],
  ['cameras', { area: '' }, 'area'],
  ['cameras', { area: 'Dam' }, true],
  // weather
  ['weather', { temperatureC: 'warm' }, 'temperatureC'],
  ['weather', { temperatureC: 71 }, 'temperatureC'],
  ['weather', { temperatureC: -100 }, true],
  ['weather', { temperatureC: Number.POSITIVE_INFINITY }, 'temperatureC'],
  ['weather', { humidityPct: 120 }, 'humidityPct'],
  ['weather', { windSpeedKmh: -1 }, 'windSpeedKmh'],
  ['weather', { windDirectionDeg: 361 }, 'windDirectionDeg'],
  ['weather', { precipitationMm: 1001 }, 'precipitationMm'],
  ['weather', { weatherCode: 2.5 }, 'weatherCode'],
  ['weather', { weatherCode: 100 }, 'weatherCode'],
  ['weather', { weatherCode: 3 }, true],
  ['weather', { condition: undefined }, 'condition'],
  // accidents
  ['accidents', { severity: 0 }, 'severity'],
  ['accidents', { severity: 9 }, 'severity'],
  ['accidents', { severity: 2.5 }, 'severity'],
  ['accidents', { severity: 5 }, true],
  ['accidents', { lanesBlocked: -1 }, 'lanesBlocked'],
  ['accidents', { lanesBlocked: 65 }, 'lanesBlocked'],
  ['accidents', { reportedAt: undefined }, 'reportedAt'],
  ['accidents', { reportedAt: '2026-03-01' }, 'reportedAt'],
  ['accidents', { reportedAt: '2026-03-01T11:59:00' }, true], // no zone: Date.parse reads it, as before
  ['accidents', { kind: 7 }, 'kind'],
  ['accidents', { description: '' }, 'description'],
  ['accidents', { roadName: '' }, 'roadName'],
  // airQuality: the category must match the AQI, at every band edge
  ['airQuality', { aqi: 42, category: 'hazardous' }, 'category'],
  ['airQuality', { aqi: 900, category: 'hazardous' }, 'aqi'],
  ['airQuality', { aqi: -1 }, 'aqi'],
  ['airQuality', { aqi: undefined, category: undefined }, 'aqi'],
  ['airQuality', { category: 'bad' }, 'category'],
  ['airQuality', { pm25: -3 }, 'pm25'],
  ['airQuality', { no2: 10_001 }, 'no2'],
  ['airQuality', { aqi: 50, category: 'good' }, true],
  ['airQuality', { aqi: 50.5, category: 'moderate' }, true],
  ['airQuality', { aqi: 50.5, category: 'good' }, 'category'],
  ['airQuality', { aqi: 100, category: 'moderate' }, true],
  ['airQuality', { aqi: 101, category: 'unhealthy-sensitive' }, true],
  ['airQuality', { aqi: 200, category: 'unhealthy' }, true],
  ['airQuality', { aqi: 300, category: 'very-unhealthy' }, true],
  ['airQuality', { aqi: 301, category: 'hazardous' }, true],
  ['airQuality', { aqi: 500, category: 'very-unhealthy' }, 'category'],
  // transit (contract 4)
  [
    'transit',
    {
      routeId: '17',
      tripId: 't1',
      label: 'Tram 17',
      bearing: 90,
      speed: 8.5,
      observedAt: '2026-03-01T11:59:58Z',
      delaySec: -30,
      stopId: 's9',
    },
    true,
  ],
  ['transit', { location: undefined }, 'location'],
  ['transit', { bearing: 361 }, 'bearing'],
  ['transit', { bearing: -1 }, 'bearing'],
  ['transit', { speed: -0.1 }, 'speed'],
  ['transit', { delaySec: 1.5 }, 'delaySec'],
  ['transit', { observedAt: 'now' }, 'observedAt'],
  ['transit', { routeId: '' }, 'routeId'],
  ['transit', { routeId: 17 }, 'routeId'],
  // bikes (contract 4)
  ['bikes', { id: 'vehicle:b1', kind: 'vehicle', bikesAvailable: 1, docksAvailable: 0 }, true],
  ['bikes', { vehicleType: 'e-bike', rangeMeters: 12_000, isRenting: true, isReturning: false }, true],
  ['bikes', { kind: 'dock' }, 'kind'],
  ['bikes', { bikesAvailable: -1 }, 'bikesAvailable'],
  ['bikes', { docksAvailable: 1.5 }, 'docksAvailable'],
  ['bikes', { docksAvailable: undefined }, 'docksAvailable'],
  ['bikes', { name: undefined }, 'name'],
  ['bikes', { rangeMeters: -5 }, 'rangeMeters'],
  ['bikes', { isRenting: 'yes' }, 'isRenting'],
];

test('every built-in topic: valid entities pass, and the first bad field is named', () => {
  for (const [topic, overrides, expected] of CASES) {
    const value = entity(topic, overrides);
    const result = REGISTRY.validator(topic)(value);
    const label = `${topic} ${JSON.stringify(overrides).slice(0, 120)}`;
    if (expected === true) {
      assert.ok(result.ok, `${label}: ${JSON.stringify(result)}`);
      assert.equal(result.entity, value, 'the entity is passed through as is');
    } else {
      assert.equal(result.ok, false, `${label} should fail`);
      if (!result.ok) assert.equal(result.field, expected, `${label}: ${result.error}`);
    }
  }
});

test('non-objects and values over the JSON bounds are refused by every validator', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 100; i++) deep = [deep];
  for (const topic of [...REGISTRY.names, 'unregistered']) {
    for (const value of ['nope', 1, null, [VALID.cameras], entity('cameras', { extra: deep })]) {
      const result = REGISTRY.validator(topic)(value);
      assert.equal(result.ok, false, `${topic}: ${JSON.stringify(value)?.slice(0, 60)}`);
      if (!result.ok) assert.equal(result.field, '');
    }
  }
});

test('the registry: names in order, info without schemas, defaults, generic topics', () => {
  assert.deepEqual(REGISTRY.names, ['cameras', 'weather', 'accidents', 'airQuality', 'transit', 'bikes']);
  for (const info of REGISTRY.info()) {
    assert.deepEqual(Object.keys(info).sort(), ['display', 'idField', 'locationField', 'name']);
  }
  assert.deepEqual(defaultTopicRegistry().names, DEFAULT_TOPICS);
  assert.equal(defaultTopicRegistry(), defaultTopicRegistry(), 'built once');
  assert.equal(REGISTRY.definition('transit')?.ttlMs, 120_000);
  assert.equal(REGISTRY.definition('bikes')?.ttlMs, 600_000);
  const mixed = resolveTopicRegistry(['transit', 'parking']);
  assert.deepEqual(mixed.names, ['transit', 'parking']);
  assert.deepEqual(mixed.definition('parking'), genericTopicDefinition('parking'));
  assert.equal(mixed.validator('parking')({ id: 'p', ...BASE, anything: 1 }).ok, true);
  assert.equal(mixed.validator('parking')({ id: 'p', source: 'x' }).ok, false);
  assert.equal(mixed.validator('nowhere'), validateBase, 'outside the registry: the base rule');
  assert.equal(resolveTopicRegistry(mixed), mixed);
  assert.equal(REGISTRY.has('__proto__'), false);
  assert.equal(resolveTopicRegistry(['__proto__']).definition('__proto__')?.schema.type, 'object');
  const parsed = REGISTRY.parseUpdate('accidents', { upserts: [entity('accidents', { severity: 9 })] });
  assert.deepEqual(parsed.ok ? null : parsed.field, 'upserts[0].severity');
});

const definition = (schema: Record<string, unknown>, name = 'custom'): TopicDefinition => ({
  ...genericTopicDefinition(name),
  schema,
});

test('definitions a registry refuses: outside $ref, $id, long patterns, bad names, duplicates, bad schemas', () => {
  const long = 'a'.repeat(MAX_SCHEMA_PATTERN_LENGTH + 1);
  const refused: [string, TopicDefinition[], RegExp][] = [
    ['remote $ref', [definition({ $ref: 'https://example.com/s.json' })], /\$ref/],
    ['file $ref', [definition({ properties: { a: { $ref: 'other.json#/x' } } })], /\$ref/],
    ['$id', [definition({ $id: 'https://example.com/s.json', type: 'object' })], /\$id/],
    ['long pattern', [definition({ properties: { a: { type: 'string', pattern: long } } })], /pattern/],
    ['long patternProperties key', [definition({ patternProperties: { [long]: {} } })], /pattern/],
    ['unknown keyword (strict mode)', [definition({ type: 'object', colour: 'red' })], /schema/],
    [
      'unknown format',
      [definition({ properties: { a: { type: 'string', format: 'shoe-size' } } })],
      /schema/,
    ],
    ['not a schema', [definition({ type: 'thing' })], /schema/],
    ['bad name', [definition({}, 'no spaces')], /name/],
    ['duplicate', [definition({}, 'x'), definition({}, 'x')], /twice/],
    ['negative TTL', [{ ...definition({}), ttlMs: -1 }], /ttlMs/],
  ];
  for (const [what, definitions, message] of refused) {
    assert.throws(
      () => new TopicRegistry(definitions),
      (error: unknown) => error instanceof TopicRegistryError && message.test(error.message),
      what,
    );
  }
  const local = new TopicRegistry([
    definition({
      $defs: { count: { type: 'integer', minimum: 0 } },
      type: 'object',
      required: ['n'],
      properties: { n: { $ref: '#/$defs/count' }, 'a/b': { type: 'string' } },
    }),
  ]);
  assert.equal(local.validator('custom')({ id: 'x', ...BASE, n: 2 }).ok, true);
  const bad = local.validator('custom')({ id: 'x', ...BASE, n: -2 });
  assert.deepEqual(bad.ok ? null : bad.field, 'n');
  const slash = local.validator('custom')({ id: 'x', ...BASE, n: 1, 'a/b': 3 });
  assert.deepEqual(slash.ok ? null : slash.field, 'a/b');
});

test('property: a validator never throws and never accepts a value over the JSON bounds', () => {
  const tight = { ...DEFAULT_JSON_BOUNDS };
  const values = fc.oneof(
    fc.anything({ maxDepth: 4, withObjectString: true, withNullPrototype: true, withBoxedValues: true }),
    fc.record({ id: fc.string(), updatedAt: fc.constant(BASE.updatedAt), source: fc.string() }),
    fc.record({
      id: fc.string({ minLength: 1, maxLength: 8 }),
      updatedAt: fc.constant(BASE.updatedAt),
      source: fc.constant('p'),
      location: fc.record({ lat: fc.double(), lon: fc.double() }),
      aqi: fc.double(),
      category: fc.constantFrom('good', 'moderate', 'hazardous', 'x'),
      name: fc.string(),
      status: fc.string(),
      bikesAvailable: fc.oneof(fc.integer(), fc.double()),
      deep: fc.nat({ max: 80 }).map((n) => {
        let v: unknown = 0;
        for (let i = 0; i < n; i++) v = { v };
        return v;
      }),
    }),
  );
  fc.assert(
    fc.property(values, fc.constantFrom(...REGISTRY.names, 'other'), (value, topic) => {
      const result = REGISTRY.validator(topic)(value);
      if (result.ok) assert.equal(checkJsonBounds(value, tight), null, 'accepted only within the bounds');
    }),
    { numRuns: 2000 },
  );
});

test('patterns that can backtrack catastrophically are refused where they are defined; realistic ones are kept', () => {
  const at = (pattern: string) =>
    definition({ type: 'object', properties: { a: { type: 'string', pattern } } });
  // Nested or adjacent repetition over the same characters, unanchored suffixes (ajv's test() tries every start).
  const unsafe = [
    '^(a+)+$',
    '^(a|a)*b$',
    '(\\w+\\s?)*$',
    '^(([a-z])+.)+[A-Z]([a-z])+$',
    '\\d+x',
    '\\s+$',
    '.*.*=.*',
    '^(?:a*)*$',
    '^(x+x+)+y$',
    '^([a-z0-9]+[-.]?)+@',
  ];
  for (const pattern of unsafe) {
    assert.throws(
      () => new TopicRegistry([at(pattern)]),
      (error: unknown) =>
        error instanceof TopicRegistryError &&
        error.path === 'schema.properties.a.pattern' &&
        /backtrack/.test(error.message),
      pattern,
    );
  }
  // Wherever a pattern sits: patternProperties keys, propertyNames, items, $defs, not/anyOf.
  const places: [string, Record<string, unknown>][] = [
    ['patternProperties key', { patternProperties: { '^(a+)+$': {} } }],
    ['propertyNames', { propertyNames: { pattern: '(a|a)*$' } }],
    ['items', { properties: { list: { type: 'array', items: { type: 'string', pattern: '\\d+x' } } } }],
    ['$defs', { $defs: { code: { type: 'string', pattern: '^(a+)+$' } } }],
    ['anyOf', { anyOf: [{ properties: { b: { type: 'string', pattern: '(\\w+\\s?)*$' } } }] }],
  ];
  for (const [where, schema] of places) {
    assert.throws(
      () => new TopicRegistry([definition(schema)]),
      (error: unknown) => error instanceof TopicRegistryError && /backtrack/.test(error.message),
      where,
    );
  }
  // Not a regular expression, or too many to check: refused with the reason.
  assert.throws(() => new TopicRegistry([at('^[')]), /not a valid regular expression/);
  assert.throws(() => new TopicRegistry([at('^a{2,1}$')]), /not a valid regular expression/);
  const many = Object.fromEntries(
    Array.from({ length: MAX_SCHEMA_PATTERNS + 1 }, (_, i) => [
      `f${i}`,
      { type: 'string', pattern: `^f${i}$` },
    ]),
  );
  assert.throws(
    () => new TopicRegistry([definition({ type: 'object', properties: many })]),
    /more than 16 patterns/,
  );

  // What a topic author writes: accepted, and they still validate.
  const realistic: [string, string, string][] = [
    ['^[A-Z]{2}-\\d{1,4}$', 'NL-42', 'nl-42'],
    ['^[a-z0-9_-]{1,64}$', 'garage_7', 'Garage 7'],
    ['^https?://\\S+$', 'https://x.example/a.jpg', 'ftp://x'],
    ['^(?:[01]\\d|2[0-3]):[0-5]\\d$', '23:59', '24:00'],
    ['^[A-Z0-9]{1,10}(-[A-Z0-9]{1,10})*$', 'A1-B2-C3', 'A1--B2'],
    ['^[\\w.+-]+@[\\w-]+\\.[\\w.-]+$', 'ops@city.example', 'ops@'],
    ['^#[0-9a-fA-F]{6}$', '#33aa99', '#33aa9'],
    ['^\\p{L}[\\p{L} ]{0,63}$', 'Amsterdam Noord', ' Amsterdam'],
    ['^(north|south|east|west)bound$', 'northbound', 'upbound'],
    ['[a-z]+', 'abc', '123'],
  ];
  const registry = new TopicRegistry(realistic.map(([pattern], i) => ({ ...at(pattern), name: `p${i}` })));
  for (const [i, [pattern, good, bad]] of realistic.entries()) {
    assert.equal(
      registry.validator(`p${i}`)({ id: 'x', ...BASE, a: good }).ok,
      true,
      `${pattern} takes ${good}`,
    );
    assert.equal(
      registry.validator(`p${i}`)({ id: 'x', ...BASE, a: bad }).ok,
      false,
      `${pattern} refuses ${bad}`,
    );
  }
});
