/**
 * The simulator's transit fleet (topic `transit`): vehicles driving the city's routes (`SimulatedCity.transitRoutes`)
 * end to end and back, stopping at stops on the way. Each step reports every vehicle as a transit entity (`id`,
 * `location`, `routeId`, `tripId`, `label`, `bearing` from the movement, `speed` in m/s, `observedAt`, `delaySec`,
 * `stopId` while at a stop). A vehicle dwelling at a stop keeps its last report unchanged, so the aggregator's diff
 * publishes only the vehicles that moved.
 *
 * Deterministic for a seed and a sequence of step times (its own PRNG stream: adding the fleet does not change the
 * other simulated topics of a seed).
 *
 * @module
 */
import type { GeoPoint } from '../protocol/topics.js';
import type { SimulatedCity, SimulatedRoute } from './cities.js';
import { createRandom, randomInt } from './prng.js';
import type { Random } from './prng.js';

/** Default fleet size. */
export const DEFAULT_VEHICLES = 40;
/**
 * Most vehicles one simulator runs: a complete report of the fleet is one UPDATE, which must stay inside the default
 * JSON bounds (100,000 values; a vehicle is about 16).
 */
export const MAX_VEHICLES = 5000;

/** A simulated vehicle as reported on topic `transit` (the transit entity of the topic catalog). */
export interface TransitVehicle {
  readonly id: string;
  readonly updatedAt: string;
  readonly source: string;
  readonly location: GeoPoint;
  readonly routeId: string;
  readonly tripId: string;
  readonly label: string;
  /** Degrees clockwise from north, 0 <= bearing < 360. */
  readonly bearing: number;
  /** m/s over the last step. */
  readonly speed: number;
  readonly observedAt: string;
  readonly delaySec: number;
  /** The stop the vehicle stands at, while it does. */
  readonly stopId?: string;
}

/** Distance between stops along a route (m). */
const STOP_SPACING_M = 450;
/** Longest step the movement integrates (ms): a stalled clock or a long pause does not teleport vehicles. */
const MAX_STEP_MS = 10_000;
const EARTH_RADIUS_M = 6_371_000;
const RAD = Math.PI / 180;

/** A route prepared for driving: cumulative distance at each waypoint. */
interface Track {
  readonly route: SimulatedRoute;
  readonly points: readonly GeoPoint[];
  /** `cumulative[i]`: metres from the first waypoint to waypoint `i`. */
  readonly cumulative: readonly number[];
  readonly length: number;
}

/** Mutable state of one vehicle. */
interface VehicleState {
  readonly id: string;
  readonly track: Track;
  readonly number: number;
  /** Metres from the route's first waypoint. */
  distance: number;
  /** +1 towards the last waypoint, -1 back. */
  direction: 1 | -1;
  cruise: number;
  trip: number;
  delaySec: number;
  /** Steps left standing at the current stop. */
  dwell: number;
  /** Distance of the next stop in the driving direction. */
  nextStop: number;
  /** The latest report (`null` before the first step). */
  report: TransitVehicle | null;
}

/** Equirectangular distance (m): exact enough over a city. */
function metres(a: GeoPoint, b: GeoPoint): number {
  const x = (b.lon - a.lon) * RAD * Math.cos(((a.lat + b.lat) / 2) * RAD);
  const y = (b.lat - a.lat) * RAD;
  return Math.sqrt(x * x + y * y) * EARTH_RADIUS_M;
}

/** Initial great-circle bearing from `a` to `b`, degrees in [0, 360). */
export function bearingBetween(a: GeoPoint, b: GeoPoint): number {
  const f1 = a.lat * RAD;
  const f2 = b.lat * RAD;
  const dl = (b.lon - a.lon) * RAD;
  const y = Math.sin(dl) * Math.cos(f2);
  const x = Math.cos(f1) * Math.sin(f2) - Math.sin(f1) * Math.cos(f2) * Math.cos(dl);
  const deg = Math.round(((Math.atan2(y, x) / RAD) % 360) + 360) % 360;
  return deg;
}

function prepare(route: SimulatedRoute): Track {
  if (route.waypoints.length < 2) throw new Error(`route ${route.id} needs at least two waypoints`);
  const points = route.waypoints.map((p) => ({ lat: p.lat, lon: p.lon }));
  const cumulative = [0];
  for (let i = 1; i < points.length; i++)
    cumulative.push((cumulative[i - 1] ?? 0) + metres(points[i - 1] as GeoPoint, points[i] as GeoPoint));
  return { route, points, cumulative, length: cumulative.at(-1) ?? 0 };
}

/** The position `distance` metres along the track. */
function positionAt(track: Track, distance: number): GeoPoint {
  const d = Math.min(track.length, Math.max(0, distance));
  let i = 1;
  while (i < track.cumulative.length - 1 && (track.cumulative[i] ?? 0) < d) i++;
  const start = track.cumulative[i - 1] ?? 0;
  const span = (track.cumulative[i] ?? start) - start;
  const t = span > 0 ? (d - start) / span : 0;
  const a = track.points[i - 1] as GeoPoint;
  const b = track.points[i] as GeoPoint;
  return { lat: round6(a.lat + (b.lat - a.lat) * t), lon: round6(a.lon + (b.lon - a.lon) * t) };
}

const round6 = (value: number): number => Math.round(value * 1e6) / 1e6;
const round1 = (value: number): number => Math.round(value * 10) / 10;

