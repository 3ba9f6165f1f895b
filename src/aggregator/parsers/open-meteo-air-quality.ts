/**
 * Open-Meteo air-quality API, current values (`air-quality-api.open-meteo.com/v1/air-quality?latitude=..&
 * longitude=..&current=pm10,pm2_5,nitrogen_dioxide,ozone,us_aqi`), one location or several. The AQI is
 * Open-Meteo's `us_aqi` when present, otherwise computed from PM2.5/PM10 with the EPA breakpoints.
 *
 * @module
 */
import { aqiCategory } from '../../protocol/topics.js';
import { stationAqi } from '../aqi.js';
import type { SourceBatch } from '../source.js';
import { openMeteoLocations, openMeteoTime } from './open-meteo-weather.js';
import type { OpenMeteoLocation } from './open-meteo-weather.js';
import type { FeedParser } from './types.js';
import { FeedFormatError, compact, isRecord, toNumber } from './types.js';

/** Options of {@link createOpenMeteoAirQualityParser}. */
export interface OpenMeteoAirQualityOptions {
  /** One per requested location, in request order. Default: ids from coordinates. */
  readonly locations?: readonly OpenMeteoLocation[];
}

/** A parser for Open-Meteo air quality -> `airQuality` entities (complete batches). */
export function createOpenMeteoAirQualityParser(options: OpenMeteoAirQualityOptions = {}): FeedParser {
  return {
    format: 'open-meteo-air-quality',
    topic: 'airQuality',
    parse(body: unknown): SourceBatch {
      const upserts = openMeteoLocations(body).map((item, i) => {
        const current = item.current;
        if (!isRecord(current))
          throw new FeedFormatError('Open-Meteo air-quality response has no "current" block');
        const lat = toNumber(item.latitude) as number;
        const lon = toNumber(item.longitude) as number;
        const named = options.locations?.[i];
        const pm25 = toNumber(current.pm2_5);
        const pm10 = toNumber(current.pm10);
        const usAqi = toNumber(current.us_aqi);
        const computed = stationAqi(compact({ pm25, pm10 }));
        const aqi = usAqi === undefined ? computed?.aqi : Math.round(usAqi);
        return compact({
          id: named?.id ?? `open-meteo-aq:${lat.toFixed(3)},${lon.toFixed(3)}`,
          name: named?.name ?? `Open-Meteo ${lat.toFixed(3)}, ${lon.toFixed(3)}`,
          location: { lat, lon },
          aqi,
          category: aqi === undefined ? undefined : aqiCategory(aqi),
          pm25,
          pm10,
          no2: toNumber(current.nitrogen_dioxide),
          o3: toNumber(current.ozone),
          updatedAt: openMeteoTime(current.time, item.utc_offset_seconds),
        });
      });
      return { topic: 'airQuality', upserts, complete: true };
    },
  };
}
