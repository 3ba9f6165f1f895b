import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pm10ToAqi, pm25ToAqi, stationAqi } from '../../src/aggregator/aqi.js';
import { validateEntity, withDefaults } from '../../src/aggregator/schema.js';
import { DEFAULT_TOPICS } from '../../src/protocol/messages.js';
import { resolveTopicRegistry } from '../../src/protocol/topic-registry.js';
import { accident, camera, station } from './helpers.js';

const REGISTRY = resolveTopicRegistry([...DEFAULT_TOPICS, 'custom-topic']);

const defaults = { source: 'test', now: Date.parse('2026-03-01T12:00:00Z') };

const weather = (o: Record<string, unknown> = {}) => ({
  id: 'w',
  name: 'W',
  location: { lat: 1, lon: 2 },
  temperatureC: 10,
  condition: 'clear',
  ...o,
});

test('valid entities of each topic pass, with defaults filled', () => {
  for (const [topic, entity] of [
    ['cameras', camera('c')],
    ['weather', weather()],
    ['accidents', accident('a')],
    ['airQuality', station('s', 42)],
    ['custom-topic', { id: 'x', anything: true }],
  ] as const) {
    const result = validateEntity(REGISTRY, topic, entity, defaults);
    assert.ok(result.ok, `${topic}: ${JSON.stringify(result)}`);
    assert.equal(result.entity.source, 'test');
  }
});

test('the first bad field is named', () => {
  const cases: [string, unknown, string][] = [
    ['cameras', 'nope', ''],
    ['cameras', camera(''), 'id'],
    ['cameras', camera('c', { updatedAt: 'yesterday' }), 'updatedAt'],
    ['cameras', camera('c', { name: '' }), 'name'],
    ['cameras', camera('c', { location: { lat: 1 } }), 'location.lon'],
    ['cameras', camera('c', { location: [1, 2] }), 'location'],
    ['cameras', camera('c', { status: 'ONLINE' }), 'status'],
    ['cameras', camera('c', { imageUrl: 'javascript:alert(1)' }), 'imageUrl'],
    ['weather', weather({ temperatureC: 'warm' }), 'temperatureC'],
    ['weather', weather({ humidityPct: 120 }), 'humidityPct'],
    ['weather', weather({ weatherCode: 2.5 }), 'weatherCode'],
    ['weather', weather({ condition: undefined }), 'condition'],
    ['accidents', accident('a', { severity: 0 }), 'severity'],
    ['accidents', accident('a', { lanesBlocked: -1 }), 'lanesBlocked'],
    ['accidents', accident('a', { reportedAt: undefined }), 'reportedAt'],
    ['accidents', accident('a', { kind: 7 }), 'kind'],
    ['airQuality', station('s', 42, { category: 'hazardous' }), 'category'],
    ['airQuality', station('s', 900), 'aqi'],
    ['airQuality', station('s', 42, { pm25: -3 }), 'pm25'],
    ['airQuality', { id: 's', name: 'S', location: { lat: 1, lon: 2 } }, 'aqi'],
  ];
  for (const [topic, entity, field] of cases) {
    const result = validateEntity(REGISTRY, topic, entity, defaults);
    assert.equal(result.ok, false, `${topic} ${JSON.stringify(entity)} should fail`);
    if (!result.ok) assert.equal(result.field, field, `${topic}: ${result.error}`);
  }
});

test('EPA AQI breakpoints (PM2.5 2024 table, PM10)', () => {
  const pm25: [number, number][] = [
    [0, 0],
    [9.0, 50],
    [9.1, 51],
    [12.0, 56],
    [35.4, 100],
    [35.5, 101],
    [55.4, 150],
    [55.5, 151],
    [125.4, 200],
    [125.5, 201],
    [225.4, 300],
    [225.5, 301],
    [325.4, 500],
    [900, 500],
    [9.09, 50], // truncated to 9.0 before lookup
  ];
  for (const [c, aqi] of pm25) assert.equal(pm25ToAqi(c), aqi, `pm2.5 ${c}`);
  assert.equal(pm25ToAqi(-1), null);
  assert.equal(pm25ToAqi(Number.NaN), null);
  assert.equal(pm10ToAqi(54), 50);
  assert.equal(pm10ToAqi(55), 51);
  assert.equal(pm10ToAqi(154.9), 100);
  assert.equal(pm10ToAqi(604), 500);
  assert.deepEqual(stationAqi({ pm25: 12, pm10: 160 }), { aqi: 103, category: 'unhealthy-sensitive' });
  assert.equal(stationAqi({}), null);
});

test("a record without id takes it from the topic's idField (a string or a finite number only)", () => {
  const cases: [Record<string, unknown>, unknown][] = [
    [{ stationId: 's7' }, 's7'],
    [{ stationId: 42 }, '42'],
    [{ stationId: 'x', id: 'kept' }, 'kept'],
    [{ stationId: { nested: 1 } }, undefined],
    [{ stationId: Number.NaN }, undefined],
    [{}, undefined],
  ];
  for (const [record, id] of cases) {
    const out = withDefaults('bikes', record, { ...defaults, idField: 'stationId' }) as Record<
      string,
      unknown
    >;
    assert.equal(out.id, id, JSON.stringify(record));
  }
  assert.equal(
    (withDefaults('bikes', { stationId: 's7' }, defaults) as Record<string, unknown>).id,
    undefined,
    'the default id field is id itself',
  );
});
