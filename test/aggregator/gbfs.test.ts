import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { validateConfig } from '../../src/aggregator/config.js';
import { createGbfsSource, type GbfsSourceOptions } from '../../src/aggregator/sources/gbfs.js';
import type { EntityChange } from '../../src/protocol/topics.js';
import { FIXTURES_DIR, startFixtureServer, waitFor, type FixtureServer } from './fixture-server.js';
import { camera, startFeedAggregator } from './helpers.js';

type Doc = Record<string, unknown>;

function fixture(path: string): Doc {
  return JSON.parse(readFileSync(`${FIXTURES_DIR}gbfs/${path}`, 'utf8')) as Doc;
}

async function run(
  server: FixtureServer,
  version: 'v2.3' | 'v3.0',
  t: { after: (fn: () => Promise<void>) => void },
  options: Partial<GbfsSourceOptions> = {},
): ReturnType<typeof startFeedAggregator> {
  const source = createGbfsSource({
    name: 'bikeshare',
    url: `${server.url}/gbfs/${version}/gbfs.json`,
    intervalMs: 10,
    timeoutMs: 4000,
    backoff: { initialMs: 5, maxMs: 20 },
    ...options,
  });
  return startFeedAggregator(t, [source], ['bikes'], false);
}

const requestsTo = (server: FixtureServer, suffix: string): number =>
  server.requests.filter((r) => r.path.endsWith(suffix)).length;

test('GBFS 2.3: stations and free bikes; a changed availability publishes only that station; ttl is honoured', async (t) => {
  const server = await startFixtureServer();
  t.after(() => server.close());
  const status = fixture('v2.3/station_status.json');
  let polls = 0;
  server.route('/gbfs/v2.3/station_status.json', () => {
    polls += 1;
    if (polls < 3) return { body: JSON.stringify(status) };
    const changed = structuredClone(status) as { data: { stations: Doc[] } };
    (changed.data.stations[1] as Doc).num_bikes_available = 4;
    (changed.data.stations[1] as Doc).num_docks_available = 16;
    (changed.data.stations[1] as Doc).last_reported = 1772366450;
    return { body: JSON.stringify(changed) };
  });
  const { aggregator, publisher } = await run(server, 'v2.3', t);
  await waitFor(() => polls >= 5, 'five polls');
  await aggregator.stop();
  const updates = publisher.of('bikes', 'UPDATE').map((m) => m.message.data as EntityChange);
  assert.equal(updates.length, 2);
  const first = updates[0] as EntityChange;
  assert.deepEqual(first.upserts.map((e) => e.id).sort(), ['s1', 's2', 's3', 'vehicle:b1']);
  const s1 = first.upserts.find((e) => e.id === 's1') as unknown as Doc;
  assert.deepEqual(
    { ...s1, source: undefined },
    {
      id: 's1',
      name: 'Centraal Station',
      location: { lat: 52.3789, lon: 4.9005 },
      kind: 'station',
      bikesAvailable: 12,
      docksAvailable: 28,
      isRenting: true,
      isReturning: true,
      updatedAt: '2026-03-01T11:59:50.000Z',
      source: undefined,
    },
  );
  const bike = first.upserts.find((e) => e.id === 'vehicle:b1') as unknown as Doc;
  assert.equal(bike.kind, 'vehicle');
  assert.equal(bike.bikesAvailable, 1);
  assert.equal(bike.docksAvailable, 0);
  assert.equal(bike.vehicleType, 'ebike');
  assert.equal(bike.rangeMeters, 12000);
  assert.deepEqual(updates[1], {
    upserts: [
      {
        ...(first.upserts.find((e) => e.id === 's2') as object),
        bikesAvailable: 4,
        docksAvailable: 16,
        updatedAt: '2026-03-01T12:00:50.000Z',
      },
    ],
    removes: [],
  });
  assert.equal(requestsTo(server, 'station_information.json'), 1, 'ttl 3600: fetched once');
  assert.ok(requestsTo(server, 'v2.3/gbfs.json') >= 5, 'ttl 0: the discovery every poll');
  assert.ok(
    server.requests.some((r) => r.path.endsWith('v2.3/gbfs.json') && r.status === 304),
    'the unchanged discovery revalidated with a 304',
  );
});

