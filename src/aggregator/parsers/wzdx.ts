/**
 * Work Zone Data Exchange (WZDx) v4.x feeds: a GeoJSON FeatureCollection with `feed_info`, each feature a road
 * event whose `properties.core_details` hold `event_type`, `road_names`, `description`, `update_date`. Mapped to
 * `accidents` entities (road incidents):
 * - `kind`: `work-zone` -> `roadwork`, `detour` -> `closure`, others (`restriction`, `incident`) as they are;
 * - `severity` from `vehicle_impact`: all lanes closed 4, some lanes closed 3, alternating/flagging/signal 2,
 *   all lanes open 1, unknown 2;
 * - `lanesBlocked`: lanes whose `status` is `closed`; position: a point of the geometry.
 * Events that have not started yet (`start_date` after now) or have ended (`end_date` before now) are left out
 * unless `includeInactive` is set. The batch is complete: events that leave the feed are removed.
 *
 * @module
 */
import type { SourceBatch } from '../source.js';
import { featuresOf, representativePoint } from './geometry.js';
import type { FeedParser, ParseContext } from './types.js';
import { compact, isRecord, toId, toIso } from './types.js';

/** Options of {@link createWzdxParser}. */
export interface WzdxOptions {
  /** Keep events outside their start/end dates. Default false. */
  readonly includeInactive?: boolean;
  /** Prefix of entity ids. Default `wzdx:`. */
  readonly idPrefix?: string;
}

function severityOf(impact: unknown): number {
  if (typeof impact !== 'string') return 2;
  if (impact === 'all-lanes-closed') return 4;
  if (impact.startsWith('some-lanes-closed')) return 3;
  if (impact.startsWith('all-lanes-open')) return 1;
  return 2;
}

function kindOf(eventType: unknown): string | undefined {
  if (eventType === 'work-zone') return 'roadwork';
  if (eventType === 'detour') return 'closure';
  return typeof eventType === 'string' ? eventType : undefined;
}

/** A parser for WZDx v4 -> `accidents` entities (complete batches). */
export function createWzdxParser(options: WzdxOptions = {}): FeedParser {
  const prefix = options.idPrefix ?? 'wzdx:';
  return {
    format: 'wzdx',
    topic: 'accidents',
    parse(body: unknown, context: ParseContext): SourceBatch {
      const upserts: unknown[] = [];
      for (const feature of featuresOf(body)) {
        const p = isRecord(feature.properties) ? feature.properties : {};
        const core = isRecord(p.core_details) ? p.core_details : {};
        const start = toIso(p.start_date);
        const end = toIso(p.end_date);
        const now = new Date(context.now).toISOString();
        if (
          options.includeInactive !== true &&
          ((start !== undefined && start > now) || (end !== undefined && end < now))
        )
          continue;
        const id = toId(feature.id) ?? toId(p.road_event_id);
        const roads = Array.isArray(core.road_names)
          ? core.road_names.filter((r): r is string => typeof r === 'string')
          : [];
        const lanes = Array.isArray(p.lanes) ? p.lanes.filter(isRecord) : [];
        const kind = kindOf(core.event_type);
        const roadName = roads.length > 0 ? roads.join(' / ') : undefined;
        const direction =
          typeof core.direction === 'string' && core.direction !== 'unknown' ? ` ${core.direction}` : '';
        upserts.push(
          compact({
            id: id === undefined ? undefined : `${prefix}${id}`,
            location: representativePoint(feature.geometry),
            severity: severityOf(p.vehicle_impact),
            description:
              typeof core.description === 'string' && core.description.length > 0
                ? core.description
                : `${kind ?? 'road event'}${roadName === undefined ? '' : ` on ${roadName}${direction}`}`,
            kind,
            roadName,
            lanesBlocked: lanes.length === 0 ? undefined : lanes.filter((l) => l.status === 'closed').length,
            reportedAt: toIso(core.creation_date) ?? start ?? toIso(core.update_date),
            updatedAt: toIso(core.update_date),
          }),
        );
      }
      return { topic: 'accidents', upserts, complete: true };
    },
  };
}
