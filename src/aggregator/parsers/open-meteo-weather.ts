/**
 * Open-Meteo forecast API, current conditions (`/v1/forecast?latitude=..&longitude=..&current=temperature_2m,
 * relative_humidity_2m,precipitation,weather_code,wind_speed_10m,wind_direction_10m`), one location (an object)
 * or several (an array). The legacy `current_weather=true` block is read too. Units are converted from
 * `current_units` (°F, m/s, mph, kn, inch) to the entity's °C, km/h and mm.
 *
 * @module
 */
import type { SourceBatch } from '../source.js';
import { wmoCondition } from '../wmo.js';
import type { FeedParser, ParseContext } from './types.js';
import { FeedFormatError, compact, isRecord, toNumber } from './types.js';

/** Names for the locations of the request, in request order. */
export interface OpenMeteoLocation {
  readonly id: string;
  readonly name: string;
}

/** Options of {@link createOpenMeteoWeatherParser}. */
export interface OpenMeteoWeatherOptions {
  /** One per requested location, in the order of the request's coordinates. Default: ids from coordinates. */
  readonly locations?: readonly OpenMeteoLocation[];
}

/**
 * Open-Meteo's `time` is local to the requested timezone without an offset (`2026-03-01T12:00`); the response's
 * `utc_offset_seconds` turns it into UTC.
 */
export function openMeteoTime(time: unknown, utcOffsetSeconds: unknown): string | undefined {
  if (typeof time !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(time)) return undefined;
  const hasZone = /(Z|[+-]\d\d:?\d\d)$/.test(time);
  const ms = Date.parse(hasZone ? time : `${time}Z`);
  if (Number.isNaN(ms)) return undefined;
  return new Date(ms - (hasZone ? 0 : (toNumber(utcOffsetSeconds) ?? 0) * 1000)).toISOString();
}

/** The locations of a response: an object for one, an array for several. */
export function openMeteoLocations(body: unknown): Record<string, unknown>[] {
  const list = Array.isArray(body) ? body : [body];
  if (list.length === 0 || !list.every(isRecord))
    throw new FeedFormatError('not an Open-Meteo response (object or array of objects)');
  for (const item of list) {
    if (toNumber(item.latitude) === undefined || toNumber(item.longitude) === undefined) {
      throw new FeedFormatError('not an Open-Meteo response: no latitude/longitude');
    }
  }
  return list as Record<string, unknown>[];
}

function toCelsius(value: number | undefined, unit: unknown): number | undefined {
  if (value === undefined) return undefined;
  return unit === '°F' ? Math.round((((value - 32) * 5) / 9) * 10) / 10 : value;
}

function toKmh(value: number | undefined, unit: unknown): number | undefined {
  if (value === undefined) return undefined;
  const factor =
    unit === 'm/s' ? 3.6 : unit === 'mp/h' || unit === 'mph' ? 1.609344 : unit === 'kn' ? 1.852 : 1;
  return Math.round(value * factor * 10) / 10;
}

function toMm(value: number | undefined, unit: unknown): number | undefined {
  if (value === undefined) return undefined;
  return unit === 'inch' ? Math.round(value * 25.4 * 10) / 10 : value;
}

function reading(
  item: Record<string, unknown>,
  index: number,
  options: OpenMeteoWeatherOptions,
): Record<string, unknown> {
  const lat = toNumber(item.latitude) as number;
  const lon = toNumber(item.longitude) as number;
  const named = options.locations?.[index];
  const id = named?.id ?? `open-meteo:${lat.toFixed(3)},${lon.toFixed(3)}`;
  const name = named?.name ?? `Open-Meteo ${lat.toFixed(3)}, ${lon.toFixed(3)}`;
  const current = isRecord(item.current) ? item.current : undefined;
  const units = isRecord(item.current_units) ? item.current_units : {};
  if (current !== undefined) {
    const code = toNumber(current.weather_code ?? current.weathercode);
    return compact({
      id,
      name,
      location: { lat, lon },
      temperatureC: toCelsius(toNumber(current.temperature_2m), units.temperature_2m),
      humidityPct: toNumber(current.relative_humidity_2m),
      windSpeedKmh: toKmh(toNumber(current.wind_speed_10m), units.wind_speed_10m),
      windDirectionDeg: toNumber(current.wind_direction_10m),
      precipitationMm: toMm(toNumber(current.precipitation), units.precipitation),
      condition: code === undefined ? undefined : wmoCondition(code),
      weatherCode: code,
      updatedAt: openMeteoTime(current.time, item.utc_offset_seconds),
    });
  }
  const legacy = isRecord(item.current_weather) ? item.current_weather : undefined;
  if (legacy === undefined)
    throw new FeedFormatError('Open-Meteo response has neither "current" nor "current_weather"');
  const legacyUnits = isRecord(item.current_weather_units) ? item.current_weather_units : {};
  const code = toNumber(legacy.weathercode ?? legacy.weather_code);
  return compact({
    id,
    name,
    location: { lat, lon },
    temperatureC: toCelsius(toNumber(legacy.temperature), legacyUnits.temperature),
    windSpeedKmh: toKmh(
      toNumber(legacy.windspeed ?? legacy.wind_speed),
      legacyUnits.windspeed ?? legacyUnits.wind_speed,
    ),
    windDirectionDeg: toNumber(legacy.winddirection ?? legacy.wind_direction),
    condition: code === undefined ? undefined : wmoCondition(code),
    weatherCode: code,
    updatedAt: openMeteoTime(legacy.time, item.utc_offset_seconds),
  });
}

/** A parser for Open-Meteo current weather -> `weather` entities (complete batches). */
export function createOpenMeteoWeatherParser(options: OpenMeteoWeatherOptions = {}): FeedParser {
  return {
    format: 'open-meteo-weather',
    topic: 'weather',
    parse(body: unknown, _context: ParseContext): SourceBatch {
      const upserts = openMeteoLocations(body).map((item, i) => reading(item, i, options));
      return { topic: 'weather', upserts, complete: true };
    },
  };
}