/** The first stop strictly beyond `distance` in `direction` (a terminus at the ends). */
function stopAfter(track: Track, distance: number, direction: 1 | -1): number {
  if (direction === 1)
    return Math.min(track.length, (Math.floor(distance / STOP_SPACING_M) + 1) * STOP_SPACING_M);
  return Math.max(0, (Math.ceil(distance / STOP_SPACING_M) - 1) * STOP_SPACING_M);
}

/** The simulated fleet, stepped by the simulator's timer (or directly by tests). */
export class TransitSimulation {
  private readonly random: Random;
  private readonly vehicles: VehicleState[] = [];
  private lastNow: number | null = null;

  /**
   * @param city the city whose `transitRoutes` the vehicles drive (at least one route)
   * @param seed PRNG seed (the fleet derives its own stream from it)
   * @param sourceName `source` of the entities and the prefix of their ids (`<source>-veh-0001`)
   * @param count fleet size, 0..{@link MAX_VEHICLES}
   */
  constructor(
    city: SimulatedCity,
    seed: number,
    private readonly sourceName: string,
    count: number,
  ) {
    if (!Number.isInteger(count) || count < 0 || count > MAX_VEHICLES)
      throw new RangeError(`vehicles must be an integer in 0..${MAX_VEHICLES}`);
    if (city.transitRoutes.length === 0 && count > 0)
      throw new Error(`city ${city.name} has no transit routes`);
    this.random = createRandom((seed ^ 0x7a3c_5e1d) >>> 0);
    const tracks = city.transitRoutes.map(prepare);
    for (let n = 0; n < count; n++) {
      const track = tracks[n % tracks.length] as Track;
      const direction: 1 | -1 = this.random() < 0.5 ? 1 : -1;
      const distance = this.random() * track.length;
      this.vehicles.push({
        id: `${sourceName}-veh-${String(n + 1).padStart(4, '0')}`,
        track,
        number: n + 1,
        distance,
        direction,
        cruise: (track.route.mode === 'tram' ? 7 : 8) + this.random() * 3,
        trip: 1,
        delaySec: randomInt(this.random, -60, 240),
        dwell: 0,
        nextStop: stopAfter(track, distance, direction),
        report: null,
      });
    }
  }

  /** Advances the fleet to `now` (ms since the epoch) and returns every vehicle's latest report. */
  step(now: number): TransitVehicle[] {
    const at = new Date(now).toISOString();
    const elapsed = this.lastNow === null ? 0 : Math.min(MAX_STEP_MS, Math.max(0, now - this.lastNow));
    const first = this.lastNow === null;
    this.lastNow = now;
    const out: TransitVehicle[] = [];
    for (const v of this.vehicles) {
      if (first) v.report = this.report(v, at, positionAt(v.track, v.distance), this.travelBearing(v), 0);
      else this.move(v, elapsed / 1000, at);
      if (v.report !== null) out.push(v.report);
    }
    return out;
  }

  /** Moves one vehicle `seconds` along its route; a vehicle standing at a stop keeps its report. */
  private move(v: VehicleState, seconds: number, at: string): void {
    if (seconds <= 0) return;
    if (v.dwell > 0) {
      v.dwell -= 1;
      return;
    }
    const from = positionAt(v.track, v.distance);
    const speed = Math.max(0, v.cruise + (this.random() - 0.5) * 2);
    let target = v.distance + v.direction * speed * seconds;
    const atStop = v.direction === 1 ? target >= v.nextStop : target <= v.nextStop;
    if (atStop) target = v.nextStop;
    const travelled = Math.abs(target - v.distance);
    v.distance = target;
    // Late or early: a little drift on the road, a little more at each stop.
    v.delaySec = Math.max(-300, Math.min(1800, v.delaySec + randomInt(this.random, -3, atStop ? 12 : 3)));
    const to = positionAt(v.track, v.distance);
    const bearing = travelled > 0.5 ? bearingBetween(from, to) : this.travelBearing(v);
    const stopId = atStop ? `${v.track.route.id}-stop-${Math.round(v.distance / STOP_SPACING_M)}` : undefined;
    v.report = this.report(v, at, to, bearing, travelled / seconds, stopId);
    if (!atStop) return;
    v.dwell = randomInt(this.random, 1, 3);
    if (v.distance <= 0 || v.distance >= v.track.length) {
      // Terminus: the next trip drives back.
      v.direction = v.direction === 1 ? -1 : 1;
      v.trip += 1;
    }
    v.nextStop = stopAfter(v.track, v.distance, v.direction);
  }

  /** Bearing of the route segment at the vehicle, in its driving direction. */
  private travelBearing(v: VehicleState): number {
    const ahead = positionAt(v.track, v.distance + v.direction * 5);
    const behind = positionAt(v.track, v.distance - v.direction * 5);
    return bearingBetween(behind, ahead);
  }

  private report(
    v: VehicleState,
    at: string,
    location: GeoPoint,
    bearing: number,
    speed: number,
    stopId?: string,
  ): TransitVehicle {
    const route = v.track.route;
    const destination = v.direction === 1 ? route.termini[1] : route.termini[0];
    return {
      id: v.id,
      updatedAt: at,
      source: this.sourceName,
      location,
      routeId: route.id,
      tripId: `${route.id}-${String(v.number).padStart(4, '0')}-${v.trip}`,
      label: `${route.name} to ${destination}`,
      bearing,
      speed: round1(speed),
      observedAt: at,
      delaySec: v.delaySec,
      ...(stopId === undefined ? {} : { stopId }),
    };
  }
}