test('GBFS 3.0: localized names, vehicle_status, includeVehicles false leaves vehicles out', async (t) => {
  const server = await startFixtureServer();
  t.after(() => server.close());
  const { aggregator } = await run(server, 'v3.0', t, { language: 'en' });
  await waitFor(() => aggregator.getTopicSnapshot('bikes').seq >= 1, 'the first dataset');
  const entities = aggregator.getTopicSnapshot('bikes').entities as unknown as Doc[];
  assert.deepEqual(
    entities.map((e) => [e.id, e.name, e.bikesAvailable, e.docksAvailable]),
    [
      ['p1', 'Station Square', 7, 3],
      ['p2', 'Bellecour', 2, 10],
      ['vehicle:v1', 'Vehicle v1', 1, 0],
    ],
  );
  assert.equal(entities[0]?.updatedAt, '2026-03-01T11:59:50.000Z');
  await aggregator.stop();
  const { aggregator: docksOnly } = await run(server, 'v3.0', t, { includeVehicles: false });
  await waitFor(() => docksOnly.getTopicSnapshot('bikes').seq >= 1, 'the first dataset');
  assert.deepEqual(
    docksOnly.getTopicSnapshot('bikes').entities.map((e) => e.id),
    ['p1', 'p2'],
  );
});

interface Hostile {
  readonly name: string;
  readonly path: string;
  readonly respond: (original: Doc) => { status?: number; body: string };
  /** `refused`: the poll fails; `rejected`: readings counted, the rest applied; `skipped`: silently left out. */
  readonly outcome: 'refused' | 'rejected' | 'skipped';
}

const json = (doc: unknown): { body: string } => ({ body: JSON.stringify(doc) });
const edit = (
  doc: Doc,
  change: (data: { stations: Doc[]; feeds?: Doc[] } & Doc) => void,
): { body: string } => {
  const copy = structuredClone(doc);
  change(copy.data as { stations: Doc[] });
  return json(copy);
};

const HOSTILE: readonly Hostile[] = [
  {
    name: 'discovery of GBFS 1.1',
    path: 'gbfs.json',
    respond: (d) => json({ ...d, version: '1.1' }),
    outcome: 'refused',
  },
  {
    name: 'discovery without a version',
    path: 'gbfs.json',
    respond: (d) => json({ ...d, version: undefined }),
    outcome: 'refused',
  },
  {
    name: 'status of another major version',
    path: 'station_status.json',
    respond: (d) => json({ ...d, version: '3.0' }),
    outcome: 'refused',
  },
  {
    name: 'discovery without station_status',
    path: 'gbfs.json',
    respond: (d) =>
      edit(d, (data) => {
        const en = data.en as { feeds: Doc[] };
        en.feeds = en.feeds.filter((f) => f.name !== 'station_status');
      }),
    outcome: 'refused',
  },
  {
    name: 'discovery without data',
    path: 'gbfs.json',
    respond: (d) => json({ ...d, data: [] }),
    outcome: 'refused',
  },
  {
    name: '404 on station_information',
    path: 'station_information.json',
    respond: () => ({ status: 404, body: 'gone' }),
    outcome: 'refused',
  },
  {
    name: '500 on free_bike_status',
    path: 'free_bike_status.json',
    respond: () => ({ status: 500, body: 'oops' }),
    outcome: 'refused',
  },
  {
    name: 'status not JSON',
    path: 'station_status.json',
    respond: () => ({ body: '{"data": [' }),
    outcome: 'refused',
  },
  {
    name: 'status nested 200 deep',
    path: 'station_status.json',
    respond: () => ({ body: '['.repeat(200) + ']'.repeat(200) }),
    outcome: 'refused',
  },
  {
    name: 'stations not a list',
    path: 'station_status.json',
    respond: (d) =>
      edit(d, (data) => {
        data.stations = 'many' as unknown as Doc[];
      }),
    outcome: 'refused',
  },
  {
    name: 'negative bike count',
    path: 'station_status.json',
    respond: (d) =>
      edit(d, (data) => {
        (data.stations[1] as Doc).num_bikes_available = -3;
      }),
    outcome: 'rejected',
  },
  {
    name: 'fractional dock count',
    path: 'station_status.json',
    respond: (d) =>
      edit(d, (data) => {
        (data.stations[1] as Doc).num_docks_available = 2.5;
      }),
    outcome: 'rejected',
  },
  {
    name: 'station id repeated in station_information',
    path: 'station_information.json',
    respond: (d) =>
      edit(d, (data) => {
        data.stations.push({ ...(data.stations[0] as Doc), station_id: 's2', name: 'Other' });
      }),
    outcome: 'rejected',
  },
  {
    name: 'status for an unknown station',
    path: 'station_status.json',
    respond: (d) =>
      edit(d, (data) => {
        data.stations.push({ station_id: 'nowhere', num_bikes_available: 1, num_docks_available: 1 });
      }),
    outcome: 'skipped',
  },
  {
    name: 'free bike at NaN-like latitude',
    path: 'free_bike_status.json',
    respond: (d) =>
      edit(d, (data) => {
        (data.bikes as Doc[]).push({ bike_id: 'bad', lat: 'NaN', lon: 4.9 });
      }),
    outcome: 'rejected',
  },
];

