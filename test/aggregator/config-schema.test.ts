/**
 * The published config schema (`citypulse.schema.json`) and the `topics` section: every example and every config
 * snippet of the docs validates; a typo in any section is refused with its path (and the allowed values); the
 * schema agrees with the code's lists; random mutations of a valid config never crash the loader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  ConfigError,
  SOURCE_TYPES,
  loadConfig,
  servedTopicNames,
  validateConfig,
} from '../../src/aggregator/config.js';
import { CONFIG_SCHEMA_PATH, configSchema } from '../../src/aggregator/config-schema.js';
import { CONFIG_TOPIC_TTL_MS, TOPIC_PALETTE } from '../../src/aggregator/config-topics.js';
import { CITIES } from '../../src/aggregator/cities.js';
import { PARSER_FORMATS } from '../../src/aggregator/parsers/index.js';
import { SIMULATOR_TOPICS } from '../../src/aggregator/simulator.js';
import { AQI_CATEGORIES } from '../../src/protocol/topics.js';

const ENV = { FEEDS_PORT: '8090', PARKING_URL: 'http://127.0.0.1:8090/parking.geojson' };

/** For the examples: `ENV` and the feed URLs `examples/transit.json` reads (issue 12). */
const EXAMPLE_ENV: NodeJS.ProcessEnv = {
  ...ENV,
  GTFS_RT_VEHICLES_URL: 'http://127.0.0.1:8090/vehicle-positions.pb',
  GBFS_URL: 'http://127.0.0.1:8090/gbfs.json',
};

/** A valid config touching every section. */
function fullConfig(): Record<string, unknown> {
  return {
    $schema: '../citypulse.schema.json',
    topics: {
      parking: {
        schema: {
          type: 'object',
          required: ['free'],
          properties: {
            name: { type: 'string' },
            location: { type: 'object' },
            free: { type: 'integer', minimum: 0 },
            capacity: { type: 'integer' },
          },
        },
        idField: 'garage',
        ttlMs: 60_000,
        display: {
          label: 'Parking',
          color: '#123456',
          icon: 'P',
          fields: [{ field: 'free', label: 'Free', unit: 'places' }],
        },
        alerts: [
          { name: 'full', field: 'free', op: '<=', value: 5, severity: 'warning', message: '{name} full' },
        ],
      },
      transit: { ttlMs: 120_000, display: { label: 'Buses' } },
    },
    sources: [
      { type: 'simulator', name: 'sim', seed: 2, intervalMs: 500, city: 'amsterdam', topics: ['cameras'] },
      {
        type: 'http-poll',
        name: 'parking-feed',
        url: 'https://example.org/p.geojson',
        intervalMs: 1000,
        timeoutMs: 500,
        headers: { 'x-key': 'k' },
        backoff: { initialMs: 10, maxMs: 100, factor: 2 },
        parser: {
          format: 'geojson',
          topic: 'parking',
          idPrefix: 'p:',
          complete: true,
          fields: { id: 'gid' },
          constants: {},
          valueMaps: {},
        },
      },
      {
        type: 'mqtt',
        name: 'mq',
        url: 'mqtt://127.0.0.1:1883',
        topics: { parking: 'city/parking/+', transit: ['a/#'] },
        qos: 1,
      },
    ],
    ttlMs: { cameras: 1000, accidents: 0 },
    alerts: {
      accidentSeverity: { minSeverity: 3 },
      airQuality: false,
      cameraOffline: { afterMs: 1 },
      severeWeather: { minSeverity: 'Minor' },
    },
    sweepIntervalMs: 100,
  };
}

