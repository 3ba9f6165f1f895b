/**
 * GTFS-Realtime (protobuf `FeedMessage`, decoded with `gtfs-realtime-bindings`). Three formats, each a parser with
 * `body: 'binary'` for the `http-poll` source:
 *
 * - `gtfs-rt-vehicles`: VehiclePositions -> one entity per vehicle on topic `transit` (option `topic`): `id` (the
 *   vehicle id, else the feed entity id), `location`, `routeId`, `tripId`, `label`, `bearing`, `speed`,
 *   `observedAt` (the vehicle timestamp), `stopId`, and `delaySec` when the same feed also carries a TripUpdate for
 *   that vehicle (or its trip): a combined feed. A FULL_DATASET feed is the complete set (vehicles missing from it
 *   are removed); a DIFFERENTIAL one only upserts, and removes the entities it marks `is_deleted`.
 * - `gtfs-rt-trip-updates`: TripUpdates -> one entity per trip on its own topic (default `transitDelays`, not the
 *   vehicles' topic: two sources writing different fields of the same entity would overwrite each other):
 *   `id` (the vehicle id, else `trip:<trip id>`), `tripId`, `routeId`, `vehicleId`, `delaySec`, `stopId` (the next
 *   stop with a prediction), `observedAt`. No location.
 * - `gtfs-rt-alerts`: service Alerts -> external alerts of kind `service` (rule `service-alert`) on topic `transit`,
 *   naming the affected routes and stops; an alert outside its active periods, or no longer listed, is resolved.
 *
 * The body is hostile: the number of entities is counted on the wire before anything is decoded (over
 * `maxEntities`, default 50,000, the poll is refused), a body that does not decode or has no supported
 * `gtfs_realtime_version` is a {@link FeedFormatError}; per entity, a missing, NaN or out-of-range position, an id
 * or text longer than its bound, or a repeated vehicle id is a rejected reading (the rest of the feed goes on).
 *
 * @module
 */
import GtfsRealtimeBindings from 'gtfs-realtime-bindings';
import { MAX_ID_LENGTH, MAX_TEXT_LENGTH } from '../../protocol/state-model.js';
import type { ExternalAlert, ExternalAlertSeverity, SourceBatch } from '../source.js';
import type { FeedParser, ParseContext } from './types.js';
import { FeedFormatError, compact, isRecord, isoFromEpochSeconds } from './types.js';

const { FeedMessage } = GtfsRealtimeBindings.transit_realtime;

/** Most service alerts in force one feed may raise (the active alerts a topic keeps are bounded alike). */
export const MAX_ALERTS = 256;

/** Default most entities one feed may hold. */
export const DEFAULT_MAX_ENTITIES = 50_000;

/** Options of the GTFS-Realtime parsers. */
export interface GtfsRealtimeOptions {
  /** Topic the entities (or alerts) go to. */
  readonly topic?: string;
  /** Most entities a feed may hold; a larger feed is refused. Default 50,000. */
  readonly maxEntities?: number;
}

/** A reading refused by the parser (counted through `ParseContext.reject`); `id` when the entity is known. */
class Refused extends Error {
  constructor(
    message: string,
    readonly id?: string,
  ) {
    super(message);
  }
}

type Obj = Record<string, unknown>;

const FIELD_FEED_ENTITY = 2;

/**
 * Counts the top-level `entity` fields (number 2) of a FeedMessage on the wire, without decoding anything, and
 * refuses more than `max`; throws {@link FeedFormatError} on a malformed or truncated message.
 */