test('hostile GBFS documents: refused polls take no seq, bad records are rejected readings, other topics flow', async (t) => {
  const server = await startFixtureServer();
  t.after(() => server.close());
  for (const { name, path, respond, outcome } of HOSTILE) {
    await t.test(name, async (tt) => {
      const route = `/gbfs/v2.3/${path}`;
      const original = fixture(`v2.3/${path}`);
      let served = 0;
      // ttl 0 on the good copy, so even the hour-long station_information is fetched again
      server.route(route, () =>
        ++served === 1 ? json({ ...original, ttl: 0 }) : respond({ ...original, ttl: 0 }),
      );
      tt.after(() => server.route(route, null));
      const { aggregator, publisher, push } = await run(server, 'v2.3', tt);
      // The first poll is good, then the hostile document, served twice.
      await waitFor(() => served >= 3, 'polls past the hostile document');
      const status = aggregator.sourceStatus().find((s) => s.name === 'bikeshare');
      const ids = aggregator.getTopicSnapshot('bikes').entities.map((e) => e.id);
      if (outcome === 'refused') {
        assert.equal(status?.state, 'failing', `lastError ${status?.lastError}`);
        assert.equal(publisher.of('bikes').length, 1, 'only the first good poll took a seq');
      } else if (outcome === 'rejected') {
        assert.ok((status?.rejected ?? 0) >= 1, 'counted as rejected');
        assert.equal(status?.state, 'running');
        // A refused record of a listed station is retained at its last valid state: nothing changed.
        assert.ok(ids.includes('s2'));
        assert.equal(publisher.of('bikes').length, 1);
      } else {
        assert.equal(status?.rejected, 0);
        assert.equal(publisher.of('bikes').length, 1, 'nothing changed');
      }
      assert.ok(ids.includes('s1'), 'the good stations stay');
      assert.ok(!ids.includes('nowhere') && !ids.includes('vehicle:bad'));
      push.emit({ topic: 'cameras', upserts: [camera('c1')] });
      assert.equal(publisher.of('cameras', 'UPDATE').length, 1, 'another topic keeps flowing');
      await aggregator.stop();
    });
  }
});

test('a frozen GBFS document: the whole poll times out, nothing partial is published, it retries, other topics flow', async (t) => {
  const server = await startFixtureServer();
  t.after(() => server.close());
  // Discovery and station_information answer; station_status never does (a frozen upstream).
  server.hang('/gbfs/v2.3/station_status.json');
  const { aggregator, publisher, push } = await run(server, 'v2.3', t, { timeoutMs: 100 });
  await waitFor(() => requestsTo(server, 'station_status.json') >= 2, 'a retry after the timeout');
  const status = aggregator.sourceStatus().find((s) => s.name === 'bikeshare');
  assert.equal(status?.state, 'failing');
  assert.match(status?.lastError ?? '', /timed out/);
  assert.equal(publisher.of('bikes').length, 0, 'no partial poll was published, no seq taken');
  assert.deepEqual(aggregator.getTopicSnapshot('bikes').entities, []);
  push.emit({ topic: 'cameras', upserts: [camera('c1')] });
  assert.equal(publisher.of('cameras', 'UPDATE').length, 1, 'another topic keeps flowing');
  await aggregator.stop(); // stops with a request still hanging
});

