/**
 * Alert rules: turn the aggregator's state (and alerts upstreams issue) into `CityAlert`s. Each rule keeps the set
 * of alerts it has raised; an alert is `raised` once when its condition starts and `resolved` once (same `id`)
 * when it clears. The engine is pure bookkeeping: the aggregator feeds it changes and clock ticks and publishes
 * what it returns.
 *
 * Rules:
 * - `accident-severity`: an accident with `severity >= minSeverity`; resolved when it clears or drops below.
 * - `air-quality`: a station whose AQI reaches the lower bound of `category`; resolved only once the AQI falls
 *   below that bound minus `hysteresis`, so a value hovering at the line does not flap.
 * - `camera-offline`: a camera continuously `offline` for `afterMs`; resolved when it is back or gone.
 * - `severe-weather`: an upstream weather alert (US NWS) with severity at or above `minSeverity`; resolved when
 *   the upstream stops listing it or it expires.
 * - `service-alert`: an upstream transit service alert (GTFS-Realtime Alerts, `kind: 'service'`) with severity at or
 *   above `minSeverity`, raised on the topic of the batch that carried it; resolved like `severe-weather`.
 *
 * Besides these, every topic's threshold rules (`ThresholdRule`, from the config `topics` section) run on each
 * committed change of the topic (`threshold-alerts.ts`), with alert ids `<rule>:<topic>:<entity id>`.
 *
 * @module
 */
import type {
  Accident,
  AirQualityStation,
  AlertSeverity,
  AqiCategory,
  Camera,
  CityAlert,
  EntityBase,
  Severity,
} from '../protocol/topics.js';
import type { ThresholdRule } from '../protocol/topic-definition.js';
import type { ExternalAlert, ExternalAlertSeverity } from './source.js';
import { thresholdTransitions } from './threshold-alerts.js';

/** The threshold rules of a topic (`[]` for none). */
export type ThresholdRulesOf = (topic: string) => readonly ThresholdRule[];

/** Names of the built-in rules (the `rule` field of their alerts). */
export type AlertRuleName =
  'accident-severity' | 'air-quality' | 'camera-offline' | 'severe-weather' | 'service-alert';

/** Configuration of the alert rules. A rule set to `false` is off; an omitted one runs with its defaults. */
export interface AlertRulesOptions {
  /** Default `{ minSeverity: 4 }`. */
  readonly accidentSeverity?: { readonly minSeverity?: Severity } | false;
  /** Default `{ category: 'unhealthy', hysteresis: 10 }`. */
  readonly airQuality?: { readonly category?: AqiCategory; readonly hysteresis?: number } | false;
  /** Default `{ afterMs: 600000 }` (10 minutes). */
  readonly cameraOffline?: { readonly afterMs?: number } | false;
  /** Default `{ minSeverity: 'Severe' }`. */
  readonly severeWeather?: { readonly minSeverity?: ExternalAlertSeverity } | false;
  /** Default `{ minSeverity: 'Unknown' }` (every service alert). */
  readonly serviceAlerts?: { readonly minSeverity?: ExternalAlertSeverity } | false;
}

/** Every built-in rule off (the threshold rules of topics still run). */
export const BUILTIN_RULES_OFF: AlertRulesOptions = Object.freeze({
  accidentSeverity: false,
  airQuality: false,
  cameraOffline: false,
  severeWeather: false,
});

/** Lowest AQI of each category (US EPA). */
export const AQI_CATEGORY_FLOOR: Readonly<Record<AqiCategory, number>> = {
  good: 0,
  moderate: 51,
  'unhealthy-sensitive': 101,
  unhealthy: 151,
  'very-unhealthy': 201,
  hazardous: 301,
};

const EXTERNAL_RANK: Readonly<Record<ExternalAlertSeverity, number>> = {
  Unknown: 0,
  Minor: 1,
  Moderate: 2,
  Severe: 3,
  Extreme: 4,
};

/** The alert severity of an upstream alert: weather warnings are critical when Extreme, service alerts when Severe. */
function externalSeverity(severity: ExternalAlertSeverity, service: boolean): AlertSeverity {
  if (!service) return severity === 'Extreme' ? 'critical' : 'warning';
  if (EXTERNAL_RANK[severity] >= EXTERNAL_RANK.Severe) return 'critical';
  return severity === 'Moderate' ? 'warning' : 'info';
}

/** An alert the engine holds as raised. */
interface ActiveAlert {
  readonly alert: CityAlert;
  /** For upstream alerts: the source that reported it and its expiry (ms), if any. */
  readonly origin?: string;
  readonly expiresAt?: number;
}

function key(rule: AlertRuleName, topic: string, entityId: string): string {
  return `${rule}\u0000${topic}\u0000${entityId}`;
}

