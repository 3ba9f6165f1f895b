/**
 * A generic list of camera records: a JSON array (or an array at `itemsPath` inside an object), or a GeoJSON
 * FeatureCollection, with a field mapping. Status values are translated to `online` / `offline` / `unknown` (a
 * built-in table understands booleans, `active`, `up`, `ok`, `0`/`1`, ... ; `valueMaps.status` overrides it).
 *
 * Default mapping: `id`, `name`, `lat` (or `latitude`), `lon` (or `longitude` / `lng`), `status`, `imageUrl`
 * (or `image_url` / `image`), `area`.
 *
 * @module
 */
import type { SourceBatch } from '../source.js';
import { representativePoint } from './geometry.js';
import { applyMapping, translate } from './mapping.js';
import type { FieldMapping } from './mapping.js';
import type { FeedParser } from './types.js';
import { FeedFormatError, compact, getPath, isRecord, toId, toNumber } from './types.js';

/** Options of {@link createCameraListParser}. */
export interface CameraListOptions extends Partial<FieldMapping> {
  /** Dotted path of the array inside the response object (e.g. `data.cameras`). Default: the body itself. */
  readonly itemsPath?: string;
  /** Prefix of entity ids. Default none. */
  readonly idPrefix?: string;
}

const STATUS_WORDS: Readonly<Record<string, 'online' | 'offline'>> = {
  true: 'online',
  online: 'online',
  active: 'online',
  up: 'online',
  ok: 'online',
  on: 'online',
  '1': 'online',
  false: 'offline',
  offline: 'offline',
  inactive: 'offline',
  down: 'offline',
  off: 'offline',
  disabled: 'offline',
  '0': 'offline',
};

function firstOf(record: unknown, paths: readonly string[]): unknown {
  for (const path of paths) {
    const value = getPath(record, path);
    if (value !== undefined && value !== null) return value;
  }
  return undefined;
}

/** A parser for camera lists -> `cameras` entities (complete batches). */
export function createCameraListParser(options: CameraListOptions = {}): FeedParser {
  const fields = options.fields ?? {};
  const mapping: FieldMapping = {
    fields,
    ...(options.constants ? { constants: options.constants } : {}),
    ...(options.valueMaps ? { valueMaps: options.valueMaps } : {}),
  };
  return {
    format: 'camera-list',
    topic: 'cameras',
    parse(body: unknown): SourceBatch {
      let records: { record: unknown; geometry?: unknown; featureId?: unknown }[];
      if (isRecord(body) && body.type === 'FeatureCollection' && Array.isArray(body.features)) {
        records = body.features
          .filter(isRecord)
          .map((f) => ({ record: f.properties ?? {}, geometry: f.geometry, featureId: f.id }));
      } else {
        const items = options.itemsPath === undefined ? body : getPath(body, options.itemsPath);
        if (!Array.isArray(items))
          throw new FeedFormatError(`no camera array at ${options.itemsPath ?? 'the top level'}`);
        records = items.map((record) => ({ record }));
      }
      const upserts = records.map(({ record, geometry, featureId }) => {
        const mapped = applyMapping(record, mapping);
        const pick = (field: string, defaults: readonly string[]): unknown =>
          field in mapped
            ? mapped[field]
            : fields[field] === undefined
              ? translate(field, firstOf(record, defaults), mapping)
              : undefined;
        const id = toId(pick('id', ['id'])) ?? toId(featureId);
        const lat = toNumber(pick('lat', ['lat', 'latitude']));
        const lon = toNumber(pick('lon', ['lon', 'longitude', 'lng']));
        const rawStatus = pick('status', ['status', 'online', 'active']);
        const status =
          rawStatus === 'online' || rawStatus === 'offline' || rawStatus === 'unknown'
            ? rawStatus
            : rawStatus === undefined
              ? 'unknown'
              : (STATUS_WORDS[String(rawStatus).toLowerCase()] ?? 'unknown');
        return compact({
          ...mapped,
          id: id === undefined ? undefined : `${options.idPrefix ?? ''}${id}`,
          name: pick('name', ['name', 'title', 'description']),
          location: lat !== undefined && lon !== undefined ? { lat, lon } : representativePoint(geometry),
          status,
          imageUrl: pick('imageUrl', ['imageUrl', 'image_url', 'image']),
          area: pick('area', ['area', 'road', 'street']),
          lat: undefined,
          lon: undefined,
        });
      });
      return { topic: 'cameras', upserts, complete: true };
    },
  };
}