export function countFeedEntities(bytes: Uint8Array, max: number): number {
  let pos = 0;
  let count = 0;
  const varint = (): number => {
    let result = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (pos >= bytes.length) throw new FeedFormatError('truncated GTFS-Realtime message');
      const b = bytes[pos++] as number;
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
    }
    throw new FeedFormatError('malformed GTFS-Realtime message (varint too long)');
  };
  while (pos < bytes.length) {
    const tag = varint();
    const wire = tag % 8;
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 2) {
      const length = varint(); // read first: `pos += varint()` would add to the position before the varint
      pos += length;
    } else if (wire === 5) pos += 4;
    else throw new FeedFormatError(`malformed GTFS-Realtime message (wire type ${wire})`);
    if (pos > bytes.length) throw new FeedFormatError('truncated GTFS-Realtime message');
    if (Math.floor(tag / 8) === FIELD_FEED_ENTITY && ++count > max)
      throw new FeedFormatError(`GTFS-Realtime feed holds more than ${max} entities`);
  }
  return count;
}

/** A decoded feed: plain values (longs as numbers, enums as numbers, absent fields absent). */
interface DecodedFeed {
  readonly complete: boolean;
  readonly entities: readonly Obj[];
}

/** Decodes a FeedMessage body; throws {@link FeedFormatError} when it is not one. */
export function decodeFeed(body: unknown, maxEntities: number): DecodedFeed {
  if (!(body instanceof Uint8Array)) throw new FeedFormatError('a GTFS-Realtime body must be bytes');
  countFeedEntities(body, maxEntities);
  let plain: Obj;
  try {
    const message = FeedMessage.decode(body);
    plain = FeedMessage.toObject(message, { longs: Number, enums: Number, defaults: false }) as Obj;
  } catch (error) {
    const reason = error instanceof Error ? error.message.slice(0, 200) : 'decode failed';
    throw new FeedFormatError(`not a GTFS-Realtime FeedMessage: ${reason}`);
  }
  const header = isRecord(plain.header) ? plain.header : {};
  const version = header.gtfsRealtimeVersion;
  if (typeof version !== 'string' || !/^[12]\.\d{1,3}$/.test(version))
    throw new FeedFormatError('unsupported gtfs_realtime_version (1.x or 2.x expected)');
  return {
    complete: header.incrementality !== 1,
    entities: Array.isArray(plain.entity) ? plain.entity.filter(isRecord) : [],
  };
}

/** A string of at most `max` characters, `undefined` when absent or empty; a longer one refuses the reading. */
function text(value: unknown, field: string, max = MAX_ID_LENGTH): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return undefined;
  if (value.length > max) throw new Refused(`${field} longer than ${max} characters`);
  return value;
}

const round = (value: number, digits: number): number => Math.round(value * 10 ** digits) / 10 ** digits;

/** A finite number within [min, max], else `undefined`. */
function within(value: unknown, min: number, max: number): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max
    ? value
    : undefined;
}

/** Delay (s) of a TripUpdate: its own `delay`, else that of the first stop time update with one. */
function tripDelay(update: Obj): { delaySec?: number; stopId?: string } {
  const limit = 7 * 86_400;
  const own = within(update.delay, -limit, limit);
  const stops = Array.isArray(update.stopTimeUpdate) ? update.stopTimeUpdate.filter(isRecord) : [];
  for (const stop of stops) {
    const event = isRecord(stop.arrival) ? stop.arrival : isRecord(stop.departure) ? stop.departure : {};
    const delay = own ?? within(event.delay, -limit, limit);
    const stopId = text(stop.stopId, 'stopId');
    if (delay !== undefined)
      return compact({ delaySec: Math.round(delay), stopId }) as { delaySec?: number; stopId?: string };
  }
  return own === undefined ? {} : { delaySec: Math.round(own) };
}

function vehicleEntity(entity: Obj, vehicle: Obj, delays: ReadonlyMap<string, number>): Obj {
  const descriptor = isRecord(vehicle.vehicle) ? vehicle.vehicle : {};
  const id = text(descriptor.id, 'vehicle.id') ?? text(entity.id, 'entity id');
  if (id === undefined) throw new Refused('no vehicle id and no entity id');
  try {
    return vehicleFields(id, descriptor, vehicle, delays);
  } catch (error) {
    // The vehicle is still listed: the batch retains its last valid state rather than removing it.
    if (error instanceof Refused) throw new Refused(`vehicle ${id.slice(0, 64)}: ${error.message}`, id);
    throw error;
  }
}

