import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlertEngine } from '../../src/aggregator/alerts.js';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import type { ExternalAlert } from '../../src/aggregator/source.js';
import type { Accident, AirQualityStation, Camera, CityAlert } from '../../src/protocol/topics.js';
import { aqiCategory } from '../../src/protocol/topics.js';
import { ManualClock, PushSource, RecordingPublisher, accident, camera, station } from './helpers.js';

const cam = (id: string, status: Camera['status']): Camera =>
  camera(id, { status, source: 's' }) as unknown as Camera;
const acc = (id: string, severity: number): Accident =>
  accident(id, { severity, source: 's' }) as unknown as Accident;
const aq = (id: string, aqi: number): AirQualityStation =>
  station(id, aqi, { category: aqiCategory(aqi), source: 's' }) as unknown as AirQualityStation;
const summary = (alerts: CityAlert[]) => alerts.map((a) => `${a.rule}:${a.entityId}:${a.state}`);

test('accident severity at or above the threshold raises once; clearing resolves with the same id', () => {
  const clock = new ManualClock();
  const engine = new AlertEngine({ accidentSeverity: { minSeverity: 4 } }, clock.now);
  assert.deepEqual(engine.onChange('accidents', [acc('a1', 3), acc('a2', 4)], []), [
    {
      id: engine.activeAlerts()[0]?.id,
      rule: 'accident-severity',
      severity: 'warning',
      topic: 'accidents',
      entityId: 'a2',
      message: 'Severity 4 collision on A10: Collision',
      raisedAt: '2026-03-01T12:00:00.000Z',
      state: 'raised',
    },
  ]);
  assert.deepEqual(engine.onChange('accidents', [acc('a2', 5)], []), [], 'escalation does not re-raise');
  const raised = engine.activeAlerts()[0];
  clock.advance(60_000);
  const [resolved] = engine.onChange('accidents', [], ['a2']);
  assert.equal(resolved?.id, raised?.id);
  assert.equal(resolved?.state, 'resolved');
  assert.equal(resolved?.resolvedAt, '2026-03-01T12:01:00.000Z');
  assert.equal(resolved?.raisedAt, '2026-03-01T12:00:00.000Z');
  assert.deepEqual(engine.activeAlerts(), []);
  assert.equal(summary(engine.onChange('accidents', [acc('a3', 5)], []))[0], 'accident-severity:a3:raised');
  assert.equal(engine.activeAlerts()[0]?.severity, 'critical');
});

test('air quality alert has hysteresis: hovering at the line does not flap', () => {
  const clock = new ManualClock();
  const engine = new AlertEngine({ airQuality: { category: 'unhealthy', hysteresis: 10 } }, clock.now);
  const seq = [140, 151, 149, 155, 145, 142, 151, 140, 160];
  const out = seq.flatMap((v) => summary(engine.onChange('airQuality', [aq('s1', v)], [])));
  // raise at 151; 149..142 stay raised (>= 141); 140 < 141 resolves; 160 raises again.
  assert.deepEqual(out, ['air-quality:s1:raised', 'air-quality:s1:resolved', 'air-quality:s1:raised']);
});

test('camera offline raises only after afterMs of continuous offline; online resolves', () => {
  const clock = new ManualClock();
  const engine = new AlertEngine({ cameraOffline: { afterMs: 5 * 60_000 } }, clock.now);
  assert.deepEqual(engine.onChange('cameras', [cam('c1', 'offline')], []), []);
  clock.advance(4 * 60_000);
  assert.deepEqual(engine.tick(), []);
  assert.deepEqual(
    engine.onChange('cameras', [cam('c1', 'offline')], []),
    [],
    'a repeat does not restart the clock',
  );
  clock.advance(60_000);
  const [raised] = engine.tick();
  assert.equal(raised?.message, 'Camera Camera c1 offline for 5 minutes');
  assert.deepEqual(engine.tick(), [], 'raised once');
  assert.deepEqual(summary(engine.onChange('cameras', [cam('c1', 'online')], [])), [
    'camera-offline:c1:resolved',
  ]);

  // A flap back online before afterMs restarts the count.
  engine.onChange('cameras', [cam('c2', 'offline')], []);
  clock.advance(4 * 60_000);
  engine.onChange('cameras', [cam('c2', 'online')], []);
  engine.onChange('cameras', [cam('c2', 'offline')], []);
  clock.advance(4 * 60_000);
  assert.deepEqual(engine.tick(), []);
});

