/**
 * `examples/city.json` end to end: the bundled feeds server (HTTP + MQTT publisher, on port 0 and a unique MQTT
 * prefix), the config loaded from the file, the simulator, http-poll and mqtt sources in one aggregator, and a
 * client folding the published UPDATEs converging on the aggregator's snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { aggregatorOptionsFromConfig, loadConfig } from '../../src/aggregator/config.js';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { applyFrame, fromSnapshot, toTopicState } from '../../src/aggregator/fold.js';
import { waitFor } from './fixture-server.js';
import { RecordingPublisher } from './helpers.js';

const CONFIG = fileURLToPath(new URL('../../examples/city.json', import.meta.url));

interface FeedsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

test('examples/city.json runs the simulator, the HTTP feeds and MQTT together and a client converges', async (t) => {
  const feedsModule = (await import(new URL('../../examples/feeds-server.mjs', import.meta.url).href)) as {
    startFeedsServer(options: object): Promise<FeedsServer>;
  };
  const prefix = `citypulse-test/${randomBytes(6).toString('hex')}`;
  const feeds = await feedsModule.startFeedsServer({
    port: 0,
    mqttPrefix: prefix,
    intervalMs: 50,
    log: () => {},
  });
  t.after(() => feeds.close());

  const config = await loadConfig(CONFIG, { FEEDS_PORT: String(feeds.port), CITYPULSE_MQTT_PREFIX: prefix });
  const aggregator = new DataAggregator({ ...aggregatorOptionsFromConfig(config) });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  const topics = ['cameras', 'weather', 'accidents', 'airQuality'];
  // A client that connected before anything happened.
  const clients = new Map(topics.map((topic) => [topic, fromSnapshot(aggregator.getTopicSnapshot(topic))]));
  t.after(() => aggregator.stop());
  await aggregator.start();

  const sourcesOf = (topic: string) =>
    new Set(aggregator.getTopicSnapshot(topic).entities.map((e) => e.source));
  await waitFor(
    () =>
      sourcesOf('accidents').has('amsterdam-incidents') &&
      sourcesOf('cameras').has('ndw-cameras') &&
      sourcesOf('airQuality').has('ggd-air') &&
      aggregator.getTopicSnapshot('airQuality').entities.length === 3,
    'every source to report',
    10_000,
  );
  await aggregator.stop();

  assert.deepEqual([...sourcesOf('cameras')].sort(), ['ndw-cameras', 'simulator']);
  assert.deepEqual([...sourcesOf('weather')], ['simulator']);
  assert.deepEqual([...sourcesOf('accidents')].sort().at(0), 'amsterdam-incidents');
  assert.deepEqual([...sourcesOf('airQuality')], ['ggd-air']);
  assert.deepEqual(
    aggregator.sourceStatus().map((s) => [s.name, s.rejected, s.lastError]),
    [
      ['simulator', 0, null],
      ['amsterdam-incidents', 0, null],
      ['ndw-cameras', 0, null],
      ['ggd-air', 0, null],
    ],
  );
  for (const { topic, message, position } of publisher.messages) {
    const state = clients.get(topic);
    assert.ok(state);
    const result = applyFrame(state, { ...message, ...position });
    assert.ok(result.ok);
    clients.set(topic, result.state);
  }
  for (const topic of topics) {
    assert.deepEqual(
      toTopicState(clients.get(topic) ?? fromSnapshot({ entities: [], seq: 0, alerts: [] })),
      aggregator.getTopicSnapshot(topic),
    );
  }
  // The severity-4 incident on the A10 raised an accident alert.
  const alerts = publisher
    .of('accidents', 'ALERT')
    .map((p) => (p.message.data as { entityId: string }).entityId);
  assert.ok(alerts.includes('ams-incident-71201'));
});
