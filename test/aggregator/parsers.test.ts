/**
 * Every parser against its recorded fixture, fetched over real HTTP by the http-poll source and validated by the
 * aggregator: the published state is compared field by field.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AlertRulesOptions } from '../../src/aggregator/alerts.js';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { createCameraListParser } from '../../src/aggregator/parsers/cameras.js';
import { createGeoJsonParser } from '../../src/aggregator/parsers/geojson.js';
import { createNwsAlertsParser } from '../../src/aggregator/parsers/nws-alerts.js';
import { createOpen511Parser } from '../../src/aggregator/parsers/open511.js';
import { createOpenAqParser } from '../../src/aggregator/parsers/openaq.js';
import { createOpenMeteoAirQualityParser } from '../../src/aggregator/parsers/open-meteo-air-quality.js';
import { createOpenMeteoWeatherParser } from '../../src/aggregator/parsers/open-meteo-weather.js';
import { createWzdxParser } from '../../src/aggregator/parsers/wzdx.js';
import type { FeedParser } from '../../src/aggregator/parsers/types.js';
import { createHttpPollSource } from '../../src/aggregator/sources/http-poll.js';
import type { CityAlert } from '../../src/protocol/topics.js';
import { startFixtureServer, waitFor } from './fixture-server.js';
import type { FixtureServer } from './fixture-server.js';
import { ManualClock, RecordingPublisher } from './helpers.js';

let server: FixtureServer;
before(async () => {
  server = await startFixtureServer();
});
after(() => server.close());

const NOW = '2026-03-01T12:00:00.000Z';

/** Polls `fixture` once through http-poll + aggregator; returns the aggregator (stopped) and what it published. */
async function poll(fixture: string, parser: FeedParser, alerts: AlertRulesOptions | false = false) {
  const clock = new ManualClock(Date.parse(NOW));
  const source = createHttpPollSource({
    name: 'feed',
    url: `${server.url}/${fixture}`,
    parser,
    intervalMs: 60_000,
  });
  const aggregator = new DataAggregator({ sources: [source], now: clock.now, alerts });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  await aggregator.start();
  try {
    await waitFor(
      () =>
        aggregator.sourceStatus()[0]?.lastSuccessAt !== null ||
        aggregator.sourceStatus()[0]?.lastError !== null,
      fixture,
    );
  } finally {
    await aggregator.stop();
  }
  const status = aggregator.sourceStatus()[0];
  assert.equal(status?.lastError, null, `no error polling ${fixture}`);
  return { aggregator, publisher, status, clock };
}

function entities(aggregator: DataAggregator, topic: string): unknown[] {
  return [...aggregator.getTopicSnapshot(topic).entities].sort((a, b) => a.id.localeCompare(b.id));
}

test('Open-Meteo forecast (two locations, metric) -> weather', async () => {
  const { aggregator, status } = await poll(
    'open-meteo-forecast.json',
    createOpenMeteoWeatherParser({ locations: [{ id: 'ams-centrum', name: 'Amsterdam Centrum' }] }),
  );
  assert.deepEqual(entities(aggregator, 'weather'), [
    {
      id: 'ams-centrum',
      name: 'Amsterdam Centrum',
      location: { lat: 52.366, lon: 4.901 },
      temperatureC: 8.4,
      humidityPct: 81,
      windSpeedKmh: 17.3,
      windDirectionDeg: 236,
      precipitationMm: 0.3,
      condition: 'rain',
      weatherCode: 61,
      updatedAt: '2026-03-01T12:00:00.000Z',
      source: 'feed',
    },
    {
      id: 'open-meteo:52.308,4.764',
      name: 'Open-Meteo 52.308, 4.764',
      location: { lat: 52.308, lon: 4.764 },
      temperatureC: 7.9,
      humidityPct: 84,
      windSpeedKmh: 24.1,
      windDirectionDeg: 241,
      precipitationMm: 0,
      condition: 'overcast',
      weatherCode: 3,
      updatedAt: '2026-03-01T12:00:00.000Z',
      source: 'feed',
    },
  ]);
  assert.equal(status?.rejected, 0);
});

