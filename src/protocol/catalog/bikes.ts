/**
 * The `bikes` topic: a bike-share station or a free-floating vehicle (GBFS v2.3 / v3.0). A free vehicle is
 * `kind: 'vehicle'` with `id: 'vehicle:<vehicle_id>'`, `bikesAvailable: 1` and `docksAvailable: 0`.
 *
 * @module
 */
import type { TopicDefinition } from '../topic-definition.js';
import { LOCATION, TEXT, integer, range } from './fields.js';

/**
 * `bikes`: `name`, `location`, `kind` (`station | vehicle`), `bikesAvailable`, `docksAvailable` (integers >= 0);
 * optional `vehicleType`, `rangeMeters` (>= 0), `isRenting`, `isReturning`. Unheard of for 10 minutes: removed.
 */
export const BIKES_TOPIC: TopicDefinition = {
  name: 'bikes',
  idField: 'id',
  locationField: 'location',
  display: {
    label: 'Bike share',
    color: '#00a3a3',
    icon: '🚲',
    fields: [
      { field: 'name' },
      { field: 'bikesAvailable', label: 'Bikes' },
      { field: 'docksAvailable', label: 'Docks' },
      { field: 'kind' },
    ],
  },
  schema: {
    type: 'object',
    required: ['name', 'location', 'kind', 'bikesAvailable', 'docksAvailable'],
    properties: {
      name: TEXT,
      location: LOCATION,
      kind: { enum: ['station', 'vehicle'] },
      bikesAvailable: integer(0),
      docksAvailable: integer(0),
      vehicleType: TEXT,
      rangeMeters: range(0),
      isRenting: { type: 'boolean' },
      isReturning: { type: 'boolean' },
    },
  },
  ttlMs: 10 * 60_000,
  alerts: [],
};
