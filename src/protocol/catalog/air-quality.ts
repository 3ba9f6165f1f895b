/**
 * The `airQuality` topic: an air-quality monitoring station (`AirQualityStation` in `src/protocol/topics.ts`).
 * The `category` must be the US EPA category of the `aqi` (`aqiCategory`): one `if`/`then` per category, built
 * from the same table (`AQI_CATEGORY_MAX`).
 *
 * @module
 */
import { AQI_CATEGORIES, AQI_CATEGORY_MAX } from '../topics.js';
import type { JsonSchema, TopicDefinition } from '../topic-definition.js';
import { LOCATION, TEXT, range } from './fields.js';

/** `if aqi is in the category's band then category is that category`, for every category. */
function categoryMatchesAqi(): JsonSchema[] {
  return AQI_CATEGORIES.map((category, i) => {
    const above = i === 0 ? undefined : AQI_CATEGORY_MAX[i - 1];
    const max = AQI_CATEGORY_MAX[i];
    const aqi: Record<string, unknown> = { type: 'number' };
    if (above !== undefined) aqi.exclusiveMinimum = above;
    if (max !== undefined) aqi.maximum = max;
    return {
      if: { required: ['aqi'], properties: { aqi } },
      then: { properties: { category: { const: category } } },
    };
  });
}

/** `airQuality`: name, location, AQI 0..500 with its category; optional pollutant concentrations (µg/m³). */
export const AIR_QUALITY_TOPIC: TopicDefinition = {
  name: 'airQuality',
  idField: 'id',
  locationField: 'location',
  display: {
    label: 'Air quality',
    color: '#27ae60',
    icon: '🌫',
    fields: [
      { field: 'name' },
      { field: 'aqi', label: 'AQI' },
      { field: 'category' },
      { field: 'pm25', label: 'PM2.5', unit: 'µg/m³' },
      { field: 'pm10', label: 'PM10', unit: 'µg/m³' },
    ],
  },
  schema: {
    type: 'object',
    required: ['name', 'location', 'aqi', 'category'],
    properties: {
      name: TEXT,
      location: LOCATION,
      aqi: range(0, 500),
      category: { enum: [...AQI_CATEGORIES] },
      pm25: range(0, 10_000),
      pm10: range(0, 10_000),
      no2: range(0, 10_000),
      o3: range(0, 10_000),
    },
    allOf: categoryMatchesAqi(),
  },
  ttlMs: 2 * 60 * 60_000,
  alerts: [],
};