/** Key of a threshold rule's alert (its id is already unique; the prefix keeps it apart from built-in keys). */
function thresholdKey(id: string): string {
  return `threshold\u0000${id}`;
}

function minutes(ms: number): string {
  const m = Math.round(ms / 60_000);
  return m === 1 ? '1 minute' : `${m} minutes`;
}

/** Evaluates the alert rules. Every method returns the alerts to publish, in order. */
export class AlertEngine {
  private readonly active = new Map<string, ActiveAlert>();
  /** Camera id -> time (ms) it was first seen offline in its current offline spell. */
  private readonly offlineSince = new Map<string, { since: number; name: string }>();
  private readonly accident: { minSeverity: Severity } | null;
  private readonly airQuality: { floor: number; hysteresis: number } | null;
  private readonly cameraOffline: { afterMs: number } | null;
  private readonly severeWeather: { minRank: number } | null;
  private readonly serviceAlerts: { minRank: number } | null;
  private counter = 0;

  /**
   * @param options the built-in rules (`alerts` of the config file).
   * @param now the clock (ms).
   * @param thresholdRules the threshold rules of each topic (default none).
   */
  constructor(
    options: AlertRulesOptions,
    private readonly now: () => number,
    private readonly thresholdRules: ThresholdRulesOf = () => [],
  ) {
    this.accident =
      options.accidentSeverity === false ? null : { minSeverity: options.accidentSeverity?.minSeverity ?? 4 };
    this.airQuality =
      options.airQuality === false
        ? null
        : {
            floor: AQI_CATEGORY_FLOOR[options.airQuality?.category ?? 'unhealthy'],
            hysteresis: Math.max(0, options.airQuality?.hysteresis ?? 10),
          };
    this.cameraOffline =
      options.cameraOffline === false
        ? null
        : { afterMs: Math.max(0, options.cameraOffline?.afterMs ?? 600_000) };
    this.severeWeather =
      options.severeWeather === false
        ? null
        : { minRank: EXTERNAL_RANK[options.severeWeather?.minSeverity ?? 'Severe'] };
    this.serviceAlerts =
      options.serviceAlerts === false
        ? null
        : { minRank: EXTERNAL_RANK[options.serviceAlerts?.minSeverity ?? 'Unknown'] };
  }

  /** Alerts currently raised, oldest first. */
  activeAlerts(): CityAlert[] {
    return [...this.active.values()].map((a) => a.alert);
  }

  /** Feeds one committed change of `topic`. */
  onChange(topic: string, upserts: readonly EntityBase[], removes: readonly string[]): CityAlert[] {
    const out: CityAlert[] = [];
    switch (topic) {
      case 'accidents':
        if (this.accident === null) break;
        for (const entity of upserts)
          this.evaluateAccident(entity as Accident, this.accident.minSeverity, out);
        for (const id of removes) this.resolve(key('accident-severity', topic, id), out);
        break;
      case 'airQuality':
        if (this.airQuality === null) break;
        for (const entity of upserts)
          this.evaluateAirQuality(entity as AirQualityStation, this.airQuality, out);
        for (const id of removes) this.resolve(key('air-quality', topic, id), out);
        break;
      case 'cameras':
        if (this.cameraOffline === null) break;
        for (const entity of upserts) {
          const camera = entity as Camera;
          if (camera.status === 'offline') {
            if (!this.offlineSince.has(camera.id))
              this.offlineSince.set(camera.id, { since: this.now(), name: camera.name });
          } else {
            this.offlineSince.delete(camera.id);
            this.resolve(key('camera-offline', topic, camera.id), out);
          }
        }
        for (const id of removes) {
          this.offlineSince.delete(id);
          this.resolve(key('camera-offline', topic, id), out);
        }
        this.evaluateCameras(this.cameraOffline.afterMs, out);
        break;
      default:
        break;
    }
    this.evaluateThresholds(topic, upserts, removes, out);
    return out;
  }

  private evaluateThresholds(
    topic: string,
    upserts: readonly EntityBase[],
    removes: readonly string[],
    out: CityAlert[],
  ): void {
    const rules = this.thresholdRules(topic);
    const isActive = (id: string): boolean => this.active.has(thresholdKey(id));
    for (const step of thresholdTransitions(topic, rules, upserts, removes, isActive)) {
      if (step.kind === 'resolve') {
        this.resolve(thresholdKey(step.id), out);
        continue;
      }
      const now = this.now();
      const alert: CityAlert = {
        id: step.id,
        rule: step.rule.name,
        severity: step.rule.severity,
        topic,
        entityId: step.entityId,
        message: step.message,
        raisedAt: new Date(now).toISOString(),
        state: 'raised',
      };
      this.active.set(thresholdKey(step.id), { alert });
      out.push(alert);
    }
  }