function vehicleFields(id: string, descriptor: Obj, vehicle: Obj, delays: ReadonlyMap<string, number>): Obj {
  const trip = isRecord(vehicle.trip) ? vehicle.trip : {};
  const position = vehicle.position;
  if (!isRecord(position)) throw new Refused('no position');
  const lat = within(position.latitude, -90, 90);
  const lon = within(position.longitude, -180, 180);
  if (lat === undefined || lon === undefined) throw new Refused('position out of range or NaN');
  const bearing = within(position.bearing, 0, 360);
  const speed = within(position.speed, 0, 1000);
  const tripId = text(trip.tripId, 'trip.tripId');
  return compact({
    id,
    location: { lat: round(lat, 5), lon: round(lon, 5) }, // float32 on the wire: ~1 m
    routeId: text(trip.routeId, 'trip.routeId'),
    tripId,
    label: text(descriptor.label, 'vehicle.label'),
    bearing: bearing === undefined ? undefined : round(bearing, 1),
    speed: speed === undefined ? undefined : round(speed, 2),
    observedAt: isoFromEpochSeconds(vehicle.timestamp),
    stopId: text(vehicle.stopId, 'stopId'),
    delaySec: delays.get(id) ?? (tripId === undefined ? undefined : delays.get(`trip:${tripId}`)),
  });
}

/**
 * Runs `each` over the entities, turning a {@link Refused} into a rejected reading (its id, when known, into
 * `retained`); returns the entities it made, each id once (a repeated id is refused).
 */
function collect(
  entities: readonly Obj[],
  context: ParseContext,
  each: (entity: Obj) => Obj | null,
): { upserts: Obj[]; retained: string[] } {
  const out: Obj[] = [];
  const retained: string[] = [];
  const seen = new Set<string>();
  for (const entity of entities) {
    try {
      const made = each(entity);
      if (made === null) continue;
      const id = made.id as string;
      if (seen.has(id)) throw new Refused(`repeated id ${id.slice(0, 64)}`);
      seen.add(id);
      out.push(made);
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      context.reject?.(error.message);
      if (error.id !== undefined) retained.push(error.id);
    }
  }
  return { upserts: out, retained };
}

/** Ids of `is_deleted` entities of a DIFFERENTIAL feed (their vehicle id, else the entity id). */
function deletedIds(feed: DecodedFeed): string[] {
  if (feed.complete) return [];
  const ids: string[] = [];
  for (const entity of feed.entities) {
    if (entity.isDeleted !== true) continue;
    const vehicle =
      isRecord(entity.vehicle) && isRecord(entity.vehicle.vehicle) ? entity.vehicle.vehicle : {};
    const id = typeof vehicle.id === 'string' && vehicle.id !== '' ? vehicle.id : entity.id;
    if (typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH) ids.push(id);
  }
  return ids;
}

/** A binary parser of `format` whose batch `build` makes from the decoded feed. */
function gtfsParser(
  format: string,
  topic: string,
  options: GtfsRealtimeOptions,
  build: (feed: DecodedFeed, context: ParseContext) => SourceBatch,
): FeedParser {
  const maxEntities = options.maxEntities ?? DEFAULT_MAX_ENTITIES;
  return {
    format,
    topic,
    body: 'binary',
    parse: (body, context) => build(decodeFeed(body, maxEntities), context),
  };
}