function errorOf(value: unknown): string {
  try {
    validateConfig(value, ENV);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(value).slice(0, 200)}`);
}

type Container = Record<string | number, unknown>;

function isContainer(value: unknown): value is Container {
  return typeof value === 'object' && value !== null;
}

/** The value at `path` (keys and indices), or `undefined`. */
function at(value: unknown, path: readonly (string | number)[]): unknown {
  let current = value;
  for (const key of path) current = isContainer(current) ? current[key] : undefined;
  return current;
}

/** Sets (or, with `undefined`, deletes) the value at a dotted path (`sources.1.intervalMS`) as an own property. */
function put(root: unknown, path: readonly (string | number)[], value: unknown): void {
  const parent = at(root, path.slice(0, -1));
  const last = path[path.length - 1];
  if (!isContainer(parent) || last === undefined) return;
  if (value === undefined) delete parent[last];
  else Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true });
}

/** `fullConfig()` with `value` put at the dotted `path` of a deep copy. */
function mutated(path: string, value: unknown): unknown {
  const c = structuredClone(fullConfig());
  put(
    c,
    path.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k)),
    value,
  );
  return c;
}

test('the full config validates and resolves its topics with defaults and catalog overrides', () => {
  const config = validateConfig(fullConfig(), ENV);
  assert.deepEqual(servedTopicNames(config), [
    'cameras',
    'weather',
    'accidents',
    'airQuality',
    'parking',
    'transit',
  ]);
  const [parking, transit] = config.topics ?? [];
  assert.equal(parking?.idField, 'garage');
  assert.equal(parking?.locationField, 'location');
  assert.equal(parking?.alerts[0]?.name, 'full');
  assert.equal(transit?.ttlMs, 120_000);
  assert.equal(transit?.display.label, 'Buses');
  assert.ok(transit?.display.color.startsWith('#'), 'the catalog colour is kept');
  assert.ok(Object.keys(transit?.schema ?? {}).length > 0, 'the catalog schema is kept');

  const minimal = validateConfig(
    {
      sources: [{ type: 'simulator' }],
      topics: {
        a: {
          schema: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              n: { type: 'number' },
              o: { type: 'object' },
              s: { enum: ['x'] },
              b: { type: 'boolean' },
              t: { type: 'string' },
              u: { type: 'string' },
            },
          },
        },
        b: { schema: { type: 'object' } },
      },
    },
    {},
  );
  const [a, b] = minimal.topics ?? [];
  assert.deepEqual(a, {
    name: 'a',
    idField: 'id',
    locationField: null,
    display: {
      label: 'a',
      color: TOPIC_PALETTE[0],
      fields: [{ field: 'n' }, { field: 's' }, { field: 'b' }, { field: 't' }],
    },
    schema: (minimal.topics?.[0] as { schema: unknown }).schema,
    ttlMs: CONFIG_TOPIC_TTL_MS,
    alerts: [],
  });
  assert.equal(b?.display.color, TOPIC_PALETTE[1]);
});

test('every example config and every config snippet in docs/*.md validates', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'citypulse-schema-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const examples = readdirSync('examples').filter((f) => f.endsWith('.json'));
  assert.ok(examples.length > 0);
  for (const name of examples) {
    const text = readFileSync(join('examples', name), 'utf8');
    assert.equal(JSON.parse(text).$schema, '../citypulse.schema.json', `${name} references the schema`);
    await loadConfig(join('examples', name), EXAMPLE_ENV);
  }
  let snippets = 0;
  for (const doc of readdirSync('docs').filter((f) => f.endsWith('.md'))) {
    const text = readFileSync(join('docs', doc), 'utf8');
    for (const match of text.matchAll(/```json\n([\s\S]*?)```/g)) {
      let value: unknown;
      try {
        value = JSON.parse(match[1] as string);
      } catch {
        continue; // not a whole JSON document (a fragment in prose)
      }
      if (!isContainer(value)) continue;
      let config: unknown = null;
      if ('sources' in value) config = value;
      else if ('format' in value)
        config = { sources: [{ type: 'http-poll', name: 'f', url: 'https://x.org/', parser: value }] };
      else if ('op' in value && 'field' in value)
        config = {
          sources: [{ type: 'simulator' }],
          topics: { t: { schema: { type: 'object' }, alerts: [value] } },
        };
      if (config === null) continue;
      snippets += 1;
      const file = join(dir, `${doc}-${snippets}.json`);
      await writeFile(file, JSON.stringify(config));
      await loadConfig(file, ENV).catch((error: Error) =>
        assert.fail(`${doc} snippet ${snippets}: ${error.message}`),
      );
    }
  }
  assert.ok(snippets >= 5, `found ${snippets} config snippets`);
});

test('a typo in any section is refused with its path and the allowed values', () => {
  const cases: [string, string, unknown, string][] = [
    [
      'top level',
      'sourcse',
      [],
      'sourcse: unknown option (allowed: $schema, sources, topics, ttlMs, alerts, sweepIntervalMs)',
    ],
    [
      'topics.<name>',
      'topics.parking.ttlMS',
      1,
      'topics.parking.ttlMS: unknown option (allowed: schema, idField, locationField, ttlMs, display, alerts)',
    ],
    ['topic name', 'topics.bad name', {}, 'topics.bad name: invalid name'],
    [
      'display',
      'topics.parking.display.colour',
      '#fff',
      'topics.parking.display.colour: unknown option (allowed: label, color, icon, fields)',
    ],
    [
      'display.fields[i]',
      'topics.parking.display.fields.0.units',
      'x',
      'topics.parking.display.fields[0].units: unknown option (allowed: field, label, unit)',
    ],
    [
      'topic alerts[i]',
      'topics.parking.alerts.0.severty',
      'info',
      'topics.parking.alerts[0].severty: unknown option (allowed: name, field, op, value, severity, message)',
    ],
    [
      'topic alerts op',
      'topics.parking.alerts.0.op',
      '=>',
      'topics.parking.alerts[0].op: unknown value (allowed: >, >=, <, <=, ==, !=)',
    ],
    [
      'catalog override',
      'topics.transit.locationField',
      'pos',
      'topics.transit.locationField: "transit" is a catalog topic: it takes overrides only (allowed: ttlMs, display, alerts, idField)',
    ],
    [
      'alerts',
      'alerts.cameraOfline',
      false,
      'alerts.cameraOfline: unknown option (allowed: accidentSeverity, airQuality, cameraOffline, severeWeather, serviceAlerts)',
    ],
    [
      'alerts.<rule>',
      'alerts.accidentSeverity',
      { minSeverty: 3 },
      'alerts.accidentSeverity.minSeverty: unknown option (allowed: minSeverity)',
    ],
    [
      'alerts enum',
      'alerts.severeWeather.minSeverity',
      'severe',
      'alerts.severeWeather.minSeverity: unknown value (allowed: Extreme, Severe, Moderate, Minor, Unknown)',
    ],
    [
      'sources[i]',
      'sources.1.intervalMS',
      1,
      'sources[1].intervalMS: unknown option (allowed: type, name, url, intervalMs, timeoutMs, headers, backoff, parser)',
    ],
    [
      'source type',
      'sources.0.type',
      'simulater',
      'sources[0].type: unknown value (allowed: simulator, http-poll, mqtt, gbfs)',
    ],
    [
      'simulator',
      'sources.0.sed',
      1,
      'sources[0].sed: unknown option (allowed: type, name, seed, intervalMs, city, topics, vehicles)',
    ],
    [
      'simulator topics',
      'sources.0.topics',
      ['camera'],
      'sources[0].topics[0]: unknown value (allowed: cameras, weather, accidents, airQuality, transit)',
    ],
    [
      'mqtt',
      'sources.2.qso',
      1,
      'sources[2].qso: unknown option (allowed: type, name, url, topics, clientId, username, password, qos, reconnectPeriodMs)',
    ],
    [
      'parser options',
      'sources.1.parser.feilds',
      {},
      'sources[1].parser.feilds: unknown option (allowed: format, topic, idPrefix, complete, fields, constants, valueMaps)',
    ],
    [
      'parser format',
      'sources.1.parser.format',
      'geo-json',
      'sources[1].parser.format: unknown value (allowed: open-meteo-weather, open-meteo-air-quality, nws-alerts, openaq-v3-latest, wzdx, open511, geojson, gtfs-rt-vehicles, gtfs-rt-trip-updates, gtfs-rt-alerts, camera-list)',
    ],
    [
      'parser topic',
      'sources.1.parser.topic',
      'parkng',
      'sources[1].parser.topic: not a served topic (allowed: cameras, weather, accidents, airQuality, parking, transit',
    ],
    [
      'backoff',
      'sources.1.backoff.initalMs',
      1,
      'sources[1].backoff.initalMs: unknown option (allowed: initialMs, maxMs, factor)',
    ],
    [
      'ttlMs keys',
      'ttlMs',
      { acidents: 1000 },
      'ttlMs.acidents: not a served topic (allowed: cameras, weather, accidents, airQuality, parking, transit',
    ],
    [
      'ttlMs twice',
      'ttlMs',
      { parking: 1000 },
      'ttlMs.parking: set either ttlMs.parking or topics.parking.ttlMs, not both',
    ],
    [
      'mqtt topics keys',
      'sources.2.topics',
      { bikes: 'x/+' },
      'sources[2].topics.bikes: not a served topic (allowed: cameras, weather, accidents, airQuality, parking, transit',
    ],
  ];
  for (const [section, path, value, expected] of cases) {
    const message = errorOf(mutated(path, value));
    assert.ok(message.startsWith(expected), `${section}: got "${message}", expected "${expected}"`);
  }
});

test('topic definitions are input: bounded, compiled, no remote refs', () => {
  const topic = (schema: unknown) => ({ sources: [{ type: 'simulator' }], topics: { t: { schema } } });
  const many = Object.fromEntries(
    Array.from({ length: 65 }, (_, i) => [`t${i}`, { schema: { type: 'object' } }]),
  );
  const cases: [unknown, string][] = [
    [
      { sources: [{ type: 'simulator' }], topics: { parking: {} } },
      'topics.parking.schema: is required for a topic outside the catalog (catalog: cameras, weather, accidents, airQuality, transit, bikes)',
    ],
    [topic({ $ref: 'https://evil.example/schema.json' }), 'topics.t.schema'],
    [topic({ properties: { a: { $ref: 'other.json#/x' } } }), 'topics.t.schema'],
    [topic({ type: 'objekt' }), 'topics.t.schema'],
    [
      topic({ type: 'object', properties: { a: { type: 'string', pattern: 'a'.repeat(600) } } }),
      'topics.t.schema',
    ],
    [topic({ type: 'object', properties: { a: { type: 'string', pattern: '(' } } }), 'topics.t.schema'],
    [
      topic({ type: 'object', properties: { plate: { type: 'string', pattern: '^([A-Z]+-?)+$' } } }),
      'topics.t.schema.properties.plate.pattern: pattern "^([A-Z]+-?)+$" is too complex to prove free of catastrophic backtracking: anchor it',
    ],
    [topic({ type: 'object', propertiez: {} }), 'topics.t.schema'],
    [topic('object'), 'topics.t.schema: must be an object'],
    [{ sources: [{ type: 'simulator' }], topics: many }, 'topics: must have at most 64 keys'],
    [
      { sources: [{ type: 'simulator' }], topics: JSON.parse('{"__proto__": {"schema": {}}}') },
      'topics.__proto__: invalid name',
    ],
    [
      { sources: [{ type: 'simulator' }], ttlMs: JSON.parse('{"constructor": 5}') },
      'ttlMs.constructor: invalid name',
    ],
    [
      {
        sources: [{ type: 'simulator' }],
        topics: {
          t: {
            schema: {},
            alerts: [1, 2].map(() => ({
              name: 'x',
              field: 'f',
              op: '>',
              value: 1,
              severity: 'info',
              message: 'm',
            })),
          },
        },
      },
      'topics.t.alerts[1].name: duplicate rule name "x"',
    ],
    [
      {
        sources: [{ type: 'simulator' }],
        topics: {
          t: {
            schema: {},
            alerts: [
              { name: 'x', field: 'f', op: '>', value: 1, severity: 'info', message: 'm'.repeat(501) },
            ],
          },
        },
      },
      'topics.t.alerts[0].message',
    ],
  ];
  for (const [value, expected] of cases) {
    const message = errorOf(value);
    assert.ok(message.startsWith(expected), `got "${message}", expected "${expected}"`);
  }
});

test('the schema agrees with the code: enums, descriptions, closed objects', () => {
  const schema = configSchema();
  const get = (path: string): unknown => at(schema, path.split('.'));
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.ok(typeof schema.$id === 'string' && schema.$id.length > 0);
  assert.ok(CONFIG_SCHEMA_PATH.endsWith('citypulse.schema.json'));
  // Shipped in the package and reachable as `citypulse/citypulse.schema.json`.
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
    files: string[];
    exports: Record<string, unknown>;
  };
  assert.ok(pkg.files.includes('citypulse.schema.json'));
  assert.equal(pkg.exports['./citypulse.schema.json'], './citypulse.schema.json');
  assert.deepEqual(get('$defs.source.properties.type.enum'), [...SOURCE_TYPES]);
  assert.deepEqual(get('$defs.parser.properties.format.enum'), [...PARSER_FORMATS]);
  assert.deepEqual(get('$defs.source-simulator.properties.topics.items.enum'), [...SIMULATOR_TOPICS]);
  assert.deepEqual(get('$defs.source-simulator.properties.city.enum'), Object.keys(CITIES));
  assert.deepEqual(get('$defs.alerts.then.properties.airQuality.then.properties.category.enum'), [
    ...AQI_CATEGORIES,
  ]);
  for (const t of SOURCE_TYPES) assert.ok(get(`$defs.source-${t}`), `source-${t}`);
  for (const f of PARSER_FORMATS) assert.ok(get(`$defs.parser-${f}`), `parser-${f}`);
  // Every property has a description; every object with properties is closed (the two dispatchers close
  // through their `if`/`then` branches; a topic's entity `schema` is a JSON Schema of its own).
  const stack: [unknown, string][] = [[schema, '#']];
  let checked = 0;
  while (stack.length > 0) {
    const [node, path] = stack.pop() as [unknown, string];
    if (!isContainer(node)) continue;
    if (isContainer(node.properties)) {
      if (!['#/$defs/source', '#/$defs/parser'].includes(path) && !path.includes('/if'))
        assert.equal(node.additionalProperties, false, `${path} is closed`);
      for (const [key, sub] of Object.entries(node.properties)) {
        checked += 1;
        const description = at(sub, ['description']);
        if (at(sub, ['$ref']) === undefined && !path.includes('/if'))
          assert.ok(
            typeof description === 'string' && description.length > 0,
            `${path}.${key} has a description`,
          );
      }
    }
    for (const [key, sub] of Object.entries(node)) stack.push([sub, `${path}/${key}`]);
  }
  assert.ok(checked > 80, `checked ${checked} properties`);
});

test('property: random mutations of a valid config give a config or a ConfigError, never a crash', () => {
  const base = fullConfig();
  const paths: (string | number)[][] = [];
  const walk = (value: unknown, path: (string | number)[]) => {
    paths.push(path);
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i]));
    else if (value !== null && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
  };
  walk(base, []);
  const hostile = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom(
      '__proto__',
      'constructor',
      '${UNSET}',
      '${PARKING_URL}',
      'parking',
      'transit',
      '',
      'x'.repeat(3000),
    ),
    fc.constantFrom(-1, 0, 1e308, Number.MAX_SAFE_INTEGER, 0.5, true, null, [], {}),
  );
  const mutation = fc.record({
    path: fc.constantFrom(...paths),
    kind: fc.constantFrom('set', 'delete', 'addKey'),
    key: fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom('__proto__', 'constructor', 'schema', 'topic', 'type'),
    ),
    value: hostile,
  });
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
      const config = structuredClone(base);
      for (const m of mutations) {
        if (m.kind === 'set') put(config, m.path, m.value);
        else if (m.kind === 'delete') put(config, m.path, undefined);
        else put(config, [...m.path, m.key], m.value);
      }
      // Through JSON, as the loader sees a file.
      const text = JSON.stringify(config);
      if (text === undefined) return;
      try {
        validateConfig(JSON.parse(text), ENV);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        assert.ok(error.message.length < 2000, 'errors stay one readable line');
      }
    }),
    { numRuns: 250 },
  );
});
