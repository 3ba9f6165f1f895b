import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import GtfsRealtimeBindings from 'gtfs-realtime-bindings';
import {
  createGtfsRtAlertsParser,
  createGtfsRtTripUpdatesParser,
  createGtfsRtVehiclesParser,
} from '../../src/aggregator/parsers/gtfs-realtime.js';
import { FeedFormatError, type FeedParser } from '../../src/aggregator/parsers/types.js';
import { createParser } from '../../src/aggregator/parsers/index.js';
import { createHttpPollSource } from '../../src/aggregator/sources/http-poll.js';
import type { EntityBase, EntityChange } from '../../src/protocol/topics.js';
import { startFixtureServer, waitFor, type FixtureServer } from './fixture-server.js';
import { camera, startFeedAggregator, type RecordingPublisher } from './helpers.js';

const { FeedMessage } = GtfsRealtimeBindings.transit_realtime;
type Entity = GtfsRealtimeBindings.transit_realtime.IFeedEntity;

/** A VehiclePositions entity. */
function vehicle(id: string, lat: number, lon: number, extra: Record<string, unknown> = {}): Entity {
  return {
    id: `e-${id}`,
    vehicle: {
      vehicle: { id, label: `Bus ${id}` },
      trip: { tripId: `trip-${id}`, routeId: 'R12' },
      position: { latitude: lat, longitude: lon, bearing: 90, speed: 8.5 },
      ...extra,
    },
  };
}

function feed(entities: Entity[], header: Record<string, unknown> = {}): Buffer {
  const message = FeedMessage.fromObject({
    header: { gtfsRealtimeVersion: '2.0', incrementality: 0, timestamp: 1772366400, ...header },
    entity: entities,
  });
  return Buffer.from(FeedMessage.encode(message).finish());
}

const PROTOBUF = 'application/x-protobuf';

/** Serves `bodies` in turn on `path` (the last one repeats). */
function queue(server: FixtureServer, path: string, bodies: Buffer[]): void {
  let next = 0;
  server.route(path, () => {
    const body = bodies[Math.min(next, bodies.length - 1)] as Buffer;
    next += 1;
    return { body, contentType: PROTOBUF };
  });
}

async function run(
  server: FixtureServer,
  parser: FeedParser,
  t: { after: (fn: () => Promise<void>) => void },
  alerts = true,
): ReturnType<typeof startFeedAggregator> {
  const source = createHttpPollSource({
    name: 'gtfs',
    url: `${server.url}/feed.pb`,
    parser,
    intervalMs: 10,
    timeoutMs: 4000,
    backoff: { initialMs: 5, maxMs: 20 },
  });
  return startFeedAggregator(t, [source], [parser.topic], alerts);
}

const requestsTo = (server: FixtureServer, path: string): number =>
  server.requests.filter((r) => r.path === path).length;

const changes = (publisher: RecordingPublisher, topic: string): EntityChange[] =>
  publisher.of(topic, 'UPDATE').map((m) => m.message.data as EntityChange);

test('gtfs-rt-vehicles over HTTP: vehicles added, moved and removed; each UPDATE carries exactly the change', async (t) => {
  const server = await startFixtureServer();
  t.after(() => server.close());
  queue(server, '/feed.pb', [
    feed([vehicle('A', 52.37, 4.89, { timestamp: 1772366400 }), vehicle('B', 52.38, 4.9)]),
    feed([
      vehicle('A', 52.371, 4.891, { timestamp: 1772366402 }),
      vehicle('B', 52.38, 4.9),
      vehicle('C', 52.39, 4.91),
    ]),
    feed([vehicle('A', 52.371, 4.891, { timestamp: 1772366402 }), vehicle('C', 52.39, 4.91)]),
  ]);
  const { aggregator, publisher } = await run(server, createGtfsRtVehiclesParser(), t);
  await waitFor(() => requestsTo(server, '/feed.pb') >= 5, 'five polls');
  await aggregator.stop();
  const updates = changes(publisher, 'transit');
  assert.deepEqual(
    updates.map((u) => ({ upserts: u.upserts.map((e) => e.id).sort(), removes: u.removes })),
    [
      { upserts: ['A', 'B'], removes: [] },
      { upserts: ['A', 'C'], removes: [] },
      { upserts: [], removes: ['B'] },
    ],
  );
  const a = updates[1]?.upserts.find((e) => e.id === 'A') as EntityBase & Record<string, unknown>;
  assert.deepEqual(a.location, { lat: 52.371, lon: 4.891 });
  assert.equal(a.routeId, 'R12');
  assert.equal(a.tripId, 'trip-A');
  assert.equal(a.label, 'Bus A');
  assert.equal(a.bearing, 90);
  assert.equal(a.speed, 8.5);
  assert.equal(a.observedAt, '2026-03-01T12:00:02.000Z');
  assert.equal(a.source, 'gtfs');
  const snapshot = aggregator.getTopicSnapshot('transit');
  assert.deepEqual(snapshot.entities.map((e) => e.id).sort(), ['A', 'C']);
  assert.equal(snapshot.seq, 3);
});

