/**
 * OpenAQ API v3 latest measurements: `/v3/locations/{id}/latest` (every sensor of a location) or
 * `/v3/parameters/{id}/latest` (one parameter across locations). Each result is
 * `{ datetime: {utc, local}, value, coordinates: {latitude, longitude}, sensorsId, locationsId }`; results carry
 * no parameter name, so the parser is told it: `parameter` for a per-parameter feed, or `sensors` mapping sensor
 * ids to parameters. Results are grouped into one station per `locationsId`; the AQI comes from PM2.5/PM10.
 *
 * @module
 */
import { aqiCategory } from '../../protocol/topics.js';
import { stationAqi } from '../aqi.js';
import type { SourceBatch } from '../source.js';
import type { FeedParser } from './types.js';
import { FeedFormatError, compact, isRecord, toId, toIso, toNumber } from './types.js';

/** Parameters the entity carries (OpenAQ parameter names). */
export type OpenAqParameter = 'pm25' | 'pm10' | 'no2' | 'o3';

/** Options of {@link createOpenAqParser}. */
export interface OpenAqOptions {
  /** For `/v3/parameters/{id}/latest`: the parameter of every result. */
  readonly parameter?: OpenAqParameter;
  /** Sensor id -> parameter, for `/v3/locations/{id}/latest`. */
  readonly sensors?: Readonly<Record<string, OpenAqParameter>>;
  /** Location id -> display name. Default `OpenAQ location <id>`. */
  readonly names?: Readonly<Record<string, string>>;
}

interface Station {
  lat?: number;
  lon?: number;
  latest?: string;
  values: Partial<Record<OpenAqParameter, number>>;
}

/** A parser for OpenAQ v3 latest -> `airQuality` entities. Not complete: a page may list only some locations. */
export function createOpenAqParser(options: OpenAqOptions): FeedParser {
  if (options.parameter === undefined && options.sensors === undefined) {
    throw new Error('the OpenAQ parser needs "parameter" or "sensors"');
  }
  return {
    format: 'openaq-v3-latest',
    topic: 'airQuality',
    parse(body: unknown): SourceBatch {
      if (!isRecord(body) || !Array.isArray(body.results))
        throw new FeedFormatError('not an OpenAQ v3 response: no "results" array');
      const stations = new Map<string, Station>();
      for (const result of body.results) {
        if (!isRecord(result)) continue;
        const locationId = toId(result.locationsId);
        const sensorId = toId(result.sensorsId);
        const parameter =
          options.parameter ?? (sensorId === undefined ? undefined : options.sensors?.[sensorId]);
        if (locationId === undefined || parameter === undefined) continue;
        const station = stations.get(locationId) ?? { values: {} };
        stations.set(locationId, station);
        const coordinates = isRecord(result.coordinates) ? result.coordinates : {};
        station.lat ??= toNumber(coordinates.latitude);
        station.lon ??= toNumber(coordinates.longitude);
        const value = toNumber(result.value);
        // A negative value is OpenAQ's "invalid" marker from some providers; leave it out.
        if (value !== undefined && value >= 0) station.values[parameter] = value;
        const at = toIso(isRecord(result.datetime) ? result.datetime.utc : undefined);
        if (at !== undefined && (station.latest === undefined || at > station.latest)) station.latest = at;
      }
      const upserts = [...stations].map(([locationId, s]) => {
        const computed = stationAqi(compact({ pm25: s.values.pm25, pm10: s.values.pm10 }));
        return compact({
          id: `openaq:${locationId}`,
          name: options.names?.[locationId] ?? `OpenAQ location ${locationId}`,
          location: s.lat === undefined || s.lon === undefined ? undefined : { lat: s.lat, lon: s.lon },
          aqi: computed?.aqi,
          category: computed === null ? undefined : aqiCategory(computed.aqi),
          pm25: s.values.pm25,
          pm10: s.values.pm10,
          no2: s.values.no2,
          o3: s.values.o3,
          updatedAt: s.latest,
        });
      });
      return { topic: 'airQuality', upserts };
    },
  };
}