test('severe weather: severity threshold, complete lists resolve missing alerts, expiry resolves', () => {
  const clock = new ManualClock();
  const engine = new AlertEngine({ severeWeather: { minSeverity: 'Severe' } }, clock.now);
  const ext = (id: string, severity: ExternalAlert['severity'], expires?: string): ExternalAlert => ({
    id,
    event: 'Severe Thunderstorm Warning',
    severity,
    area: 'Cook, IL',
    ...(expires ? { expires } : {}),
  });
  const first = engine.onExternalAlerts(
    'nws',
    [ext('w1', 'Severe'), ext('w2', 'Moderate'), ext('w3', 'Extreme', '2026-03-01T12:30:00Z')],
    true,
  );
  assert.deepEqual(
    first.map((a) => [a.entityId, a.severity, a.topic, a.message]),
    [
      ['w1', 'warning', 'weather', 'Severe Thunderstorm Warning for Cook, IL'],
      ['w3', 'critical', 'weather', 'Severe Thunderstorm Warning for Cook, IL'],
    ],
  );
  assert.deepEqual(
    engine.onExternalAlerts('nws', [ext('w1', 'Severe'), ext('w3', 'Extreme', '2026-03-01T12:30:00Z')], true),
    [],
  );
  assert.deepEqual(
    engine.onExternalAlerts('other', [], true),
    [],
    'another origin does not resolve nws alerts',
  );
  assert.deepEqual(
    summary(engine.onExternalAlerts('nws', [ext('w3', 'Extreme', '2026-03-01T12:30:00Z')], true)),
    ['severe-weather:w1:resolved'],
  );
  clock.advance(30 * 60_000);
  assert.deepEqual(summary(engine.tick()), ['severe-weather:w3:resolved']);
});

test('rules set to false do nothing', () => {
  const engine = new AlertEngine(
    { accidentSeverity: false, airQuality: false, cameraOffline: false, severeWeather: false },
    new ManualClock().now,
  );
  assert.deepEqual(engine.onChange('accidents', [acc('a', 5)], []), []);
  assert.deepEqual(engine.onChange('airQuality', [aq('s', 400)], []), []);
  assert.deepEqual(engine.onChange('cameras', [cam('c', 'offline')], []), []);
  assert.deepEqual(engine.onExternalAlerts('x', [{ id: 'w', event: 'e', severity: 'Extreme' }], true), []);
});

test('the aggregator publishes ALERTs on the entity topic after the UPDATE, with seq, and resolves on TTL expiry', async (t) => {
  const clock = new ManualClock();
  const source = new PushSource('feed', ['accidents', 'cameras']);
  const aggregator = new DataAggregator({
    sources: [source],
    now: clock.now,
    ttlMs: { accidents: 60_000 },
    alerts: { cameraOffline: { afterMs: 120_000 } },
  });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  t.after(() => aggregator.stop());
  await aggregator.start();
  source.emit({ topic: 'accidents', upserts: [accident('a1', { severity: 5 })] });
  assert.deepEqual(
    publisher.of('accidents').map((p) => [p.message.type, p.position.seq]),
    [
      ['UPDATE', 1],
      ['ALERT', 2],
    ],
  );
  const alert = publisher.of('accidents', 'ALERT')[0]?.message.data as CityAlert;
  assert.equal(alert.severity, 'critical');
  assert.equal(aggregator.getTopicSnapshot('accidents').seq, 2, 'the snapshot covers the ALERT');
  assert.equal(aggregator.activeAlerts().length, 1);

  source.emit({ topic: 'cameras', upserts: [camera('c1', { status: 'offline' })] });
  clock.advance(60_000);
  aggregator.sweep(); // accident expires (TTL) -> UPDATE with removes, then the resolved ALERT
  assert.deepEqual(
    publisher.of('accidents').map((p) => p.message.type),
    ['UPDATE', 'ALERT', 'UPDATE', 'ALERT'],
  );
  assert.equal((publisher.of('accidents', 'ALERT')[1]?.message.data as CityAlert).state, 'resolved');
  assert.equal(publisher.of('cameras', 'ALERT').length, 0);
  clock.advance(60_000);
  aggregator.sweep();
  assert.equal((publisher.of('cameras', 'ALERT')[0]?.message.data as CityAlert).rule, 'camera-offline');
});
