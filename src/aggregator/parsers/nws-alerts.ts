/**
 * US National Weather Service active alerts (`api.weather.gov/alerts/active?area=IL`, GeoJSON FeatureCollection
 * of CAP alerts). Produces external alerts for the `severe-weather` rule, not entities: the batch lists the
 * feed's whole active set, so alerts that leave the feed are resolved.
 *
 * Skipped: alerts whose `status` is not `Actual` (tests, exercises, drafts) and `Cancel` messages.
 *
 * @module
 */
import type { ExternalAlert, ExternalAlertSeverity, SourceBatch } from '../source.js';
import { featuresOf } from './geometry.js';
import type { FeedParser } from './types.js';
import { compact, isRecord, toIso } from './types.js';

const SEVERITIES: readonly ExternalAlertSeverity[] = ['Extreme', 'Severe', 'Moderate', 'Minor', 'Unknown'];

/** A parser for NWS alerts -> external alerts on the `weather` topic. */
export function createNwsAlertsParser(): FeedParser {
  return {
    format: 'nws-alerts',
    topic: 'weather',
    parse(body: unknown): SourceBatch {
      const alerts: ExternalAlert[] = [];
      for (const feature of featuresOf(body)) {
        const p = isRecord(feature.properties) ? feature.properties : {};
        if (p.status !== 'Actual' || p.messageType === 'Cancel') continue;
        const id = typeof p.id === 'string' ? p.id : typeof feature.id === 'string' ? feature.id : undefined;
        if (id === undefined || typeof p.event !== 'string') continue;
        const severity = SEVERITIES.includes(p.severity as ExternalAlertSeverity)
          ? (p.severity as ExternalAlertSeverity)
          : 'Unknown';
        alerts.push(
          compact({
            id,
            event: p.event,
            severity,
            headline: typeof p.headline === 'string' ? p.headline : undefined,
            area: typeof p.areaDesc === 'string' ? p.areaDesc : undefined,
            onset: toIso(p.onset ?? p.effective),
            expires: toIso(p.ends ?? p.expires),
          }),
        );
      }
      return { topic: 'weather', alerts, complete: true };
    },
  };
}