test('Open-Meteo forecast in °F, mph and inch is converted to °C, km/h and mm', async () => {
  const { aggregator } = await poll('open-meteo-forecast-imperial.json', createOpenMeteoWeatherParser());
  assert.deepEqual(entities(aggregator, 'weather'), [
    {
      id: 'open-meteo:41.878,-87.630',
      name: 'Open-Meteo 41.878, -87.630',
      location: { lat: 41.878, lon: -87.63 },
      temperatureC: -5,
      humidityPct: 72,
      windSpeedKmh: 16.1,
      windDirectionDeg: 300,
      precipitationMm: 2.5,
      condition: 'snow',
      weatherCode: 73,
      updatedAt: '2026-03-01T12:15:00.000Z',
      source: 'feed',
    },
  ]);
});

test('Open-Meteo air quality -> airQuality with its us_aqi', async () => {
  const { aggregator } = await poll(
    'open-meteo-air-quality.json',
    createOpenMeteoAirQualityParser({ locations: [{ id: 'ams-model', name: 'Amsterdam (model)' }] }),
  );
  assert.deepEqual(entities(aggregator, 'airQuality'), [
    {
      id: 'ams-model',
      name: 'Amsterdam (model)',
      location: { lat: 52.35, lon: 4.8999996 },
      aqi: 61,
      category: 'moderate',
      pm25: 14.2,
      pm10: 21.4,
      no2: 27.9,
      o3: 48,
      updatedAt: '2026-03-01T12:00:00.000Z',
      source: 'feed',
    },
  ]);
});

test('OpenAQ v3 location latest, sensors mapped to parameters -> one station with the EPA AQI', async () => {
  const { aggregator } = await poll(
    'openaq-v3-location-latest.json',
    createOpenAqParser({
      sensors: { '3917': 'pm25', '3916': 'pm10', '3919': 'no2' },
      names: { '2178': 'Amsterdam-Vondelpark' },
    }),
  );
  assert.deepEqual(entities(aggregator, 'airQuality'), [
    {
      id: 'openaq:2178',
      name: 'Amsterdam-Vondelpark',
      location: { lat: 52.359714, lon: 4.86627 },
      aqi: 108,
      category: 'unhealthy-sensitive',
      pm25: 38.2,
      pm10: 51,
      no2: 31.4,
      updatedAt: '2026-03-01T11:00:00.000Z',
      source: 'feed',
    },
  ]);
});

test('OpenAQ v3 parameter latest -> stations; one without coordinates is rejected', async () => {
  const { aggregator, status } = await poll(
    'openaq-v3-parameter-latest.json',
    createOpenAqParser({ parameter: 'pm25' }),
  );
  const got = entities(aggregator, 'airQuality') as {
    id: string;
    aqi: number;
    category: string;
    name: string;
  }[];
  assert.deepEqual(
    got.map((s) => [s.id, s.name, s.aqi, s.category]),
    [
      ['openaq:2180', 'OpenAQ location 2180', 45, 'good'],
      ['openaq:2185', 'OpenAQ location 2185', 156, 'unhealthy'],
    ],
  );
  assert.equal(status?.rejected, 1);
  assert.equal(status?.readings, 2);
});

