/**
 * GBFS (General Bikeshare Feed Specification) v2.x and v3.x documents -> bike-share entities (topic `bikes`):
 * the auto-discovery `gbfs.json` (v2: feeds per language under `data.<lang>.feeds`; v3: `data.feeds`), then
 * `station_information` + `station_status` (one entity per station: `kind: 'station'`, `id` = `station_id`) and
 * free vehicles (`free_bike_status` in v2, `vehicle_status` in v3; `kind: 'vehicle'`, `id` = `vehicle:<id>`). Pure
 * functions over decoded JSON; the `gbfs` source (`sources/gbfs.ts`) fetches the documents.
 *
 * Hostile documents: a wrong or missing `version` or a missing required feed is a {@link FeedFormatError} (the poll
 * is refused); a repeated station id, a station or vehicle without a valid position, negative or fractional
 * counts, over-long ids or names are rejected readings; status for an unknown station, stations without status,
 * vehicles docked at a station, reserved or disabled are skipped.
 *
 * @module
 */
import { MAX_ID_LENGTH, MAX_TEXT_LENGTH, isEntityId } from '../../protocol/state-model.js';
import { FeedFormatError, isRecord, isoFromEpochSeconds, toId } from './types.js';

type Obj = Record<string, unknown>;

/** GBFS major version the parser handles. */
export type GbfsMajor = 2 | 3;

/** Feeds a discovery document lists (name -> URL) and the major version. */
export interface GbfsDiscovery {
  readonly major: GbfsMajor;
  readonly feeds: ReadonlyMap<string, string>;
}

/** `data` of a GBFS document after the version check; `ttl` in seconds (0 when absent). */
export function gbfsData(doc: unknown, name: string, major?: GbfsMajor): { data: Obj; ttl: number } {
  if (!isRecord(doc) || !isRecord(doc.data)) throw new FeedFormatError(`${name}: not a GBFS document`);
  const version = typeof doc.version === 'string' ? doc.version : undefined;
  const found = version === undefined ? undefined : /^([23])\.\d{1,3}(-RC\d*)?$/.exec(version)?.[1];
  if (found === undefined)
    throw new FeedFormatError(`${name}: unsupported GBFS version (2.x or 3.x expected)`);
  if (major !== undefined && Number(found) !== major)
    throw new FeedFormatError(`${name}: GBFS version ${found}.x, discovery says ${major}.x`);
  const ttl = typeof doc.ttl === 'number' && Number.isFinite(doc.ttl) && doc.ttl > 0 ? doc.ttl : 0;
  return { data: doc.data, ttl };
}

/** Reads a discovery document (`gbfs.json`); `language` picks the v2 language (default `en`, else the first). */
export function parseDiscovery(doc: unknown, language: string | undefined): GbfsDiscovery & { ttl: number } {
  const { data, ttl } = gbfsData(doc, 'gbfs.json');
  const major: GbfsMajor = (doc as { version: string }).version.startsWith('3') ? 3 : 2;
  let list: unknown;
  if (major === 3) {
    list = data.feeds;
  } else {
    const languages = Object.keys(data).filter((k) => isRecord(data[k]));
    const lang = language !== undefined ? language : languages.includes('en') ? 'en' : languages[0];
    const entry = lang === undefined ? undefined : data[lang];
    if (!isRecord(entry)) throw new FeedFormatError(`gbfs.json: no feeds for language "${lang ?? ''}"`);
    list = entry.feeds;
  }
  if (!Array.isArray(list)) throw new FeedFormatError('gbfs.json: no feeds list');
  const feeds = new Map<string, string>();
  for (const feed of list.slice(0, 64)) {
    if (!isRecord(feed) || typeof feed.name !== 'string' || typeof feed.url !== 'string') continue;
    if (feed.url.length > 2048 || feeds.has(feed.name)) continue;
    feeds.set(feed.name, feed.url);
  }
  return { major, feeds, ttl };
}

/** A reading the parser refused; `reason` names it, `id` is the entity's when it is known (it is retained). */
export type Reject = (reason: string, id?: string) => void;

/** A GBFS id (string or number) as an entity id, when it passes the protocol's id rule. */
function id(value: unknown): string | undefined {
  const s = toId(value);
  return isEntityId(s) ? s : undefined;
}

/** v2 `name` (a string) or v3 `name` (`[{ text, language }]`, `language` preferred). */
function localized(value: unknown, language: string | undefined): string | undefined {
  let out: unknown = value;
  if (Array.isArray(value)) {
    const all = value.filter(isRecord);
    out = (all.find((t) => t.language === language) ?? all[0])?.text;
  }
  return typeof out === 'string' && out.length > 0 && out.length <= MAX_TEXT_LENGTH ? out : undefined;
}

