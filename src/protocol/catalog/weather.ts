/**
 * The `weather` topic: current conditions at a station or area (`WeatherReading` in `src/protocol/topics.ts`).
 *
 * @module
 */
import type { TopicDefinition } from '../topic-definition.js';
import { LOCATION, TEXT, integer, range } from './fields.js';

/** `weather`: name, location, temperature, condition; optional humidity, wind, precipitation, WMO code. */
export const WEATHER_TOPIC: TopicDefinition = {
  name: 'weather',
  idField: 'id',
  locationField: 'location',
  display: {
    label: 'Weather',
    color: '#f2994a',
    icon: '🌡',
    fields: [
      { field: 'name' },
      { field: 'temperatureC', label: 'Temperature', unit: '°C' },
      { field: 'condition' },
      { field: 'windSpeedKmh', label: 'Wind', unit: 'km/h' },
      { field: 'humidityPct', label: 'Humidity', unit: '%' },
    ],
  },
  schema: {
    type: 'object',
    required: ['name', 'location', 'temperatureC', 'condition'],
    properties: {
      name: TEXT,
      location: LOCATION,
      temperatureC: range(-100, 70),
      humidityPct: range(0, 100),
      windSpeedKmh: range(0, 500),
      windDirectionDeg: range(0, 360),
      precipitationMm: range(0, 1000),
      condition: TEXT,
      weatherCode: integer(0, 99),
    },
  },
  ttlMs: 60 * 60_000,
  alerts: [],
};