/** `gtfs-rt-vehicles`: VehiclePositions (with the delays of TripUpdates in the same feed) -> `transit`. */
export function createGtfsRtVehiclesParser(options: GtfsRealtimeOptions = {}): FeedParser {
  const topic = options.topic ?? 'transit';
  return gtfsParser('gtfs-rt-vehicles', topic, options, (feed, context) => {
    const delays = new Map<string, number>();
    for (const entity of feed.entities) {
      if (entity.isDeleted === true || !isRecord(entity.tripUpdate)) continue;
      const update = entity.tripUpdate;
      let delay: number | undefined;
      try {
        delay = tripDelay(update).delaySec;
      } catch {
        continue; // an over-long stop id: no delay from this update
      }
      if (delay === undefined) continue;
      const vehicle = isRecord(update.vehicle) ? update.vehicle.id : undefined;
      const trip = isRecord(update.trip) ? update.trip.tripId : undefined;
      if (typeof vehicle === 'string' && vehicle !== '') delays.set(vehicle, delay);
      if (typeof trip === 'string' && trip !== '') delays.set(`trip:${trip}`, delay);
    }
    const { upserts, retained } = collect(feed.entities, context, (entity) =>
      entity.isDeleted === true || !isRecord(entity.vehicle)
        ? null
        : vehicleEntity(entity, entity.vehicle, delays),
    );
    for (const entity of upserts) if (entity.observedAt !== undefined) entity.updatedAt = entity.observedAt;
    const removes = deletedIds(feed);
    return {
      topic,
      upserts,
      complete: feed.complete,
      ...(removes.length > 0 ? { removes } : {}),
      ...(retained.length > 0 ? { retained } : {}),
    };
  });
}

/** `gtfs-rt-trip-updates`: TripUpdates -> one entity per trip (topic `transitDelays` by default). */
export function createGtfsRtTripUpdatesParser(options: GtfsRealtimeOptions = {}): FeedParser {
  const topic = options.topic ?? 'transitDelays';
  return gtfsParser('gtfs-rt-trip-updates', topic, options, (feed, context) => {
    const { upserts, retained } = collect(feed.entities, context, (entity) => {
      if (entity.isDeleted === true || !isRecord(entity.tripUpdate)) return null;
      const update = entity.tripUpdate;
      const trip = isRecord(update.trip) ? update.trip : {};
      const vehicleId = text(isRecord(update.vehicle) ? update.vehicle.id : undefined, 'vehicle.id');
      const tripId = text(trip.tripId, 'trip.tripId');
      const id = vehicleId ?? (tripId === undefined ? undefined : `trip:${tripId}`);
      if (id === undefined) throw new Refused('trip update without a vehicle id or a trip id');
      const { delaySec, stopId } = tripDelay(update);
      return compact({
        id,
        tripId,
        routeId: text(trip.routeId, 'trip.routeId'),
        vehicleId,
        delaySec,
        stopId,
        observedAt: isoFromEpochSeconds(update.timestamp),
      });
    });
    return { topic, upserts, complete: feed.complete, ...(retained.length > 0 ? { retained } : {}) };
  });
}

const EFFECTS: Readonly<Record<number, string>> = {
  1: 'No service',
  2: 'Reduced service',
  3: 'Significant delays',
  4: 'Detour',
  5: 'Additional service',
  6: 'Modified service',
  7: 'Service change',
  8: 'Service alert',
  9: 'Stop moved',
  10: 'Service notice',
  11: 'Accessibility issue',
};

const SEVERITY_LEVELS: Readonly<Record<number, ExternalAlertSeverity>> = {
  2: 'Minor',
  3: 'Moderate',
  4: 'Severe',
};

/** The translation in `language`, else one without a language, else the first; bounded. */
function translated(value: unknown, language: string | undefined, field: string): string | undefined {
  if (!isRecord(value) || !Array.isArray(value.translation)) return undefined;
  const all = value.translation.filter(isRecord);
  const pick =
    all.find((t) => language !== undefined && t.language === language) ??
    all.find((t) => t.language === undefined || t.language === '') ??
    all[0];
  return text(pick?.text, field, MAX_TEXT_LENGTH / 2);
}

