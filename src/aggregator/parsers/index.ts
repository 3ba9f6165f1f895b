/**
 * The parser registry: config `parser` objects (`{ "format": "wzdx", ... }`) -> {@link FeedParser}s, with
 * option errors naming the bad field. To add a format, write its parser file and add one entry here.
 *
 * @module
 */
import { OptionReader } from '../config-reader.js';
import { createCameraListParser } from './cameras.js';
import { createGeoJsonParser } from './geojson.js';
import {
  DEFAULT_MAX_ENTITIES,
  createGtfsRtAlertsParser,
  createGtfsRtTripUpdatesParser,
  createGtfsRtVehiclesParser,
  type GtfsRealtimeOptions,
} from './gtfs-realtime.js';
import type { FieldMapping } from './mapping.js';
import { createNwsAlertsParser } from './nws-alerts.js';
import { createOpen511Parser } from './open511.js';
import { createOpenAqParser } from './openaq.js';
import type { OpenAqParameter } from './openaq.js';
import { createOpenMeteoAirQualityParser } from './open-meteo-air-quality.js';
import { createOpenMeteoWeatherParser } from './open-meteo-weather.js';
import type { OpenMeteoLocation } from './open-meteo-weather.js';
import { createWzdxParser } from './wzdx.js';
import type { FeedParser } from './types.js';

export type { FeedParser, ParseContext } from './types.js';
export { FeedFormatError } from './types.js';

const OPENAQ_PARAMETERS: readonly OpenAqParameter[] = ['pm25', 'pm10', 'no2', 'o3'];

function locations(reader: OptionReader): OpenMeteoLocation[] | undefined {
  return reader.array(
    'locations',
    (value, path) => {
      const item = new OptionReader(value, path).only(['id', 'name']);
      return { id: item.string('id'), name: item.string('name') };
    },
    true,
  );
}

function mapping(reader: OptionReader): FieldMapping {
  const valueMaps = reader.object('valueMaps', true);
  const constants = reader.object('constants', true);
  return {
    fields: reader.stringMap('fields') ?? {},
    ...(constants === undefined ? {} : { constants: constants.value }),
    ...(valueMaps === undefined
      ? {}
      : {
          valueMaps: Object.fromEntries(
            Object.keys(valueMaps.value).map((k) => [k, valueMaps.object(k).value]),
          ),
        }),
  };
}

/** `topic` and `maxEntities` of the GTFS-Realtime formats. */
function gtfsRealtime(reader: OptionReader, defaultTopic: string): GtfsRealtimeOptions {
  return {
    topic: reader.string('topic', defaultTopic),
    maxEntities: reader.number(
      'maxEntities',
      { min: 1, max: 1_000_000, integer: true },
      DEFAULT_MAX_ENTITIES,
    ),
  };
}

/** Builders per format: each reads and checks its own options. */
const FORMATS: Readonly<Record<string, (reader: OptionReader) => FeedParser>> = {
  'open-meteo-weather': (r) => {
    r.only(['format', 'locations']);
    const locs = locations(r);
    return createOpenMeteoWeatherParser(locs === undefined ? {} : { locations: locs });
  },
  'open-meteo-air-quality': (r) => {
    r.only(['format', 'locations']);
    const locs = locations(r);
    return createOpenMeteoAirQualityParser(locs === undefined ? {} : { locations: locs });
  },
  'nws-alerts': (r) => {
    r.only(['format']);
    return createNwsAlertsParser();
  },
  'openaq-v3-latest': (r) => {
    r.only(['format', 'parameter', 'sensors', 'names']);
    const sensorsReader = r.object('sensors', true);
    const sensors = sensorsReader
      ? Object.fromEntries(
          Object.keys(sensorsReader.value).map((k) => [k, sensorsReader.oneOf(k, OPENAQ_PARAMETERS)]),
        )
      : undefined;
    const parameter = r.has('parameter') ? r.oneOf('parameter', OPENAQ_PARAMETERS) : undefined;
    if (parameter === undefined && sensors === undefined) {
      r.oneOf('parameter', OPENAQ_PARAMETERS); // throws "is required"
    }
    const names = r.stringMap('names');
    return createOpenAqParser({
      ...(parameter === undefined ? {} : { parameter }),
      ...(sensors === undefined ? {} : { sensors }),
      ...(names === undefined ? {} : { names }),
    });
  },
  wzdx: (r) => {
    r.only(['format', 'includeInactive', 'idPrefix']);
    return createWzdxParser({
      includeInactive: r.boolean('includeInactive', false),
      idPrefix: r.string('idPrefix', 'wzdx:'),
    });
  },
  open511: (r) => {
    r.only(['format', 'eventTypes']);
    const eventTypes = r.stringList('eventTypes');
    return createOpen511Parser(eventTypes === undefined ? {} : { eventTypes });
  },
  geojson: (r) => {
    r.only(['format', 'topic', 'idPrefix', 'complete', 'fields', 'constants', 'valueMaps']);
    r.object('fields'); // required for the generic mapping
    const idPrefix = r.string('idPrefix', null);
    return createGeoJsonParser({
      topic: r.string('topic'),
      complete: r.boolean('complete', true),
      ...(idPrefix === undefined ? {} : { idPrefix }),
      ...mapping(r),
    });
  },
  'gtfs-rt-vehicles': (r) => {
    r.only(['format', 'topic', 'maxEntities']);
    return createGtfsRtVehiclesParser(gtfsRealtime(r, 'transit'));
  },
  'gtfs-rt-trip-updates': (r) => {
    r.only(['format', 'topic', 'maxEntities']);
    return createGtfsRtTripUpdatesParser(gtfsRealtime(r, 'transitDelays'));
  },
  'gtfs-rt-alerts': (r) => {
    r.only(['format', 'topic', 'maxEntities', 'language']);
    const language = r.string('language', null);
    return createGtfsRtAlertsParser({
      ...gtfsRealtime(r, 'transit'),
      ...(language === undefined ? {} : { language }),
    });
  },
  'camera-list': (r) => {
    r.only(['format', 'itemsPath', 'idPrefix', 'fields', 'constants', 'valueMaps']);
    const itemsPath = r.string('itemsPath', null);
    const idPrefix = r.string('idPrefix', null);
    return createCameraListParser({
      ...(itemsPath === undefined ? {} : { itemsPath }),
      ...(idPrefix === undefined ? {} : { idPrefix }),
      ...mapping(r),
    });
  },
};

/** Formats the registry knows. */
export const PARSER_FORMATS: readonly string[] = Object.keys(FORMATS);

/** Builds the parser a config object describes; throws `ConfigError` naming the bad field under `path`. */
export function createParser(spec: unknown, path: string): FeedParser {
  const reader = new OptionReader(spec, path);
  const format = reader.oneOf('format', PARSER_FORMATS);
  const build = FORMATS[format] as (reader: OptionReader) => FeedParser;
  return build(reader);
}
