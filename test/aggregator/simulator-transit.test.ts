import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AMSTERDAM } from '../../src/aggregator/cities.js';
import {
  ConfigError,
  createSourceFromConfig,
  validateConfig,
  type SourceConfig,
} from '../../src/aggregator/config.js';
import {
  MAX_VEHICLES,
  TransitSimulation,
  bearingBetween,
  type TransitVehicle,
} from '../../src/aggregator/simulator-transit.js';
import { DEFAULT_SIMULATOR_TOPICS, createSimulator } from '../../src/aggregator/simulator.js';
import type { SourceBatch, SourceContext } from '../../src/aggregator/source.js';
import type { EntityChange } from '../../src/protocol/topics.js';
import { silentLogger } from '../../src/shared/logger.js';
import { resolveTopicRegistry } from '../../src/protocol/topic-registry.js';
import { startServer } from '../helpers/servers.js';
import { connect } from '../helpers/test-client.js';
import { ManualClock } from './helpers.js';

// Every simulated vehicle must be a valid entity of the catalog's transit topic (the registry's validator).
const transitValidator = resolveTopicRegistry(['transit']).validator('transit');
function validTransit(value: unknown): { ok: boolean; why: string } {
  const result = transitValidator(value);
  return { ok: result.ok, why: result.ok ? '' : `${result.field}: ${result.error}` };
}

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const EARTH_RADIUS_M = 6_371_000;

function metres(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180;
  const x = (b.lon - a.lon) * rad * Math.cos(((a.lat + b.lat) / 2) * rad);
  const y = (b.lat - a.lat) * rad;
  return Math.sqrt(x * x + y * y) * EARTH_RADIUS_M;
}

/** Distance (m) from `p` to the nearest point of the polyline (planar projection: exact enough over a city). */
function offRoute(p: { lat: number; lon: number }, line: readonly { lat: number; lon: number }[]): number {
  const rad = Math.PI / 180;
  const kx = Math.cos(p.lat * rad) * rad * EARTH_RADIUS_M;
  const ky = rad * EARTH_RADIUS_M;
  let best = Infinity;
  for (let i = 1; i < line.length; i++) {
    const a = line[i - 1] as { lat: number; lon: number };
    const b = line[i] as { lat: number; lon: number };
    const [ax, ay, bx, by, px, py] = [a.lon * kx, a.lat * ky, b.lon * kx, b.lat * ky, p.lon * kx, p.lat * ky];
    const len2 = (bx - ax) ** 2 + (by - ay) ** 2;
    const t =
      len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / len2));
    best = Math.min(best, Math.hypot(px - (ax + t * (bx - ax)), py - (ay + t * (by - ay))));
  }
  return best;
}

function run(seed: number, vehicles: number, ticks: number, clock = new ManualClock(T0)): TransitVehicle[][] {
  const sim = new TransitSimulation(AMSTERDAM, seed, 'simulator', vehicles);
  const out: TransitVehicle[][] = [];
  for (let i = 0; i < ticks; i++) {
    out.push(structuredClone(sim.step(clock.now())));
    clock.advance(1000);
  }
  return out;
}

test('the fleet is deterministic for a seed and a clock, and differs between seeds', () => {
  assert.deepEqual(run(7, 40, 60), run(7, 40, 60));
  assert.notDeepEqual(run(7, 40, 60), run(8, 40, 60));
});

