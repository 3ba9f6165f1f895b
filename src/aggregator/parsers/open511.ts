/**
 * Open511 road events in JSON (`/events?format=json`): `{ events: [...], pagination, meta }`, each event with
 * `id`, `status` (`ACTIVE` / `ARCHIVED`), `event_type`, `event_subtypes`, `severity` (`MINOR` / `MODERATE` /
 * `MAJOR` / `UNKNOWN`), `headline`, `description`, `geography` (GeoJSON geometry), `roads[]` with `name` and
 * lane `state`, `created` and `updated`. Mapped to `accidents` entities; archived events are left out and the
 * batch is complete, so they are removed.
 *
 * @module
 */
import type { SourceBatch } from '../source.js';
import { representativePoint } from './geometry.js';
import type { FeedParser } from './types.js';
import { FeedFormatError, compact, isRecord, toId, toIso } from './types.js';

/** Options of {@link createOpen511Parser}. */
export interface Open511Options {
  /** Event types to keep (e.g. `["INCIDENT"]`). Default: all. */
  readonly eventTypes?: readonly string[];
}

const SEVERITY: Readonly<Record<string, number>> = { MINOR: 2, MODERATE: 3, MAJOR: 4, UNKNOWN: 2 };

function kindOf(eventType: unknown, subtypes: readonly unknown[]): string {
  if (subtypes.includes('ACCIDENT')) return 'collision';
  if (subtypes.includes('HAZARD') || subtypes.includes('SPILL') || subtypes.includes('OBSTRUCTION'))
    return 'hazard';
  switch (eventType) {
    case 'CONSTRUCTION':
      return 'roadwork';
    case 'SPECIAL_EVENT':
      return 'event';
    case 'WEATHER_CONDITION':
    case 'ROAD_CONDITION':
      return 'hazard';
    default:
      return 'incident';
  }
}

/** A parser for Open511 JSON -> `accidents` entities (complete batches). */
export function createOpen511Parser(options: Open511Options = {}): FeedParser {
  return {
    format: 'open511',
    topic: 'accidents',
    parse(body: unknown): SourceBatch {
      if (!isRecord(body) || !Array.isArray(body.events))
        throw new FeedFormatError('not an Open511 response: no "events" array');
      const upserts: unknown[] = [];
      for (const event of body.events) {
        if (!isRecord(event) || event.status === 'ARCHIVED') continue;
        if (options.eventTypes !== undefined && !options.eventTypes.includes(String(event.event_type)))
          continue;
        const subtypes = Array.isArray(event.event_subtypes) ? event.event_subtypes : [];
        const roads = Array.isArray(event.roads) ? event.roads.filter(isRecord) : [];
        const names = roads
          .map((r) => r.name)
          .filter((n): n is string => typeof n === 'string' && n.length > 0);
        const allClosed = roads.some((r) => r.state === 'ALL_LANES_CLOSED');
        const base = SEVERITY[String(event.severity)] ?? 2;
        const description = [event.headline, event.description]
          .filter((t) => typeof t === 'string' && t.length > 0)
          .join(': ');
        const id = toId(event.id);
        upserts.push(
          compact({
            id: id === undefined ? undefined : `open511:${id}`,
            location: representativePoint(event.geography),
            severity: allClosed ? Math.min(5, base + 1) : base,
            description: description === '' ? undefined : description,
            kind: kindOf(event.event_type, subtypes),
            roadName: names.length > 0 ? names.join(' / ') : undefined,
            reportedAt: toIso(event.created),
            updatedAt: toIso(event.updated ?? event.created),
          }),
        );
      }
      return { topic: 'accidents', upserts, complete: true };
    },
  };
}
