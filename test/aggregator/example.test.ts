/**
 * `examples/city.json` end to end: the bundled feeds server (HTTP + MQTT publisher, on port 0 and a unique MQTT
 * prefix), the config loaded from the file, the simulator, http-poll and mqtt sources in one aggregator, and a
 * client folding the published UPDATEs converging on the aggregator's snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import {
  ConfigError,
  aggregatorOptionsFromConfig,
  createSourceFromConfig,
  loadConfig,
  validateConfig,
} from '../../src/aggregator/config.js';
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

/** Folds every published frame into the clients' states and checks each equals the aggregator's snapshot. */
function assertClientsConverge(
  publisher: RecordingPublisher,
  clients: Map<string, ReturnType<typeof fromSnapshot>>,
  aggregator: DataAggregator,
  topics: readonly string[],
): void {
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
  assertClientsConverge(publisher, clients, aggregator, topics);
  // The severity-4 incident on the A10 raised an accident alert.
  const alerts = publisher
    .of('accidents', 'ALERT')
    .map((p) => (p.message.data as { entityId: string }).entityId);
  assert.ok(alerts.includes('ams-incident-71201'));
});

const TRANSIT_CONFIG = fileURLToPath(new URL('../../examples/transit.json', import.meta.url));

for (const gbfsVersion of ['2.3', '3.0']) {
  test(`examples/transit.json with the bundled GTFS-Realtime and GBFS ${gbfsVersion} fixtures: moving trams, changing bikes, a client converges`, async (t) => {
    const feedsModule = (await import(new URL('../../examples/feeds-server.mjs', import.meta.url).href)) as {
      startFeedsServer(options: object): Promise<FeedsServer>;
    };
    const feeds = await feedsModule.startFeedsServer({ port: 0, mqttUrl: null, log: () => {} });
    t.after(() => feeds.close());
    const env = {
      GTFS_RT_VEHICLES_URL: `${feeds.url}/gtfs-rt/vehicles.pb`,
      GBFS_URL: `${feeds.url}/gbfs/${gbfsVersion}/gbfs.json`,
    };
    const raw = JSON.parse(await readFile(TRANSIT_CONFIG, 'utf8')) as Record<string, unknown>;
    let config;
    try {
      config = validateConfig(raw, env);
    } catch (error) {
      // This branch's loader predates the `topics` section (issue 12, config helper): the file keeps it.
      if (!(error instanceof ConfigError) || error.field !== 'topics') throw error;
      const { topics: _topics, ...rest } = raw;
      config = validateConfig(rest, env);
    }
    const schedule = { intervalMs: 20 };
    const sources = config.sources.map((s, i) => createSourceFromConfig({ ...s, ...schedule }, i));
    const aggregator = new DataAggregator({ topics: ['transit', 'bikes'], sources, alerts: false });
    const publisher = new RecordingPublisher();
    aggregator.attach(publisher);
    const clients = new Map(
      ['transit', 'bikes'].map((topic) => [topic, fromSnapshot(aggregator.getTopicSnapshot(topic))]),
    );
    t.after(() => aggregator.stop());
    await aggregator.start();
    await waitFor(
      () => publisher.of('transit', 'UPDATE').length >= 3 && publisher.of('bikes', 'UPDATE').length >= 3,
      'trams moving and bike availability changing',
      10_000,
    );
    await aggregator.stop();
    assert.deepEqual(
      aggregator.sourceStatus().map((s) => [s.name, s.rejected, s.lastError]),
      [
        ['gtfs-rt-vehicles', 0, null],
        ['bike-share', 0, null],
      ],
    );
    const trams = aggregator.getTopicSnapshot('transit').entities as unknown as Record<string, unknown>[];
    assert.equal(trams.length, 8);
    assert.ok(trams.some((e) => typeof e.delaySec === 'number'));
    const bikes = aggregator.getTopicSnapshot('bikes').entities as unknown as Record<string, unknown>[];
    assert.deepEqual([...new Set(bikes.map((e) => e.kind))].sort(), ['station', 'vehicle']);
    assertClientsConverge(publisher, clients, aggregator, ['transit', 'bikes']);
  });
}