test('vehicles keep their ids, stay on their routes, move as their speed says and report valid transit entities', () => {
  const TICKS = 600;
  const ticks = run(3, 40, TICKS);
  const ids = ticks[0]?.map((v) => v.id) ?? [];
  assert.equal(ids.length, 40);
  assert.equal(new Set(ids).size, 40, 'ids are unique');
  const routes = new Map(AMSTERDAM.transitRoutes.map((r) => [r.id, r]));
  let moves = 0;
  let stands = 0;
  let straight = 0;
  let sawStop = false;
  const trips = new Map<string, Set<string>>();
  for (const [i, tick] of ticks.entries()) {
    assert.deepEqual(
      tick.map((v) => v.id),
      ids,
      `tick ${i}: the same vehicles in the same order`,
    );
    for (const [k, v] of tick.entries()) {
      assert.ok(validTransit(v).ok, `tick ${i} ${v.id}: ${validTransit(v).why}`);
      assert.ok(Number.isInteger(v.bearing) && v.bearing >= 0 && v.bearing < 360, `bearing ${v.bearing}`);
      const route = routes.get(v.routeId);
      assert.ok(route !== undefined, `known route ${v.routeId}`);
      assert.ok(offRoute(v.location, route.waypoints) < 1, `${v.id} on ${v.routeId}`);
      if (v.stopId !== undefined) sawStop = true;
      trips.set(v.id, (trips.get(v.id) ?? new Set()).add(v.tripId));
      const before = ticks[i - 1]?.[k];
      if (before === undefined) continue;
      if (before.observedAt === v.observedAt) {
        // Standing at a stop: the report is unchanged (so the aggregator publishes nothing for it).
        assert.deepEqual(v, before);
        assert.ok(v.stopId !== undefined, 'only a vehicle at a stop stands still');
        stands += 1;
        continue;
      }
      moves += 1;
      // Observed now; the previous report may be older (a vehicle leaving a stop), the movement is this step's.
      assert.equal(v.observedAt, new Date(T0 + i * 1000).toISOString());
      const moved = metres(before.location, v.location);
      // Speed is along the route: the straight line is as long, or shorter round a corner.
      assert.ok(moved < v.speed + 0.5, `${v.id} moved ${moved} m in 1 s at ${v.speed} m/s`);
      if (Math.abs(moved - v.speed) < 0.5) straight += 1;
      assert.ok(v.speed <= 15, 'a plausible speed');
      if (moved > 5) {
        const diff = Math.abs(bearingBetween(before.location, v.location) - v.bearing) % 360;
        assert.ok(Math.min(diff, 360 - diff) <= 2, `${v.id} bearing ${v.bearing} follows its movement`);
      }
    }
  }
  assert.ok(moves > stands * 5, `most reports are moves (${moves} moves, ${stands} stands)`);
  assert.ok(straight > moves * 0.95, `the distance moved matches the speed (${straight} of ${moves})`);
  assert.ok(stands > 0, 'vehicles stop at stops');
  assert.ok(sawStop, 'arrivals name the stop');
  assert.ok(
    [...trips.values()].some((s) => s.size > 1),
    'a vehicle reaching a terminus starts a new trip back',
  );
});

test('a step without time passing moves nothing, and a long pause does not teleport vehicles', () => {
  const sim = new TransitSimulation(AMSTERDAM, 1, 'simulator', 10);
  const first = structuredClone(sim.step(T0));
  assert.deepEqual(sim.step(T0), first);
  const later = sim.step(T0 + 3_600_000);
  for (const [k, v] of later.entries()) {
    const before = first[k] as TransitVehicle;
    assert.ok(metres(before.location, v.location) <= 15 * 10 + 1, 'at most 10 s of movement');
  }
});

test('the fleet size is bounded', () => {
  for (const bad of [-1, 1.5, MAX_VEHICLES + 1, Number.NaN])
    assert.throws(() => new TransitSimulation(AMSTERDAM, 1, 's', bad), RangeError);
  assert.equal(new TransitSimulation(AMSTERDAM, 1, 's', 0).step(T0).length, 0);
  assert.throws(
    () => new TransitSimulation({ ...AMSTERDAM, transitRoutes: [] }, 1, 's', 1),
    /no transit routes/,
  );
});

