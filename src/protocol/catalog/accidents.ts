/**
 * The `accidents` topic: a traffic accident or road incident (`Accident` in `src/protocol/topics.ts`).
 *
 * @module
 */
import type { TopicDefinition } from '../topic-definition.js';
import { DATE_TIME, LOCATION, TEXT, integer } from './fields.js';

/** `accidents`: location, severity 1..5, description, kind, reportedAt; optional roadName, lanesBlocked. */
export const ACCIDENTS_TOPIC: TopicDefinition = {
  name: 'accidents',
  idField: 'id',
  locationField: 'location',
  display: {
    label: 'Accidents',
    color: '#eb5757',
    icon: '⚠️',
    fields: [
      { field: 'description' },
      { field: 'severity' },
      { field: 'kind' },
      { field: 'roadName', label: 'Road' },
      { field: 'lanesBlocked', label: 'Lanes blocked' },
    ],
  },
  schema: {
    type: 'object',
    required: ['location', 'severity', 'description', 'kind', 'reportedAt'],
    properties: {
      location: LOCATION,
      severity: integer(1, 5),
      description: TEXT,
      kind: TEXT,
      roadName: TEXT,
      lanesBlocked: integer(0, 64),
      reportedAt: DATE_TIME,
    },
  },
  ttlMs: 30 * 60_000,
  alerts: [],
};
