/**
 * One representative point of a GeoJSON geometry (RFC 7946), for entities that are drawn as a marker.
 *
 * @module
 */
import type { GeoPoint } from '../../protocol/topics.js';
import { FeedFormatError, isRecord, toNumber } from './types.js';

function position(value: unknown): GeoPoint | undefined {
  if (!Array.isArray(value)) return undefined;
  const lon = toNumber(value[0]);
  const lat = toNumber(value[1]);
  return lon === undefined || lat === undefined ? undefined : { lat, lon };
}

function middle(positions: unknown): GeoPoint | undefined {
  if (!Array.isArray(positions) || positions.length === 0) return undefined;
  return position(positions[Math.floor((positions.length - 1) / 2)]);
}

function centroid(ring: unknown): GeoPoint | undefined {
  if (!Array.isArray(ring) || ring.length === 0) return undefined;
  // The closing position repeats the first one; leave it out of the average.
  const points = ring.slice(0, ring.length > 1 ? -1 : undefined).map(position);
  if (points.some((p) => p === undefined)) return undefined;
  const valid = points as GeoPoint[];
  return {
    lat: valid.reduce((s, p) => s + p.lat, 0) / valid.length,
    lon: valid.reduce((s, p) => s + p.lon, 0) / valid.length,
  };
}

/**
 * A point for a geometry: the Point itself, the middle vertex of a line or multipoint, the vertex average of a
 * polygon's outer ring; the first member of a Multi* or GeometryCollection. `undefined` for null or bad input.
 */
export function representativePoint(geometry: unknown): GeoPoint | undefined {
  if (!isRecord(geometry)) return undefined;
  const coordinates = geometry.coordinates;
  switch (geometry.type) {
    case 'Point':
      return position(coordinates);
    case 'LineString':
    case 'MultiPoint':
      return middle(coordinates);
    case 'Polygon':
      return Array.isArray(coordinates) ? centroid(coordinates[0]) : undefined;
    case 'MultiLineString':
      return Array.isArray(coordinates) ? middle(coordinates[0]) : undefined;
    case 'MultiPolygon':
      return Array.isArray(coordinates) && Array.isArray(coordinates[0])
        ? centroid(coordinates[0][0])
        : undefined;
    case 'GeometryCollection':
      return Array.isArray(geometry.geometries) ? representativePoint(geometry.geometries[0]) : undefined;
    default:
      return undefined;
  }
}

/** The features of a GeoJSON FeatureCollection; throws `FeedFormatError` when `body` is not one. */
export function featuresOf(body: unknown): Record<string, unknown>[] {
  if (!isRecord(body) || body.type !== 'FeatureCollection' || !Array.isArray(body.features)) {
    throw new FeedFormatError('not a GeoJSON FeatureCollection');
  }
  return body.features.filter(isRecord);
}
