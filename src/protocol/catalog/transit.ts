/**
 * The `transit` topic: a public-transport vehicle (GTFS-Realtime VehiclePositions, or the simulator's fleet).
 *
 * @module
 */
import type { TopicDefinition } from '../topic-definition.js';
import { DATE_TIME, LOCATION, TEXT, integer, range } from './fields.js';

/**
 * `transit`: `location`; optional `routeId`, `tripId`, `label`, `bearing` (0..360), `speed` (m/s, >= 0),
 * `observedAt` (ISO), `delaySec` (integer), `stopId`. Vehicles unheard of for 2 minutes are removed.
 */
export const TRANSIT_TOPIC: TopicDefinition = {
  name: 'transit',
  idField: 'id',
  locationField: 'location',
  display: {
    label: 'Transit vehicles',
    color: '#9b51e0',
    icon: '🚌',
    fields: [
      { field: 'label' },
      { field: 'routeId', label: 'Route' },
      { field: 'tripId', label: 'Trip' },
      { field: 'speed', label: 'Speed', unit: 'm/s' },
      { field: 'delaySec', label: 'Delay', unit: 's' },
      { field: 'stopId', label: 'Stop' },
    ],
  },
  schema: {
    type: 'object',
    required: ['location'],
    properties: {
      location: LOCATION,
      routeId: TEXT,
      tripId: TEXT,
      label: TEXT,
      bearing: range(0, 360),
      speed: range(0),
      observedAt: DATE_TIME,
      delaySec: integer(),
      stopId: TEXT,
    },
  },
  ttlMs: 120_000,
  alerts: [],
};