test('a TripUpdate in the same feed gives its vehicle delaySec; gtfs-rt-trip-updates keeps its own topic', async () => {
  const body = feed([
    vehicle('A', 52.37, 4.89),
    vehicle('B', 52.38, 4.9),
    {
      id: 'tu-1',
      tripUpdate: { trip: { tripId: 'trip-A', routeId: 'R12' }, vehicle: { id: 'A' }, delay: 120 },
    },
    {
      id: 'tu-2',
      tripUpdate: {
        trip: { tripId: 'trip-B', routeId: 'R12' },
        stopTimeUpdate: [{ stopSequence: 3, stopId: 'S3', arrival: { delay: -30 } }],
      },
    },
  ]);
  const context = { now: Date.parse('2026-03-01T12:00:00Z'), sourceName: 'gtfs' };
  const batch = createGtfsRtVehiclesParser().parse(body, context);
  const byId = new Map((batch.upserts as Record<string, unknown>[]).map((e) => [e.id, e]));
  assert.equal(byId.get('A')?.delaySec, 120);
  assert.equal(byId.get('B')?.delaySec, -30, 'matched by trip id when the update names no vehicle');
  const trips = createGtfsRtTripUpdatesParser().parse(body, context);
  assert.equal(trips.topic, 'transitDelays');
  assert.deepEqual(
    (trips.upserts as Record<string, unknown>[]).map((e) => [e.id, e.delaySec, e.stopId ?? null]),
    [
      ['A', 120, null],
      ['trip:trip-B', -30, 'S3'],
    ],
  );
});

test('gtfs-rt-alerts over HTTP: a service alert is raised naming its routes and stops, resolved once unlisted', async (t) => {
  const server = await startFixtureServer();
  t.after(() => server.close());
  const alert: Entity = {
    id: 'alert-1',
    alert: {
      effect: 4,
      severityLevel: 3,
      headerText: { translation: [{ text: 'Detour on Damrak', language: 'en' }] },
      informedEntity: [{ routeId: 'R12' }, { stopId: 'S1' }, { routeId: 'R14' }],
    },
  };
  const future: Entity = {
    id: 'alert-2',
    alert: { activePeriod: [{ start: 1900000000 }], headerText: { translation: [{ text: 'Later' }] } },
  };
  queue(server, '/feed.pb', [feed([alert, future]), feed([alert, future]), feed([])]);
  const { aggregator, publisher } = await run(server, createGtfsRtAlertsParser(), t);
  await waitFor(() => requestsTo(server, '/feed.pb') >= 4, 'four polls');
  await aggregator.stop();
  const alerts = publisher.of('transit', 'ALERT').map((m) => m.message.data as Record<string, unknown>);
  assert.deepEqual(
    alerts.map((a) => [a.rule, a.state, a.entityId, a.severity]),
    [
      ['service-alert', 'raised', 'alert-1', 'warning'],
      ['service-alert', 'resolved', 'alert-1', 'warning'],
    ],
  );
  assert.equal(alerts[0]?.message, 'Detour on Damrak (routes R12, R14; stops S1)');
  assert.equal(publisher.of('transit', 'UPDATE').length, 0);
});

test('random bytes never throw anything but FeedFormatError (property)', () => {
  const parsers = [createGtfsRtVehiclesParser(), createGtfsRtTripUpdatesParser(), createGtfsRtAlertsParser()];
  const context = { now: Date.parse('2026-03-01T12:00:00Z'), sourceName: 'gtfs', reject: () => {} };
  const valid = feed([vehicle('A', 52.37, 4.89)]);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 512 }),
        // mutations of a valid feed: one byte changed, or cut short
        fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })).map(([at, b]) => {
          const copy = Buffer.from(valid);
          copy[at] = b;
          return copy;
        }),
        fc.nat(valid.length - 1).map((n) => valid.subarray(0, n)),
      ),
      (bytes) => {
        for (const parser of parsers) {
          try {
            parser.parse(Buffer.from(bytes), context);
          } catch (error) {
            assert.ok(error instanceof FeedFormatError, `unexpected ${String(error)}`);
          }
        }
      },
    ),
    { numRuns: 300, seed: 12 },
  );
});

/** An entity field on the wire: tag 0x12 (field 2, length-delimited), then an empty FeedEntity. */
function manyEmptyEntities(count: number): Buffer {
  const header = FeedMessage.encode(
    FeedMessage.fromObject({ header: { gtfsRealtimeVersion: '2.0' } }),
  ).finish();
  return Buffer.concat([Buffer.from(header), Buffer.alloc(count * 2, Buffer.from([0x12, 0x00]))]);
}