function position(record: Obj): { lat: number; lon: number } | undefined {
  const { lat, lon } = record;
  if (typeof lat !== 'number' || typeof lon !== 'number') return undefined;
  if (!(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180)) return undefined;
  return { lat, lon };
}

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 1_000_000
    ? value
    : undefined;
}

function listOf(data: Obj, key: string, name: string): Obj[] {
  const list = data[key];
  if (!Array.isArray(list)) throw new FeedFormatError(`${name}: data.${key} is not a list`);
  return list.filter(isRecord);
}

/** Seconds since the epoch (v2) or an RFC 3339 time (v3) -> ISO-8601. */
function reportedAt(value: unknown): string | undefined {
  if (typeof value === 'number') return isoFromEpochSeconds(value);
  if (typeof value === 'string' && value.length <= 64) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return new Date(ms).toISOString();
  }
  return undefined;
}

/** Station entities from `station_information` + `station_status` data. */
export function stationEntities(
  information: Obj,
  status: Obj,
  major: GbfsMajor,
  language: string | undefined,
  reject: Reject,
): Obj[] {
  const stations = new Map<string, { name: string; location: { lat: number; lon: number } }>();
  for (const s of listOf(information, 'stations', 'station_information')) {
    const sid = id(s.station_id);
    if (sid === undefined) {
      reject('station_information: a station without a valid station_id');
      continue;
    }
    if (stations.has(sid)) {
      reject(`station_information: station ${sid} repeated`);
      continue;
    }
    const location = position(s);
    if (location === undefined) {
      reject(`station ${sid}: no valid lat/lon`, sid);
      stations.set(sid, { name: '', location: { lat: Number.NaN, lon: Number.NaN } });
      continue;
    }
    stations.set(sid, { name: localized(s.name, language) ?? sid, location });
  }
  const out: Obj[] = [];
  const seen = new Set<string>();
  for (const s of listOf(status, 'stations', 'station_status')) {
    const sid = id(s.station_id);
    const info = sid === undefined ? undefined : stations.get(sid);
    if (sid === undefined || info === undefined || seen.has(sid) || Number.isNaN(info.location.lat)) continue;
    seen.add(sid);
    const bikes = count(major === 3 ? s.num_vehicles_available : s.num_bikes_available);
    const docks = count(s.num_docks_available ?? 0);
    if (bikes === undefined || docks === undefined) {
      reject(`station ${sid}: vehicle or dock count missing, negative or not an integer`, sid);
      continue;
    }
    const entity: Obj = {
      id: sid,
      name: info.name,
      location: info.location,
      kind: 'station',
      bikesAvailable: bikes,
      docksAvailable: docks,
    };
    if (typeof s.is_renting === 'boolean') entity.isRenting = s.is_renting;
    if (typeof s.is_returning === 'boolean') entity.isReturning = s.is_returning;
    const at = reportedAt(s.last_reported);
    if (at !== undefined) entity.updatedAt = at;
    out.push(entity);
  }
  return out;
}

/** Free-vehicle entities from `free_bike_status` (v2) or `vehicle_status` (v3) data. */
export function vehicleEntities(data: Obj, major: GbfsMajor, reject: Reject): Obj[] {
  const name = major === 3 ? 'vehicle_status' : 'free_bike_status';
  const out: Obj[] = [];
  const seen = new Set<string>();
  for (const v of listOf(data, major === 3 ? 'vehicles' : 'bikes', name)) {
    const vid = id(major === 3 ? v.vehicle_id : v.bike_id);
    if (vid === undefined || vid.length > MAX_ID_LENGTH - 8) {
      reject(`${name}: a vehicle without a valid id`);
      continue;
    }
    if (seen.has(vid)) {
      reject(`${name}: vehicle ${vid} repeated`);
      continue;
    }
    seen.add(vid);
    if (v.is_reserved === true || v.is_disabled === true || v.station_id !== undefined) continue;
    const location = position(v);
    if (location === undefined) {
      reject(`vehicle ${vid}: no valid lat/lon`, `vehicle:${vid}`);
      continue;
    }
    const entity: Obj = {
      id: `vehicle:${vid}`,
      name: `Vehicle ${vid}`,
      location,
      kind: 'vehicle',
      bikesAvailable: 1,
      docksAvailable: 0,
    };
    const type = id(v.vehicle_type_id);
    if (type !== undefined) entity.vehicleType = type;
    const range = v.current_range_meters;
    if (typeof range === 'number' && Number.isFinite(range) && range >= 0) entity.rangeMeters = range;
    const at = reportedAt(v.last_reported);
    if (at !== undefined) entity.updatedAt = at;
    out.push(entity);
  }
  return out;
}
