/**
 * A generic GeoJSON FeatureCollection with a property mapping, for any topic (typically city incident feeds).
 * The entity's `location` is a point of the feature's geometry unless `lat`/`lon` are mapped; its id is the
 * feature's `id` or the mapped `id` property.
 *
 * Example: `{ "topic": "accidents", "fields": { "id": "incident_id", "severity": "level", "description":
 * "summary", "kind": "type", "roadName": "street", "reportedAt": "created" } }`.
 *
 * @module
 */
import type { SourceBatch } from '../source.js';
import { featuresOf, representativePoint } from './geometry.js';
import { applyMapping } from './mapping.js';
import type { FieldMapping } from './mapping.js';
import type { FeedParser } from './types.js';
import { compact, isRecord, toId } from './types.js';

/** Options of {@link createGeoJsonParser}. Field paths are relative to the feature's `properties`. */
export interface GeoJsonOptions extends FieldMapping {
  /** Topic the entities belong to. */
  readonly topic: string;
  /** Prefix of entity ids (e.g. `chicago:`). Default none. */
  readonly idPrefix?: string;
  /** Whether the feed lists everything (features that leave it are removed). Default true. */
  readonly complete?: boolean;
}

/** A parser for a GeoJSON FeatureCollection with a property mapping. */
export function createGeoJsonParser(options: GeoJsonOptions): FeedParser {
  return {
    format: 'geojson',
    topic: options.topic,
    parse(body: unknown): SourceBatch {
      const upserts = featuresOf(body).map((feature) => {
        const properties = isRecord(feature.properties) ? feature.properties : {};
        const mapped = applyMapping(properties, options);
        const id = toId(mapped.id) ?? toId(feature.id);
        const { lat, lon, ...rest } = mapped;
        const location =
          typeof lat === 'number' && typeof lon === 'number'
            ? { lat, lon }
            : representativePoint(feature.geometry);
        return compact({
          ...rest,
          id: id === undefined ? undefined : `${options.idPrefix ?? ''}${id}`,
          location,
        });
      });
      return { topic: options.topic, upserts, complete: options.complete ?? true };
    },
  };
}
