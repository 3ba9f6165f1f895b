/**
 * A topic defined in config alone, end to end: `examples/parking.json` loaded from the file, its GeoJSON feed
 * served by the bundled feeds server over real HTTP, a real server on port 0 built from the config (topics,
 * sources, TTLs), a WebSocket client subscribing to the config-only topic, and the topic's threshold rule raising
 * its alert on the garage that is almost full.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  aggregatorOptionsFromConfig,
  loadConfig,
  servedTopicNames,
  sourceFactoriesFromConfig,
  topicRegistryFromConfig,
} from '../../src/aggregator/config.js';
import type { ServerMessage } from '../../src/protocol/messages.js';
import { startCli } from '../helpers/cli.js';
import { startServer } from '../helpers/servers.js';
import { connect, eventually } from '../helpers/test-client.js';

const CONFIG = fileURLToPath(new URL('../../examples/parking.json', import.meta.url));

interface FeedsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

test('examples/parking.json: a config-only topic is served, fed over HTTP, snapshotted and alerted on', async (t) => {
  const feedsModule = (await import(new URL('../../examples/feeds-server.mjs', import.meta.url).href)) as {
    startFeedsServer(options: object): Promise<FeedsServer>;
  };
  const feeds = await feedsModule.startFeedsServer({ port: 0, mqttUrl: null, log: () => {} });
  t.after(() => feeds.close());

  const config = await loadConfig(CONFIG, { FEEDS_PORT: String(feeds.port) });
  assert.deepEqual(servedTopicNames(config), ['cameras', 'weather', 'accidents', 'airQuality', 'parking']);
  const registry = topicRegistryFromConfig(config);
  assert.equal(registry.definition('parking')?.ttlMs, 600_000);
  assert.equal(aggregatorOptionsFromConfig(config).registry?.has('parking'), true);

  // Only the parking feed: the simulator of the example is left out to keep the test's traffic small.
  const factories = sourceFactoriesFromConfig(config).filter(
    (_, i) => config.sources[i]?.name === 'city-parking',
  );
  assert.equal(factories.length, 1);
  const server = await startServer(t, { topics: registry, sourceFactories: factories });

  await eventually(
    () => server.aggregator.getTopicSnapshot('parking').entities.length === 3,
    10_000,
    'the three garages in the aggregator',
  );
  const alerts = server.aggregator.activeAlerts();
  assert.deepEqual(
    alerts.map((a) => [a.id, a.rule, a.severity, a.topic, a.entityId, a.message, a.state]),
    [
      [
        'parking-almost-full:parking:parking:P2',
        'parking-almost-full',
        'warning',
        'parking',
        'parking:P2',
        'De Kolk: only 6 of 400 places free',
        'raised',
      ],
    ],
  );

  const { client, connected, snapshot } = await connect(server.wsUrl, 'topics=parking');
  t.after(() => client.close());
  assert.equal(connected.type, 'CONNECTED');
  assert.equal(snapshot.type, 'SNAPSHOT');
  type ParkingState = { entities: { id: string; free: number }[]; epoch?: string };
  const data = (snapshot as ServerMessage & { data: Record<string, ParkingState> }).data;
  assert.deepEqual(Object.keys(data), ['parking']);
  const parking = data.parking as ParkingState;
  assert.equal(typeof parking.epoch, 'string', 'a config-only topic has an epoch');
  assert.deepEqual(parking.entities.map((e) => [e.id, e.free]).sort(), [
    ['parking:P1', 312],
    ['parking:P2', 6],
    ['parking:P3', 145],
  ]);
});

test('citypulse serve --config: serves the config-only topic, and refuses a typo naming file, path and allowed values', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'citypulse-cli-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.json');
  await writeFile(
    good,
    JSON.stringify({
      topics: { parking: { schema: { type: 'object', properties: { free: { type: 'integer' } } } } },
      sources: [{ type: 'simulator', topics: ['weather'] }],
      ttlMs: { parking: 0 },
    }),
  );
  const cli = await startCli(t, ['--config', good]);
  const { client, snapshot } = await connect(cli.wsUrl, 'topics=parking');
  t.after(() => client.close());
  assert.deepEqual(Object.keys((snapshot as ServerMessage & { data: object }).data), ['parking']);

  const bad = join(dir, 'bad.json');
  await writeFile(bad, JSON.stringify({ sources: [{ type: 'simulator' }], ttlMs: { acidents: 1000 } }));
  const refused = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/app/cli.ts', 'serve', '--config', bad],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  assert.equal(refused.status, 2);
  assert.equal(
    refused.stderr,
    `citypulse: ${bad}: ttlMs.acidents: not a served topic (allowed: cameras, weather, accidents, airQuality; add it to "topics" to serve it)\n`,
  );
});
