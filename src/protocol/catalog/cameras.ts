/**
 * The `cameras` topic: a traffic or street camera (`Camera` in `src/protocol/topics.ts`).
 *
 * @module
 */
import { MAX_TEXT_LENGTH } from '../state-model.js';
import type { TopicDefinition } from '../topic-definition.js';
import { LOCATION, TEXT } from './fields.js';

/** `cameras`: name, location, status `online | offline | unknown`, optional http(s) `imageUrl` and `area`. */
export const CAMERAS_TOPIC: TopicDefinition = {
  name: 'cameras',
  idField: 'id',
  locationField: 'location',
  display: {
    label: 'Cameras',
    color: '#2f80ed',
    icon: '📷',
    fields: [{ field: 'name' }, { field: 'status' }, { field: 'area' }],
  },
  schema: {
    type: 'object',
    required: ['name', 'location', 'status'],
    properties: {
      name: TEXT,
      location: LOCATION,
      status: { enum: ['online', 'offline', 'unknown'] },
      // http(s) only (never `javascript:` or `data:`), any case, no whitespace.
      imageUrl: { type: 'string', maxLength: MAX_TEXT_LENGTH, pattern: '^[Hh][Tt][Tt][Pp][Ss]?://\\S+$' },
      area: TEXT,
    },
  },
  ttlMs: 10 * 60_000,
  alerts: [],
};