test('NWS alerts -> a severe-weather ALERT for the Severe warning only, resolved when it expires', async () => {
  const { aggregator, publisher, clock } = await poll('nws-alerts-active.json', createNwsAlertsParser(), {});
  const alerts = publisher.of('weather', 'ALERT').map((p) => p.message.data as CityAlert);
  assert.equal(alerts.length, 1);
  assert.deepEqual(
    { ...alerts[0], id: undefined },
    {
      id: undefined,
      rule: 'severe-weather',
      severity: 'warning',
      topic: 'weather',
      entityId: 'urn:oid:2.49.0.1.840.0.5c1f6a6e3a1d9b2f0c6a1e9f4b7d2c8a0e3f5a7b.001.1',
      message:
        'Severe Thunderstorm Warning issued March 1 at 11:48AM CST until March 1 at 12:45PM CST by NWS Chicago IL',
      raisedAt: NOW,
      state: 'raised',
    },
  );
  assert.equal(aggregator.getTopicSnapshot('weather').entities.length, 0, 'alerts are not entities');
  clock.ms = Date.parse('2026-03-01T18:45:00.000Z');
  aggregator.sweep();
  const resolved = publisher.of('weather', 'ALERT').at(-1)?.message.data as CityAlert;
  assert.equal(resolved.state, 'resolved');
  assert.equal(resolved.id, alerts[0]?.id);
  assert.equal(resolved.resolvedAt, '2026-03-01T18:45:00.000Z');
});

test('WZDx v4.2 -> active road events as accidents (the planned one left out)', async () => {
  const { aggregator, publisher } = await poll('wzdx-v4.2.geojson', createWzdxParser(), {});
  assert.deepEqual(entities(aggregator, 'accidents'), [
    {
      id: 'wzdx:7c3f1e92-04ab-4d7e-b5c8-19a2e6d4f083',
      location: { lat: 41.8889, lon: -87.6133 },
      severity: 3,
      description: 'Right lane closed for lighting maintenance.',
      kind: 'roadwork',
      roadName: 'US-41 / Lake Shore Dr',
      lanesBlocked: 1,
      reportedAt: '2026-02-28T14:00:00.000Z',
      updatedAt: '2026-03-01T09:10:00.000Z',
      source: 'feed',
    },
    {
      id: 'wzdx:e2a1c7b4-9f3d-4c2e-8a61-5d7f0b3e9c21',
      location: { lat: 41.8947, lon: -87.6538 },
      severity: 4,
      description: 'Bridge deck repair; all eastbound lanes closed at Ohio St.',
      kind: 'roadwork',
      roadName: 'I-90 / Kennedy Expressway',
      lanesBlocked: 4,
      reportedAt: '2026-02-27T08:00:00.000Z',
      updatedAt: '2026-03-01T06:30:00.000Z',
      source: 'feed',
    },
  ]);
  const alerts = publisher.of('accidents', 'ALERT').map((p) => p.message.data as CityAlert);
  assert.deepEqual(
    alerts.map((a) => [a.rule, a.entityId, a.severity]),
    [['accident-severity', 'wzdx:e2a1c7b4-9f3d-4c2e-8a61-5d7f0b3e9c21', 'warning']],
  );
});

test('Open511 JSON -> active events as accidents (archived left out)', async () => {
  const { aggregator } = await poll('open511-events.json', createOpen511Parser());
  assert.deepEqual(entities(aggregator, 'accidents'), [
    {
      id: 'open511:drivebc.ca/DBC-51870',
      location: { lat: 49.2045, lon: -123.0768 },
      severity: 2,
      description: 'CONSTRUCTION: Knight St Bridge southbound. Paving work. Single lane alternating traffic.',
      kind: 'roadwork',
      roadName: 'Knight St',
      reportedAt: '2026-02-26T15:00:00.000Z',
      updatedAt: '2026-03-01T14:00:00.000Z',
      source: 'feed',
    },
    {
      id: 'open511:drivebc.ca/DBC-52446',
      location: { lat: 49.2585, lon: -123.0285 },
      severity: 5,
      description:
        'INCIDENT: Highway 1, in both directions. Vehicle incident at Grandview Hwy. Road closed. Detour available.',
      kind: 'collision',
      roadName: 'Highway 1',
      reportedAt: '2026-03-01T19:21:00.000Z',
      updatedAt: '2026-03-01T19:40:00.000Z',
      source: 'feed',
    },
  ]);
});