test('transit is a simulator topic on request only; the source reports the fleet as a complete batch', async () => {
  assert.deepEqual(createSimulator().topics, DEFAULT_SIMULATOR_TOPICS);
  const batches: SourceBatch[] = [];
  const clock = new ManualClock(T0);
  const context: SourceContext = {
    emit: (batch) => batches.push(batch),
    reportError: () => assert.fail('no errors'),
    reportSuccess: () => {},
    reject: () => assert.fail('no rejects'),
    now: clock.now,
    logger: silentLogger,
  };
  const simulator = createSimulator({ seed: 2, topics: ['transit'], vehicles: 12, intervalMs: 60_000 });
  await simulator.start(context);
  await simulator.stop();
  assert.equal(batches.length, 1);
  assert.equal(batches[0]?.topic, 'transit');
  assert.equal(batches[0]?.complete, true);
  assert.equal(batches[0]?.upserts?.length, 12);
});

test('the config accepts a simulator transit fleet and refuses a bad fleet size', () => {
  const config = validateConfig({
    topics: { transit: {} },
    sources: [{ type: 'simulator', topics: ['transit'], vehicles: 1000, intervalMs: 1000 }],
  });
  assert.deepEqual(config.sources[0], {
    type: 'simulator',
    name: 'simulator',
    topics: ['transit'],
    vehicles: 1000,
    intervalMs: 1000,
  });
  assert.deepEqual(createSourceFromConfig(config.sources[0] as SourceConfig, 0).topics, ['transit']);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.integer({ max: -1 }),
        fc.integer({ min: MAX_VEHICLES + 1 }),
        fc.double({ noInteger: true }),
        fc.string(),
        fc.boolean(),
        fc.constant(null),
        fc.array(fc.integer()),
      ),
      (vehicles) => {
        assert.throws(
          () =>
            validateConfig({
              topics: { transit: {} },
              sources: [{ type: 'simulator', topics: ['transit'], vehicles }],
            }),
          (e: unknown) => e instanceof ConfigError && e.field === 'sources[0].vehicles',
        );
      },
    ),
    { numRuns: 200 },
  );
});

test('through the real server: a client subscribed to transit gets the fleet, then UPDATEs of the moved vehicles only', async (t) => {
  const FLEET = 200;
  const server = await startServer(t, {
    topics: ['cameras', 'transit'],
    sources: [createSimulator({ seed: 5, topics: ['transit'], vehicles: FLEET, intervalMs: 50 })],
  });
  const { client, snapshot } = await connect(`ws://127.0.0.1:${server.port}/ws`, 'topics=transit');
  t.after(() => client.close());
  assert.equal(snapshot.type, 'SNAPSHOT');
  const state = new Map<string, TransitVehicle>();
  const data = snapshot.data as Record<string, { entities: TransitVehicle[] }>;
  for (const v of data.transit?.entities ?? []) state.set(v.id, v);
  // The first tick may land before or after the snapshot; wait until the client holds the whole fleet. Then every
  // UPDATE carries vehicles that moved, and leaves out those standing at a stop (one arrives every few ticks).
  let updates = 0;
  let partial = 0;
  for (let i = 0; i < 400 && (state.size < FLEET || updates < 6 || partial === 0); i++) {
    const update = await client.next((m) => m.type === 'UPDATE' && m.topic === 'transit');
    const change = update.data as EntityChange<TransitVehicle>;
    assert.deepEqual(change.removes, []);
    const full = state.size === FLEET;
    for (const v of change.upserts) {
      assert.ok(validTransit(v).ok, validTransit(v).why);
      const before = state.get(v.id);
      if (full) {
        assert.ok(before !== undefined, 'no new vehicles');
        assert.notDeepEqual(v, before, `${v.id} changed`);
        assert.ok(v.observedAt > before.observedAt, `${v.id} reported a movement`);
      }
      state.set(v.id, v);
    }
    if (!full) continue;
    updates += 1;
    if (change.upserts.length < FLEET) partial += 1;
  }
  assert.equal(state.size, FLEET);
  assert.ok(updates >= 6, 'updates keep coming');
  assert.ok(partial > 0, 'vehicles standing at a stop are left out of an UPDATE');
});