/** `routes 12, 14; stops 3001` (at most 10 of each named). */
function affected(selectors: readonly Obj[]): string | undefined {
  const routes = new Set<string>();
  const stops = new Set<string>();
  for (const s of selectors) {
    const trip = isRecord(s.trip) ? s.trip : {};
    const route = text(s.routeId, 'routeId') ?? text(trip.routeId, 'trip.routeId');
    const stop = text(s.stopId, 'stopId');
    if (route !== undefined) routes.add(route);
    if (stop !== undefined) stops.add(stop);
  }
  const list = (label: string, set: Set<string>): string | undefined => {
    if (set.size === 0) return undefined;
    const shown = [...set].slice(0, 10).map((v) => v.slice(0, 64));
    return `${label} ${shown.join(', ')}${set.size > 10 ? ` and ${set.size - 10} more` : ''}`;
  };
  const parts = [list('routes', routes), list('stops', stops)].filter((p) => p !== undefined);
  return parts.length === 0 ? undefined : parts.join('; ');
}

/** The active period containing `now` (s): `{}` when the alert has none, `null` when none contains now. */
function activePeriod(periods: unknown, now: number): { end?: number } | null {
  if (!Array.isArray(periods) || periods.length === 0) return {};
  for (const period of periods.filter(isRecord)) {
    const start = typeof period.start === 'number' ? period.start : 0;
    const end = typeof period.end === 'number' && period.end > 0 ? period.end : undefined;
    if (start <= now && (end === undefined || now < end)) return end === undefined ? {} : { end };
  }
  return null;
}

/** Options of {@link createGtfsRtAlertsParser}. */
export interface GtfsRealtimeAlertsOptions extends GtfsRealtimeOptions {
  /** Preferred language of the texts (BCP 47, e.g. `en`). Default: the untranslated text, else the first. */
  readonly language?: string;
}

/** `gtfs-rt-alerts`: service Alerts -> external alerts of kind `service` on topic `transit`. */
export function createGtfsRtAlertsParser(options: GtfsRealtimeAlertsOptions = {}): FeedParser {
  const topic = options.topic ?? 'transit';
  return gtfsParser('gtfs-rt-alerts', topic, options, (feed, context) => {
    const nowSec = context.now / 1000;
    const alerts: ExternalAlert[] = [];
    const seen = new Set<string>();
    for (const entity of feed.entities) {
      if (entity.isDeleted === true || !isRecord(entity.alert)) continue;
      try {
        const alert = entity.alert;
        const id = text(entity.id, 'entity id');
        if (id === undefined) throw new Refused('alert without an id');
        if (seen.has(id)) throw new Refused(`repeated alert id ${id.slice(0, 64)}`);
        if (alerts.length >= MAX_ALERTS) throw new Refused(`more than ${MAX_ALERTS} alerts in force`);
        seen.add(id);
        const period = activePeriod(alert.activePeriod, nowSec);
        if (period === null) continue; // not in force now: not listed, so resolved if it was raised
        const event = EFFECTS[typeof alert.effect === 'number' ? alert.effect : 8] ?? 'Service alert';
        const header = translated(alert.headerText, options.language, 'header_text') ?? event;
        const where = affected(
          Array.isArray(alert.informedEntity) ? alert.informedEntity.filter(isRecord) : [],
        );
        alerts.push(
          compact({
            id,
            kind: 'service' as const,
            event,
            severity:
              SEVERITY_LEVELS[typeof alert.severityLevel === 'number' ? alert.severityLevel : 1] ??
              (alert.effect === 1 ? 'Severe' : 'Unknown'),
            headline: where === undefined ? header : `${header} (${where})`,
            area: where,
            expires: period.end === undefined ? undefined : isoFromEpochSeconds(period.end),
          }),
        );
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        context.reject?.(error.message);
      }
    }
    return { topic, alerts, complete: feed.complete };
  });
}
