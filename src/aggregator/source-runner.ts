/**
 * Runs the sources of a `DataAggregator`: starts and stops them, gives each its `SourceContext`, and keeps the
 * bookkeeping behind `sourceStatus()` (state, last success, last error, readings, rejections). What a batch does to
 * the topics' state is the aggregator's (`onBatch`); this module never touches state.
 *
 * @module
 */
import type { Logger } from '../shared/logger.js';
import type { Source, SourceBatch, SourceContext, SourceStatus } from './source.js';

/** Name under which `ingest()` entities are attributed and counted. */
export const INGEST_SOURCE = 'ingest';

/** Mutable per-source bookkeeping behind {@link SourceStatus}. */
export interface SourceRecord {
  readonly name: string;
  readonly kind: string;
  readonly source: Source | null;
  state: SourceStatus['state'];
  lastSuccessAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  readings: number;
  rejected: number;
  /** False once the aggregator stopped it: later calls from the source are ignored. */
  live: boolean;
}

/** The message of an error (or the value, as text). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What the runner needs of its aggregator. */
export interface SourceRunnerOptions {
  /** Clock, ms since the epoch. */
  readonly now: () => number;
  readonly logger: Logger;
  /** Whether the aggregator serves `topic` (a source reporting another is refused at construction). */
  readonly hasTopic: (topic: string) => boolean;
  /** Applies a batch a live source emitted (a throw is logged, never reaches the source). */
  readonly onBatch: (record: SourceRecord, batch: SourceBatch) => void;
}

/** Starts, stops and keeps the status of a set of sources. */
export class SourceRunner {
  readonly #records = new Map<string, SourceRecord>();
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #onBatch: (record: SourceRecord, batch: SourceBatch) => void;

  /** Throws on a duplicate source name or a source reporting a topic the aggregator does not serve. */
  constructor(sources: readonly Source[], options: SourceRunnerOptions) {
    this.#now = options.now;
    this.#logger = options.logger;
    this.#onBatch = options.onBatch;
    for (const source of sources) {
      if (this.#records.has(source.name)) throw new Error(`duplicate source name "${source.name}"`);
      for (const topic of source.topics) {
        if (!options.hasTopic(topic))
          throw new Error(`source "${source.name}" reports unknown topic "${topic}"`);
      }
      this.#records.set(source.name, this.#newRecord(source.name, source.kind, source));
    }
  }

  /** Starts every source; a source whose `start` throws is marked failing, the others run. */
  async start(): Promise<void> {
    await Promise.all(
      [...this.#records.values()].map(async (record) => {
        if (record.source === null) return;
        record.live = true;
        record.state = 'running';
        try {
          await record.source.start(this.#contextFor(record));
        } catch (error) {
          this.recordError(record, error);
        }
      }),
    );
  }

  /** Stops every source; later calls from a stopped source are ignored. */
  async stop(): Promise<void> {
    await Promise.all(
      [...this.#records.values()].map(async (record) => {
        record.live = false;
        record.state = 'stopped';
        if (record.source === null) return;
        try {
          await record.source.stop();
        } catch (error) {
          this.#logger.warn({ source: record.name, err: errorText(error) }, 'source failed to stop cleanly');
        }
      }),
    );
  }

  /** Health of every source (and of `ingest` once it was used). */
  status(): SourceStatus[] {
    const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
    return [...this.#records.values()].map((r) => ({
      name: r.name,
      kind: r.kind,
      state: r.state,
      lastSuccessAt: iso(r.lastSuccessAt),
      lastError: r.lastError,
      lastErrorAt: iso(r.lastErrorAt),
      readings: r.readings,
      rejected: r.rejected,
    }));
  }

  #newRecord(name: string, kind: string, source: Source | null): SourceRecord {
    return {
      name,
      kind,
      source,
      state: 'idle',
      lastSuccessAt: null,
      lastError: null,
      lastErrorAt: null,
      readings: 0,
      rejected: 0,
      live: false,
    };
  }

  /** The record of `POST /api/ingest`, made on first use. */
  ingestRecord(): SourceRecord {
    let record = this.#records.get(INGEST_SOURCE);
    if (record === undefined) {
      record = this.#newRecord(INGEST_SOURCE, 'ingest', null);
      record.state = 'running';
      this.#records.set(INGEST_SOURCE, record);
    }
    return record;
  }

  #contextFor(record: SourceRecord): SourceContext {
    const logger = this.#logger.child({ source: record.name });
    return {
      emit: (batch) => {
        if (!record.live) return;
        try {
          this.#onBatch(record, batch);
        } catch (error) {
          // A bug here must not take the source down with it.
          this.#logger.error({ source: record.name, err: errorText(error) }, 'failed to apply a batch');
        }
      },
      reportError: (error) => {
        if (!record.live) return;
        this.recordError(record, error);
      },
      reject: (reason) => {
        if (!record.live) return;
        record.rejected += 1;
        this.#logger.warn({ source: record.name, error: reason }, 'reading rejected');
      },
      reportSuccess: () => {
        if (!record.live) return;
        record.state = 'running';
        record.lastSuccessAt = this.#now();
      },
      now: this.#now,
      logger,
    };
  }

  /** Marks `record` failing with `error`, logged. */
  recordError(record: SourceRecord, error: unknown): void {
    record.state = 'failing';
    record.lastError = errorText(error);
    record.lastErrorAt = this.#now();
    this.#logger.warn({ source: record.name, err: record.lastError }, 'source failed');
  }
}