test('feeds on another host than the discovery are not fetched (nor sent the headers) unless feedHosts lists it', async (t) => {
  const home = await startFixtureServer();
  const elsewhere = await startFixtureServer();
  t.after(() => Promise.all([home.close(), elsewhere.close()]).then(() => undefined));
  // The discovery points station_status at another server (another port: another host).
  const discovery = fixture('v2.3/gbfs.json') as { data: { en: { feeds: { name: string; url: string }[] } } };
  for (const feed of discovery.data.en.feeds) {
    if (feed.name === 'station_status') feed.url = `${elsewhere.url}/gbfs/v2.3/station_status.json`;
  }
  home.route('/gbfs/v2.3/gbfs.json', () => json(discovery));
  const elsewhereHost = new URL(elsewhere.url).host;
  const cases: [string, readonly string[] | undefined, boolean][] = [
    ['no feedHosts', undefined, false],
    ['another host listed', ['feeds.example.org'], false],
    ['its host and port', [elsewhereHost], true],
    ['its host name (any port), in capitals', [new URL(elsewhere.url).hostname.toUpperCase()], true],
  ];
  for (const [name, feedHosts, allowed] of cases) {
    await t.test(name, async (tt) => {
      elsewhere.requests.length = 0;
      home.requests.length = 0;
      const { aggregator, publisher } = await run(home, 'v2.3', tt, {
        headers: { 'x-api-key': 'secret-of-the-operator' },
        ...(feedHosts === undefined ? {} : { feedHosts }),
      });
      if (allowed) {
        await waitFor(() => publisher.of('bikes').length >= 1, 'the stations');
        assert.deepEqual(
          [...new Set(elsewhere.requests.map((r) => r.headers['x-api-key']))],
          ['secret-of-the-operator'],
        );
      } else {
        await waitFor(() => requestsTo(home, 'gbfs.json') >= 3, 'a few polls');
        const status = aggregator.sourceStatus().find((s) => s.name === 'bikeshare');
        assert.equal(status?.state, 'failing');
        assert.match(
          status?.lastError ?? '',
          /station_status URL is on host .* not the discovery's .*feedHosts/,
        );
        assert.equal(elsewhere.requests.length, 0, 'nothing was sent to the other host');
        assert.equal(publisher.of('bikes').length, 0, 'no seq taken');
      }
      await aggregator.stop();
    });
  }
});

test('config: the gbfs source type and its options', () => {
  const config = validateConfig({
    topics: { bikes: {} },
    sources: [
      { type: 'gbfs', name: 'velo', url: 'https://example.org/gbfs.json', language: 'nl', intervalMs: 5000 },
    ],
  });
  assert.deepEqual(config.sources[0], {
    type: 'gbfs',
    name: 'velo',
    url: 'https://example.org/gbfs.json',
    topic: 'bikes',
    includeVehicles: true,
    language: 'nl',
    intervalMs: 5000,
  });
  assert.throws(
    () => validateConfig({ sources: [{ type: 'gbfs', name: 'v', url: 'https://e.org/g.json', lang: 'nl' }] }),
    /sources\[0\]\.lang/,
  );
  assert.throws(
    () => validateConfig({ sources: [{ type: 'gbfs', name: 'v', url: 'ftp://e.org/g.json' }] }),
    /sources\[0\]\.url/,
  );
  const withHosts = validateConfig({
    topics: { bikes: {} },
    sources: [
      { type: 'gbfs', name: 'v', url: 'https://e.org/g.json', feedHosts: ['cdn.e.org', 'e.net:8443'] },
    ],
  });
  assert.deepEqual((withHosts.sources[0] as { feedHosts?: unknown }).feedHosts, ['cdn.e.org', 'e.net:8443']);
  for (const bad of [['https://cdn.e.org'], ['cdn.e.org/path'], [''], 'cdn.e.org', [7]]) {
    assert.throws(
      () =>
        validateConfig({
          topics: { bikes: {} },
          sources: [{ type: 'gbfs', name: 'v', url: 'https://e.org/g.json', feedHosts: bad }],
        }),
      /sources\[0\]\.feedHosts/,
      JSON.stringify(bad),
    );
  }
  // The topic it reports to must be served (listed in "topics", or a city topic).
  assert.throws(
    () => validateConfig({ sources: [{ type: 'gbfs', name: 'v', url: 'https://e.org/g.json' }] }),
    /sources\[0\]\.type: not a served topic/,
  );
  assert.throws(
    () =>
      validateConfig({
        topics: { bikes: {} },
        sources: [{ type: 'gbfs', name: 'v', url: 'https://e.org/g.json', topic: 'bikez' }],
      }),
    /sources\[0\]\.topic: not a served topic/,
  );
});
