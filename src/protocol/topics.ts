/**
 * The data model of the four city topics: the entity of each, the shape of a topic's UPDATE and snapshot, and the
 * shape of an ALERT. Exported for client code (`citypulse/protocol` re-exports it).
 *
 * Every topic's state is a keyed collection of entities with stable string ids. A snapshot at `seq` N followed by
 * every UPDATE after N reproduces the server's state exactly (upserts replace whole entities; removes delete ids).
 *
 * @module
 */

/** A WGS-84 position. */
export interface GeoPoint {
  /** Latitude in degrees, -90..90. */
  readonly lat: number;
  /** Longitude in degrees, -180..180. */
  readonly lon: number;
}

/** Fields every entity has. */
export interface EntityBase {
  /** Stable id, unique within its topic. */
  readonly id: string;
  /** ISO-8601 time of the reading this entity reflects. */
  readonly updatedAt: string;
  /** Name of the source that reported it (e.g. `simulator`, `open-meteo`, `ingest`). */
  readonly source: string;
}

/** `cameras`: a traffic or street camera. */
export interface Camera extends EntityBase {
  readonly name: string;
  readonly location: GeoPoint;
  readonly status: 'online' | 'offline' | 'unknown';
  /** Latest still image, when the camera publishes one. */
  readonly imageUrl?: string;
  /** Street or area the camera watches. */
  readonly area?: string;
}

/** `weather`: current conditions at a station or area. */
export interface WeatherReading extends EntityBase {
  readonly name: string;
  readonly location: GeoPoint;
  readonly temperatureC: number;
  readonly humidityPct?: number;
  readonly windSpeedKmh?: number;
  readonly windDirectionDeg?: number;
  readonly precipitationMm?: number;
  /** Short human text: "clear", "rain", "snow", ... */
  readonly condition: string;
  /** WMO weather interpretation code, when known. */
  readonly weatherCode?: number;
}

/** Accident severity, 1 (minor) .. 5 (fatal / major closure). */
export type Severity = 1 | 2 | 3 | 4 | 5;

/** `accidents`: a traffic accident or road incident. */
export interface Accident extends EntityBase {
  readonly location: GeoPoint;
  readonly severity: Severity;
  readonly description: string;
  /** `collision`, `breakdown`, `roadwork`, `hazard`, `closure`, ... */
  readonly kind: string;
  readonly roadName?: string;
  readonly lanesBlocked?: number;
  /** ISO-8601 time the incident was first reported. */
  readonly reportedAt: string;
}

/** US EPA AQI categories, from best to worst. */
export const AQI_CATEGORIES = [
  'good',
  'moderate',
  'unhealthy-sensitive',
  'unhealthy',
  'very-unhealthy',
  'hazardous',
] as const;

/** A US EPA AQI category. */
export type AqiCategory = (typeof AQI_CATEGORIES)[number];

/** `airQuality`: an air-quality monitoring station. */
export interface AirQualityStation extends EntityBase {
  readonly name: string;
  readonly location: GeoPoint;
  /** US EPA AQI, 0..500. */
  readonly aqi: number;
  readonly category: AqiCategory;
  /** µg/m³. */
  readonly pm25?: number;
  /** µg/m³. */
  readonly pm10?: number;
  /** µg/m³. */
  readonly no2?: number;
  /** µg/m³. */
  readonly o3?: number;
}

/** Entity type of each city topic. */
export interface TopicEntityMap {
  cameras: Camera;
  weather: WeatherReading;
  accidents: Accident;
  airQuality: AirQualityStation;
}

/** Any entity of any topic. */
export type Entity = Camera | WeatherReading | Accident | AirQualityStation;

/** `data` of a topic's UPDATE: the change, not the world. */
export interface EntityChange<E extends EntityBase = EntityBase> {
  /** Entities added or replaced (whole entities). */
  readonly upserts: readonly E[];
  /** Ids removed. */
  readonly removes: readonly string[];
}

/** A topic's state as a snapshot: every entity and active alert, and the `seq` of the last message it reflects. */
export interface TopicState<E extends EntityBase = EntityBase> {
  readonly entities: readonly E[];
  readonly seq: number;
  /** The epoch `seq` belongs to. */
  readonly epoch?: string;
  /**
   * The topic's active alerts as of `seq`: the `data` of each active ALERT, oldest first (the rule:
   * `src/protocol/alert-state.ts`).
   */
  readonly alerts: readonly AlertPayload[];
}

/** Alert severity. */
export type AlertSeverity = 'info' | 'warning' | 'critical';

/** `data` of an ALERT produced by the alert rules (publishers may send other shapes through the API). */
export interface CityAlert {
  /** Stable id of the alert; the `resolved` ALERT repeats it. */
  readonly id: string;
  /** Name of the rule that raised it. */
  readonly rule: string;
  readonly severity: AlertSeverity;
  readonly topic: string;
  readonly entityId: string;
  readonly message: string;
  /** ISO-8601. */
  readonly raisedAt: string;
  /** `raised` when it starts, `resolved` when the condition clears. */
  readonly state: 'raised' | 'resolved';
  /** ISO-8601, on `resolved` alerts. */
  readonly resolvedAt?: string;
}

/**
 * `data` of an ALERT: a {@link CityAlert} raised by the alert rules, or what a publisher sent through
 * `POST /api/publish` (any JSON; `readAlert` in `payloads.ts` gives every shape one typed view).
 */
export type AlertPayload = CityAlert | PublishedAlert;

/** The documented shape of a published ALERT's data (other JSON is accepted and read by `readAlert`). */
export interface PublishedAlert {
  readonly message: string;
  readonly id?: string;
  readonly severity?: AlertSeverity;
  readonly title?: string;
  /** `resolved` ends the active alert of the same `id`. */
  readonly state?: 'raised' | 'resolved';
}

/**
 * Highest AQI of each category but the last, in {@link AQI_CATEGORIES} order (`good` up to 50, `moderate` up to
 * 100, ...; above 300 is `hazardous`). The one table both {@link aqiCategory} and the `airQuality` schema read.
 */
export const AQI_CATEGORY_MAX: readonly number[] = [50, 100, 150, 200, 300];

/** The US EPA AQI category for an AQI value. */
export function aqiCategory(aqi: number): AqiCategory {
  for (const [i, max] of AQI_CATEGORY_MAX.entries()) {
    if (aqi <= max) return AQI_CATEGORIES[i] as AqiCategory;
  }
  return 'hazardous';
}
