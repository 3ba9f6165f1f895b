import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  createSourcesFromConfig,
  loadConfig,
  sourceFactoriesFromConfig,
  validateConfig,
} from '../../src/aggregator/config.js';

const http = (extra: Record<string, unknown> = {}) => ({
  type: 'http-poll',
  name: 'feed',
  url: 'https://example.org/feed.json',
  parser: { format: 'wzdx' },
  ...extra,
});

function errorOf(value: unknown, env: NodeJS.ProcessEnv = {}): string {
  try {
    validateConfig(value, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

test('config errors name the bad field', () => {
  const cases: [unknown, string][] = [
    [[], ': must be an object'],
    [{}, 'sources: is required'],
    [{ sources: [] }, 'sources: must list at least 1'],
    [
      { sources: [{ type: 'ftp' }] },
      'sources[0].type: unknown value (allowed: simulator, http-poll, mqtt, gbfs)',
    ],
    [
      { sources: [{ type: 'simulator' }, http({ url: 'file:///etc/passwd' })] },
      'sources[1].url: must be an http(s) URL',
    ],
    [{ sources: [http({ name: undefined })] }, 'sources[0].name: is required'],
    [{ sources: [http({ intervalMs: 5 })] }, 'sources[0].intervalMs: must be a number >= 100'],
    [{ sources: [http({ intervalMS: 5000 })] }, 'sources[0].intervalMS: unknown option'],
    [
      { sources: [http({ parser: { format: 'csv' } })] },
      'sources[0].parser.format: unknown value (allowed: open-meteo-weather',
    ],
    [
      { sources: [http({ parser: { format: 'openaq-v3-latest', parameter: 'co2' } })] },
      'sources[0].parser.parameter: unknown value (allowed: pm25',
    ],
    [
      { sources: [http({ parser: { format: 'openaq-v3-latest' } })] },
      'sources[0].parser.parameter: is required',
    ],
    [
      { sources: [http({ parser: { format: 'geojson', topic: 'accidents' } })] },
      'sources[0].parser.fields: is required',
    ],
    [{ sources: [http({ headers: { 'x-api-key': 7 } })] }, 'sources[0].headers.x-api-key: must be a string'],
    [{ sources: [http(), http()] }, 'sources[1].name: duplicate source name "feed"'],
    [{ sources: [http({ name: 'ingest' })] }, 'sources[0].name: "ingest" is reserved'],
    [
      { sources: [{ type: 'mqtt', name: 'm', url: 'http://broker', topics: { cameras: 'x/+' } }] },
      'sources[0].url: must be a mqtt/mqtts/ws/wss URL',
    ],
    [
      { sources: [{ type: 'mqtt', name: 'm', url: 'mqtt://broker', topics: { parking: 'x/+' } }] },
      'sources[0].topics.parking: not a served topic (allowed: cameras, weather, accidents, airQuality;',
    ],
    [
      { sources: [{ type: 'simulator', city: 'atlantis' }] },
      'sources[0].city: unknown value (allowed: amsterdam)',
    ],
    [
      { sources: [{ type: 'simulator', topics: ['cameras', 'traffic'] }] },
      'sources[0].topics[1]: unknown value (allowed: cameras, weather, accidents, airQuality, transit)',
    ],
    [{ sources: [{ type: 'simulator' }], ttlMs: { cameras: -1 } }, 'ttlMs.cameras: must be a number >= 0'],
    [
      { sources: [{ type: 'simulator' }], alerts: { airQuality: { category: 'bad' } } },
      'alerts.airQuality.category: unknown value (allowed: good,',
    ],
    [
      { sources: [{ type: 'simulator' }], alerts: { accidentSeverity: { minSeverity: 6 } } },
      'alerts.accidentSeverity.minSeverity',
    ],
    [
      { sources: [http({ headers: { 'x-api-key': '${OPENAQ_KEY}' } })] },
      'sources[0].headers.x-api-key: environment variable OPENAQ_KEY is not set',
    ],
  ];
  for (const [value, expected] of cases) {
    const message = errorOf(value);
    assert.ok(message.startsWith(expected), `got "${message}", expected it to start with "${expected}"`);
  }
});

test('a valid config builds its sources; env references are expanded', () => {
  const config = validateConfig(
    {
      sources: [
        { type: 'simulator', seed: 3, topics: ['cameras'] },
        http({ headers: { 'x-api-key': '${KEY}' }, url: 'http://127.0.0.1:${PORT:-8090}/f.json' }),
        { type: 'mqtt', name: 'm', url: 'mqtt://127.0.0.1:1883', topics: { airQuality: ['a/+', 'b/#'] } },
      ],
      alerts: { cameraOffline: false },
    },
    { KEY: 'secret' },
  );
  assert.deepEqual(config.sources[1], {
    type: 'http-poll',
    name: 'feed',
    url: 'http://127.0.0.1:8090/f.json',
    parser: { format: 'wzdx' },
    headers: { 'x-api-key': 'secret' },
  });
  assert.deepEqual(config.alerts, { cameraOffline: false });
  const sources = createSourcesFromConfig(config);
  assert.deepEqual(
    sources.map((s) => [s.name, s.kind, s.topics]),
    [
      ['simulator', 'simulator', ['cameras']],
      ['feed', 'http-poll', ['accidents']],
      ['m', 'mqtt', ['airQuality']],
    ],
  );
  const factories = sourceFactoriesFromConfig(config);
  const [a, b] = [factories[1]?.(), factories[1]?.()];
  assert.equal(a?.name, 'feed');
  assert.notEqual(a, b, 'each call makes a fresh source');
});

test('loadConfig reports the file with the field, bad JSON and missing files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'citypulse-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'citypulse.config.json');
  await writeFile(file, JSON.stringify({ sources: [http({ url: 'nope' })] }));
  await assert.rejects(loadConfig(file, {}), { message: `${file}: sources[0].url: must be an http(s) URL` });
  await writeFile(file, '{ "sources": [ }');
  await assert.rejects(loadConfig(file, {}), /not valid JSON/);
  await assert.rejects(loadConfig(join(dir, 'missing.json'), {}), /cannot read the config file \(ENOENT\)/);
  // Hostile structures: nested far too deep, a huge key; refused with the file named, never a stack overflow.
  const hostile: [string, RegExp][] = [
    ['{"sources":' + '['.repeat(50_000) + ']'.repeat(50_000) + '}', /TOO_DEEP/],
    ['{"sources":[{"type":"simulator","' + 'k'.repeat(5000) + '":1}]}', /TOO_LARGE/],
  ];
  for (const [text, expected] of hostile) {
    await writeFile(file, text);
    await assert.rejects(loadConfig(file, {}), (error: Error) => {
      assert.match(error.message, expected);
      assert.ok(error.message.startsWith(file), error.message);
      return true;
    });
  }
  await writeFile(file, JSON.stringify({ sources: [{ type: 'simulator' }] }));
  assert.deepEqual(await loadConfig(file, {}), { sources: [{ type: 'simulator', name: 'simulator' }] });
});