  /**
   * Feeds alerts an upstream issued. With `complete`, alerts from `origin` that are not listed are resolved.
   * Weather alerts are raised on the `weather` topic (`severe-weather`), service alerts on `topic`
   * (`service-alert`).
   */
  onExternalAlerts(
    origin: string,
    alerts: readonly ExternalAlert[],
    complete: boolean,
    topic = 'weather',
  ): CityAlert[] {
    const out: CityAlert[] = [];
    const now = this.now();
    const listed = new Set<string>();
    for (const ext of alerts) {
      const service = ext.kind === 'service';
      const rule: AlertRuleName = service ? 'service-alert' : 'severe-weather';
      const settings = service ? this.serviceAlerts : this.severeWeather;
      if (settings === null) continue;
      const k = key(rule, service ? topic : 'weather', ext.id);
      listed.add(k);
      const expiresAt = ext.expires === undefined ? undefined : Date.parse(ext.expires);
      const expired = expiresAt !== undefined && !Number.isNaN(expiresAt) && expiresAt <= now;
      if (EXTERNAL_RANK[ext.severity] < settings.minRank || expired) {
        this.resolve(k, out);
        continue;
      }
      if (this.active.has(k)) continue;
      const message = ext.headline ?? (ext.area === undefined ? ext.event : `${ext.event} for ${ext.area}`);
      this.raise(
        rule,
        service ? topic : 'weather',
        ext.id,
        externalSeverity(ext.severity, service),
        message,
        out,
        { origin, ...(expiresAt !== undefined && !Number.isNaN(expiresAt) ? { expiresAt } : {}) },
      );
    }
    if (complete) {
      for (const [k, entry] of this.active) {
        if (entry.origin === origin && !listed.has(k)) this.resolve(k, out);
      }
    }
    return out;
  }

  /** Time-driven rules: cameras offline long enough, upstream alerts past their expiry. */
  tick(): CityAlert[] {
    const out: CityAlert[] = [];
    if (this.cameraOffline !== null) this.evaluateCameras(this.cameraOffline.afterMs, out);
    const now = this.now();
    for (const [k, entry] of this.active) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.resolve(k, out);
    }
    return out;
  }

  private evaluateAccident(accident: Accident, minSeverity: Severity, out: CityAlert[]): void {
    const k = key('accident-severity', 'accidents', accident.id);
    if (accident.severity < minSeverity) {
      this.resolve(k, out);
      return;
    }
    if (this.active.has(k)) return;
    const where = accident.roadName === undefined ? '' : ` on ${accident.roadName}`;
    this.raise(
      'accident-severity',
      'accidents',
      accident.id,
      accident.severity >= 5 ? 'critical' : 'warning',
      `Severity ${accident.severity} ${accident.kind}${where}: ${accident.description}`,
      out,
    );
  }

  private evaluateAirQuality(
    station: AirQualityStation,
    rule: { floor: number; hysteresis: number },
    out: CityAlert[],
  ): void {
    const k = key('air-quality', 'airQuality', station.id);
    if (this.active.has(k)) {
      if (station.aqi < rule.floor - rule.hysteresis) this.resolve(k, out);
      return;
    }
    if (station.aqi >= rule.floor) {
      this.raise(
        'air-quality',
        'airQuality',
        station.id,
        station.aqi >= AQI_CATEGORY_FLOOR['very-unhealthy'] ? 'critical' : 'warning',
        `AQI ${station.aqi} (${station.category}) at ${station.name}`,
        out,
      );
    }
  }

  private evaluateCameras(afterMs: number, out: CityAlert[]): void {
    const now = this.now();
    for (const [id, { since, name }] of this.offlineSince) {
      const k = key('camera-offline', 'cameras', id);
      if (this.active.has(k) || now - since < afterMs) continue;
      this.raise(
        'camera-offline',
        'cameras',
        id,
        'warning',
        `Camera ${name} offline for ${minutes(now - since)}`,
        out,
      );
    }
  }

  private raise(
    rule: AlertRuleName,
    topic: string,
    entityId: string,
    severity: AlertSeverity,
    message: string,
    out: CityAlert[],
    extra: { origin?: string; expiresAt?: number } = {},
  ): void {
    const now = this.now();
    this.counter += 1;
    const alert: CityAlert = {
      id: `${rule}:${entityId}:${now.toString(36)}${this.counter.toString(36)}`,
      rule,
      severity,
      topic,
      entityId,
      message,
      raisedAt: new Date(now).toISOString(),
      state: 'raised',
    };
    this.active.set(key(rule, topic, entityId), { alert, ...extra });
    out.push(alert);
  }

  private resolve(k: string, out: CityAlert[]): void {
    const entry = this.active.get(k);
    if (entry === undefined) return;
    this.active.delete(k);
    out.push({ ...entry.alert, state: 'resolved', resolvedAt: new Date(this.now()).toISOString() });
  }
}