test('generic GeoJSON with a property mapping -> accidents; a feature with a bad severity is rejected', async () => {
  const { aggregator, status } = await poll(
    'city-incidents.geojson',
    createGeoJsonParser({
      topic: 'accidents',
      idPrefix: 'ams:',
      fields: {
        id: 'incident_id',
        kind: 'type',
        severity: 'level',
        description: 'summary',
        roadName: 'street',
        lanesBlocked: 'lanes_closed',
        reportedAt: 'created',
        updatedAt: 'modified',
      },
      valueMaps: { kind: { CRASH: 'collision', BREAKDOWN: 'breakdown' } },
    }),
  );
  assert.deepEqual(entities(aggregator, 'accidents'), [
    {
      id: 'ams:90412',
      kind: 'collision',
      severity: 3,
      description: 'Two-vehicle crash blocking the left lane',
      roadName: 'Stadhouderskade',
      lanesBlocked: 1,
      reportedAt: '2026-03-01T11:32:00+01:00',
      updatedAt: '2026-03-01T11:47:00+01:00',
      location: { lat: 52.3601, lon: 4.8869 },
      source: 'feed',
    },
    {
      id: 'ams:90415',
      kind: 'breakdown',
      severity: 1,
      description: 'Broken-down tram',
      roadName: 'Nassaukade',
      lanesBlocked: 0,
      reportedAt: '2026-03-01T11:50:00+01:00',
      updatedAt: '2026-03-01T11:50:00+01:00',
      location: { lat: 52.3712, lon: 4.8772 },
      source: 'feed',
    },
  ]);
  assert.equal(status?.rejected, 1);
});

test('generic camera list (array inside an object, mapped fields and statuses) -> cameras', async () => {
  const { aggregator, status } = await poll(
    'cameras-list.json',
    createCameraListParser({
      itemsPath: 'data.cameras',
      idPrefix: 'chi:',
      fields: {
        id: 'camId',
        name: 'title',
        lat: 'latitude',
        lon: 'longitude',
        status: 'state',
        imageUrl: 'snapshot',
        area: 'corridor',
      },
      valueMaps: { status: { ACTIVE: 'online', OUT_OF_SERVICE: 'offline' } },
    }),
  );
  assert.deepEqual(entities(aggregator, 'cameras'), [
    {
      id: 'chi:CAM-0417',
      name: 'Lake Shore Dr at Chicago Ave',
      location: { lat: 41.8967, lon: -87.6173 },
      status: 'online',
      imageUrl: 'https://cams.example.org/chicago/CAM-0417.jpg',
      area: 'Lake Shore Dr',
      updatedAt: NOW,
      source: 'feed',
    },
    {
      id: 'chi:CAM-0422',
      name: 'I-90/94 at Roosevelt Rd',
      location: { lat: 41.8672, lon: -87.6395 },
      status: 'offline',
      imageUrl: 'https://cams.example.org/chicago/CAM-0422.jpg',
      area: 'Dan Ryan Expy',
      updatedAt: NOW,
      source: 'feed',
    },
  ]);
  assert.equal(status?.rejected, 1, 'the ftp:// image URL is rejected');
});

test('generic camera GeoJSON with the default mapping -> cameras', async () => {
  const { aggregator } = await poll('cameras.geojson', createCameraListParser());
  assert.deepEqual(entities(aggregator, 'cameras'), [
    {
      id: 'ndw-cam-101',
      name: 'A10 Coenplein',
      location: { lat: 52.41, lon: 4.901 },
      status: 'online',
      imageUrl: 'https://images.example.com/ndw/101.jpg',
      area: 'A10',
      updatedAt: NOW,
      source: 'feed',
    },
    {
      id: 'ndw-cam-102',
      name: 'A2 Holendrecht',
      location: { lat: 52.2939, lon: 4.9551 },
      status: 'offline',
      imageUrl: 'https://images.example.com/ndw/102.jpg',
      area: 'A2',
      updatedAt: NOW,
      source: 'feed',
    },
  ]);
});