const HOSTILE: readonly { name: string; body: Buffer; refused: boolean }[] = [
  { name: 'truncated protobuf', body: feed([vehicle('Z', 52.3, 4.8)]).subarray(0, 20), refused: true },
  { name: 'not protobuf (JSON text)', body: Buffer.from('{"entity":[]}'), refused: true },
  {
    name: 'wrong gtfs_realtime_version',
    body: feed([vehicle('Z', 52.3, 4.8)], { gtfsRealtimeVersion: '9.9' }),
    refused: true,
  },
  { name: '60,000 entities (over maxEntities)', body: manyEmptyEntities(60_000), refused: true },
  {
    name: 'NaN position',
    body: feed([vehicle('A', 52.37, 4.89), vehicle('Z', Number.NaN, 4.8)]),
    refused: false,
  },
  {
    name: 'NaN position of a listed vehicle (retained at its last valid position)',
    body: feed([vehicle('A', Number.NaN, 4.89)]),
    refused: false,
  },
  ...fc
    .sample(fc.uint8Array({ minLength: 1, maxLength: 256 }), { numRuns: 3, seed: 7 })
    .map((bytes, i) => ({ name: `random bytes #${i + 1}`, body: Buffer.from(bytes), refused: true })),
  {
    name: 'latitude out of range',
    body: feed([vehicle('A', 52.37, 4.89), vehicle('Z', 123, 4.8)]),
    refused: false,
  },
  {
    name: 'no position',
    body: feed([vehicle('A', 52.37, 4.89), { id: 'z', vehicle: { vehicle: { id: 'Z' } } }]),
    refused: false,
  },
  {
    name: 'vehicle id of 10,000 characters',
    body: feed([vehicle('A', 52.37, 4.89), vehicle('Z'.repeat(10_000), 52.3, 4.8)]),
    refused: false,
  },
  {
    name: 'repeated vehicle id',
    body: feed([vehicle('A', 52.37, 4.89), vehicle('A', 52.2, 4.7)]),
    refused: false,
  },
];

test('hostile GTFS-Realtime bodies: refused polls take no seq, bad vehicles are rejected readings, other topics flow', async (t) => {
  const server = await startFixtureServer();
  t.after(() => server.close());
  for (const { name, body, refused } of HOSTILE) {
    await t.test(name, async (tt) => {
      server.requests.length = 0;
      queue(server, '/feed.pb', [feed([vehicle('A', 52.37, 4.89)]), body]);
      const { aggregator, publisher, push } = await run(server, createGtfsRtVehiclesParser(), tt, false);
      await waitFor(() => requestsTo(server, '/feed.pb') >= 3, 'the hostile body served twice');
      const status = aggregator.sourceStatus().find((s) => s.name === 'gtfs');
      if (refused) {
        assert.equal(status?.state, 'failing');
        assert.match(status?.lastError ?? '', /GTFS-Realtime|gtfs_realtime_version/);
      } else {
        assert.ok((status?.rejected ?? 0) >= 1, 'the bad vehicle counted as rejected');
        assert.deepEqual(
          aggregator.getTopicSnapshot('transit').entities.map((e) => e.id),
          ['A'],
        );
      }
      // The good first poll took seq 1; a refused poll or an unchanged one takes none.
      assert.equal(publisher.of('transit').length, 1);
      assert.equal(aggregator.getTopicSnapshot('transit').seq, 1);
      push.emit({ topic: 'cameras', upserts: [camera('c1')] });
      assert.equal(publisher.of('cameras', 'UPDATE').length, 1, 'another topic keeps flowing');
      await aggregator.stop();
    });
  }
});

test('config: the GTFS-Realtime formats and their options', () => {
  assert.equal(createParser({ format: 'gtfs-rt-vehicles' }, 'p').topic, 'transit');
  assert.equal(createParser({ format: 'gtfs-rt-vehicles', topic: 'buses' }, 'p').topic, 'buses');
  assert.equal(createParser({ format: 'gtfs-rt-trip-updates' }, 'p').topic, 'transitDelays');
  assert.equal(createParser({ format: 'gtfs-rt-alerts', language: 'nl' }, 'p').body, 'binary');
  assert.throws(() => createParser({ format: 'gtfs-rt-vehicles', maxEntities: 0 }, 'p'), /p\.maxEntities/);
  assert.throws(() => createParser({ format: 'gtfs-rt-alerts', color: 'red' }, 'p'), /p\.color/);
});

test('gtfs-rt-alerts takes at most 256 alerts in force from one feed; the rest are rejected readings', () => {
  const entities: Entity[] = Array.from({ length: 300 }, (_, i) => ({
    id: `alert-${i}`,
    alert: { informedEntity: [{ routeId: `R${i}` }], headerText: { translation: [{ text: `Alert ${i}` }] } },
  }));
  const reasons: string[] = [];
  const batch = createGtfsRtAlertsParser().parse(feed(entities), {
    now: Date.parse('2026-03-01T12:00:00Z'),
    sourceName: 'gtfs',
    reject: (reason) => reasons.push(reason),
  });
  assert.equal(batch.alerts?.length, 256);
  assert.equal(reasons.length, 44);
  assert.equal(batch.alerts?.[0]?.headline, 'Alert 0 (routes R0)');
});
