/**
 * The seam between the aggregator and the places city data comes from. A source knows how to fetch or receive
 * readings; the aggregator validates them, keeps the state and publishes changes.
 *
 * @module
 */
import type { Logger } from '../shared/logger.js';

/** One batch of readings a source reports for one topic. Entities are unvalidated until the aggregator checks them. */
export interface SourceBatch {
  readonly topic: string;
  /** Raw entities (validated by the aggregator against the topic's schema; bad ones are counted and logged). */
  readonly upserts?: readonly unknown[];
  /** Ids the source says are gone. */
  readonly removes?: readonly string[];
  /**
   * When true, the batch is the source's complete view of the topic: entities this source reported before and
   * does not report now are removed.
   */
  readonly complete?: boolean;
  /**
   * Ids the source still lists but whose reading it refused itself (and counted through `reject`): like a reading
   * the aggregator's validation rejects, they are not "unreported", so a `complete` batch keeps their last valid
   * state instead of removing them.
   */
  readonly retained?: readonly string[];
  /**
   * Alerts an upstream issued (e.g. US NWS warnings), fed to the alert rules. With `complete`, the list is the
   * source's whole active set: alerts it reported before and does not report now are resolved.
   */
  readonly alerts?: readonly ExternalAlert[];
}

/** Severity scale of external alerts (the CAP / NWS scale). */
export type ExternalAlertSeverity = 'Extreme' | 'Severe' | 'Moderate' | 'Minor' | 'Unknown';

/** An alert issued by an upstream (a weather service warning), as a source reports it. */
export interface ExternalAlert {
  /** Stable id from the upstream (e.g. the NWS alert URN). */
  readonly id: string;
  /** Kind of event: `Severe Thunderstorm Warning`, `Flood Watch`, ... */
  readonly event: string;
  readonly severity: ExternalAlertSeverity;
  /** One-line summary, when the upstream gives one. */
  readonly headline?: string;
  /** Area the alert covers, as text. */
  readonly area?: string;
  /** ISO-8601 start of the hazard. */
  readonly onset?: string;
  /** ISO-8601 time after which the alert no longer applies. */
  readonly expires?: string;
  /**
   * `weather` (default): a weather warning for the `severe-weather` rule, raised on the `weather` topic.
   * `service`: a transit service alert (GTFS-Realtime) for the `service-alert` rule, raised on the batch's topic.
   */
  readonly kind?: 'weather' | 'service';
}

/** What a running source may call. */
export interface SourceContext {
  /** Report readings. Never throws; invalid readings are counted against the source. */
  emit(batch: SourceBatch): void;
  /** Report a failure (counted, shown in status, logged). The source keeps retrying on its own schedule. */
  reportError(error: unknown): void;
  /** Report a successful fetch/receive that carried nothing new (e.g. an HTTP 304); `emit` counts as one too. */
  reportSuccess(): void;
  /** Count one reading the source received but could not decode (e.g. a non-JSON MQTT payload); logged. */
  reject(reason: string): void;
  /** Clock, injected so tests control time. Milliseconds since the epoch. */
  now(): number;
  logger: Logger;
}

/** Health of one source, as shown by `/readyz` and `/api/stats`. */
export interface SourceStatus {
  readonly name: string;
  readonly kind: string;
  readonly state: 'idle' | 'running' | 'failing' | 'stopped';
  /** ISO-8601 of the last successful fetch/receive. */
  readonly lastSuccessAt: string | null;
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
  /** Readings accepted. */
  readonly readings: number;
  /** Readings rejected by validation. */
  readonly rejected: number;
}

/** A producer of city data. `start` must not block on its first fetch; `stop` clears every timer and socket. */
export interface Source {
  /** Unique name, used in logs, status and as `Entity.source`. */
  readonly name: string;
  /** `simulator`, `http-poll`, `mqtt`, ... */
  readonly kind: string;
  /** The topics it reports on. */
  readonly topics: readonly string[];
  start(context: SourceContext): void | Promise<void>;
  /** Idempotent. */
  stop(): Promise<void>;
}
