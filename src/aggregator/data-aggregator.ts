/**
 * The data aggregator: validates what the sources report, keeps each topic's live state as a keyed collection of
 * entities and publishes the changes. Running the sources (start, stop, their status) is `source-runner.ts`.
 *
 * Guarantees (the client-side convergence contract of `src/protocol/topics.ts`):
 * - an UPDATE `{ upserts, removes }` is published only when the state changed, and carries exactly the change;
 * - a topic's snapshot `{ entities, seq, epoch, alerts }` reflects every message up to `seq` and none after, so a
 *   snapshot followed by every later UPDATE and ALERT (see `fold.ts`) reproduces the state;
 * - the active alerts of a topic fold every sequenced ALERT on it by the protocol's rule (`applyAlert`): the rules'
 *   own and those others publish (`POST /api/publish`, the library's `publish` / `broadcastToTopic`);
 * - entities no source has reported for the topic's TTL are removed (with a `removes` entry);
 * - a malformed reading is logged and counted against its source, never published, and never stops the source.
 *
 * @module
 */
import type { StreamPosition, WebSocketMessage } from '../protocol/messages.js';
import { silentLogger } from '../shared/logger.js';
import type { Logger } from '../shared/logger.js';
import type { AlertPayload, CityAlert, EntityBase, EntityChange, TopicState } from '../protocol/topics.js';
import { applyAlert } from '../protocol/alert-state.js';
import type { StateEvent } from '../gateway/websocket-service.js';
import { AlertEngine, BUILTIN_RULES_OFF } from './alerts.js';
import type { AlertRulesOptions } from './alerts.js';
import { jsonEqual } from './equal.js';
import { validateEntity } from './schema.js';
import { isEntityId, type ValidationResult } from '../protocol/state-model.js';
import { resolveTopicRegistry, type TopicRegistry } from '../protocol/topic-registry.js';
import type { Source, SourceBatch, SourceStatus } from './source.js';
import { INGEST_SOURCE, SourceRunner, errorText, type SourceRecord } from './source-runner.js';

/** What the aggregator publishes through (`WebSocketService` implements it). */
export interface TopicPublisher {
  /**
   * Sends `message` to the topic's subscribers and returns the position (`seq`, `epoch`) it was given: at once on
   * a single node, as a Promise in cluster mode (where it may reject while Redis is unreachable).
   */
  publish(topic: string, message: WebSocketMessage): StreamPosition | Promise<StreamPosition>;
  /**
   * Tells `listener` of every valid state change and every ALERT published through this publisher by anyone (the
   * library's `publish` / `broadcastToTopic`), once it has its position; returns the function that stops it.
   * Optional: a publisher without it only carries the aggregator's own changes.
   */
  onChange?(
    listener: (topic: string, event: StateEvent, position: StreamPosition, message: WebSocketMessage) => void,
  ): () => void;
  /**
   * The topic's current position. Optional: with it, a topic nothing was published on yet carries the epoch its
   * stream will use in every snapshot (an empty epoch, a cluster topic never published, is left out).
   */
  position?(topic: string): StreamPosition;
}

export { INGEST_SOURCE };

/** Options of {@link DataAggregator}. */
export interface DataAggregatorOptions {
  /**
   * The topics served, with their schemas, TTLs and id fields (`src/protocol/topic-registry.ts`). Default: a
   * registry of `topics`.
   */
  readonly registry?: TopicRegistry;
  /**
   * Topics served when no `registry` is given: catalog topics by name, other names with the base schema only.
   * Default: the four city topics.
   */
  readonly topics?: readonly string[];
  /** Sources to run. Default: none (the server passes the simulator when no config is given). */
  readonly sources?: readonly Source[];
  /** Clock (ms since the epoch). Default `Date.now`. */
  readonly now?: () => number;
  readonly logger?: Logger;
  /**
   * Time-to-live per topic (ms) of an entity no source reports any more; `0` or `Infinity` keeps entities forever.
   * Overrides the topic definition's `ttlMs` (the default).
   */
  readonly ttlMs?: Partial<Record<string, number>>;
  /** How often TTLs and time-based alert rules are checked (ms). Default 1000. */
  readonly sweepIntervalMs?: number;
  /**
   * The built-in alert rules of the city topics; `false` turns all of them off. Default: every rule with its
   * defaults. The threshold rules of the registry's topics (their `alerts`) run either way.
   */
  readonly alerts?: AlertRulesOptions | false;
}

/** Result of {@link DataAggregator.ingest}. `field` names the bad field, e.g. `entities[2].location.lat`. */
export type IngestResult = { ok: true; seq: number } | { ok: false; error: string; field?: string };

/**
 * Result of {@link DataAggregator.publishUpdate}: the position the UPDATE took (a Promise in cluster mode, which may
 * reject while the store is unreachable), or the first bad field of a refused one (a path inside `data`).
 */
export type PublishUpdateResult =
  | { readonly ok: true; readonly position: StreamPosition | Promise<StreamPosition> }
  | { readonly ok: false; readonly field: string; readonly error: string };

/** Lifecycle of the aggregator. */
type AggregatorState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

interface StoredEntity {
  entity: EntityBase;
  /** When a source last reported it (ms), changed or not; drives the TTL. */
  seenAt: number;
}

interface TopicSlot {
  readonly name: string;
  readonly entities: Map<string, StoredEntity>;
  /** Active alerts, id -> ALERT data, oldest first (`applyAlert`). */
  readonly alerts: Map<string, unknown>;
  readonly ttlMs: number;
  seq: number;
  epoch: string | undefined;
  /** Cached snapshot, rebuilt after a change. */
  view: TopicState | null;
}

interface PendingChange {
  readonly upserts: Map<string, EntityBase>;
  readonly removes: Set<string>;
}

/** Keeps the live state of every topic and publishes its changes. */
export class DataAggregator {
  private readonly slots = new Map<string, TopicSlot>();
  /** The topics served: schemas (validators), TTLs, id fields. */
  readonly registry: TopicRegistry;
  /** Runs the sources; their batches come back to `handleBatch`. */
  private readonly runner: SourceRunner;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly sweepIntervalMs: number;
  private readonly alertEngine: AlertEngine | null;
  private publisher: TopicPublisher | null = null;
  /** Stops the publisher's change listener (see `attach`). */
  private offChange: (() => void) | null = null;
  /** The messages this aggregator published (it applies its own changes itself; the change listener skips them). */
  private readonly ownMessages = new WeakSet<WebSocketMessage>();
  private snapshotView: Record<string, TopicState> | null = null;
  private state: AggregatorState = 'idle';
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(options: DataAggregatorOptions = {}) {
    this.now = options.now ?? Date.now;
    this.logger = (options.logger ?? silentLogger).child({ component: 'aggregator' });
    this.sweepIntervalMs = Math.max(10, options.sweepIntervalMs ?? 1000);
    this.registry = options.registry ?? resolveTopicRegistry(options.topics);
    // Threshold rules are part of each topic's definition; `alerts: false` turns off the built-in rules only.
    const registry = this.registry;
    const thresholdRules = (topic: string) => registry.definition(topic)?.alerts ?? [];
    const hasThresholds = registry.names.some((name) => thresholdRules(name).length > 0);
    this.alertEngine =
      options.alerts === false && !hasThresholds
        ? null
        : new AlertEngine(
            options.alerts === false ? BUILTIN_RULES_OFF : (options.alerts ?? {}),
            this.now,
            thresholdRules,
          );
    for (const name of this.registry.names) {
      const ttl = options.ttlMs?.[name] ?? this.registry.definition(name)?.ttlMs ?? 0;
      this.slots.set(name, {
        name,
        entities: new Map(),
        alerts: new Map(),
        ttlMs: ttl > 0 && Number.isFinite(ttl) ? ttl : 0,
        seq: 0,
        epoch: undefined,
        view: null,
      });
    }
    this.runner = new SourceRunner(options.sources ?? [], {
      now: this.now,
      logger: this.logger,
      hasTopic: (topic) => this.slots.has(topic),
      onBatch: (record, batch) => this.handleBatch(record, batch),
    });
  }

  /** The topics served, in order. */
  get topics(): readonly string[] {
    return [...this.slots.keys()];
  }

  /** Sets where UPDATEs and ALERTs go. Before this, state changes but nothing is published and `seq` stays 0. */
  attach(publisher: TopicPublisher): void {
    this.offChange?.();
    this.publisher = publisher;
    for (const slot of this.slots.values()) {
      const epoch = slot.epoch === undefined ? publisher.position?.(slot.name).epoch : undefined;
      if (epoch !== undefined && epoch !== '') {
        slot.epoch = epoch;
        this.invalidate(slot);
      }
    }
    // Changes others publish (the library API) fold into this state too; our own are applied where they are made.
    this.offChange =
      publisher.onChange?.((topic, event, position, message) => {
        if (this.ownMessages.has(message)) return;
        const slot = this.slots.get(topic);
        if (slot === undefined) return;
        if (event.type === 'ALERT') {
          if (applyAlert(slot.alerts, event.data)) this.invalidate(slot);
          if (position.epoch !== slot.epoch || position.seq > slot.seq) this.recordPosition(slot, position);
          return;
        }
        const alerts = this.applyPublished(slot, event.change);
        if (position.epoch !== slot.epoch || position.seq > slot.seq) this.recordPosition(slot, position);
        this.publishAlerts(alerts);
      }) ?? null;
  }

  /**
   * Every topic's state `{ entities, seq, epoch, alerts }`. Returns the same object while nothing changed, so callers
   * may cache work (such as its encoding) by identity. Do not mutate it.
   */
  getSnapshot(): Record<string, TopicState> {
    if (this.snapshotView === null) {
      const view: Record<string, TopicState> = {};
      for (const name of this.slots.keys()) view[name] = this.getTopicSnapshot(name);
      this.snapshotView = Object.freeze(view) as Record<string, TopicState>;
    }
    return this.snapshotView;
  }

  /** One topic's state (an empty state at seq 0 for a topic not served). Same object while it is unchanged. */
  getTopicSnapshot(topic: string): TopicState {
    const slot = this.slots.get(topic);
    if (slot === undefined) return { entities: [], seq: 0, alerts: [] };
    if (slot.view === null) {
      const entities = Object.freeze([...slot.entities.values()].map((s) => s.entity));
      const alerts = Object.freeze([...slot.alerts.values()] as AlertPayload[]);
      slot.view = Object.freeze(
        slot.epoch === undefined
          ? { entities, seq: slot.seq, alerts }
          : { entities, seq: slot.seq, epoch: slot.epoch, alerts },
      );
    }
    return slot.view;
  }

  /**
   * Alerts currently raised by the alert rules (`GET /api/alerts`). The topics' active alerts, published ones
   * included, are each topic's snapshot `alerts`.
   */
  activeAlerts(): CityAlert[] {
    return this.alertEngine?.activeAlerts() ?? [];
  }

  /**
   * Starts every source and the TTL sweep. Does not wait for any source's first fetch. A source whose `start`
   * throws is marked failing; the others run. Calling it again is a no-op.
   */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'starting';
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepIntervalMs);
    await this.runner.start();
    if (this.state === 'starting') this.state = 'running';
  }

  /** Stops every source and clears every timer. Idempotent; concurrent calls share one stop. */
  stop(): Promise<void> {
    if (this.stopping !== null) return this.stopping;
    this.state = 'stopping';
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.stopping = (async () => {
      await this.runner.stop();
      this.state = 'stopped';
    })();
    return this.stopping;
  }

  /** True once `start()` has started every source (and until `stop()`). */
  isReady(): boolean {
    return this.state === 'running';
  }

  /** Health of every source (and of `ingest` once it was used). */
  sourceStatus(): SourceStatus[] {
    return this.runner.status();
  }

  /**
   * Entities pushed by another system (`POST /api/ingest`). All or nothing: when any entity or id is invalid,
   * nothing is applied and the error names the first bad field. Entities without `source` are attributed to
   * `ingest`; without `updatedAt`, to now. Returns the topic's `seq` after the change (unchanged when the
   * entities were identical to the current ones).
   */
  ingest(topic: string, upserts: readonly unknown[], removes: readonly string[] = []): IngestResult {
    const slot = this.slots.get(topic);
    if (slot === undefined) return { ok: false, error: `unknown topic "${topic}"`, field: 'topic' };
    if (!Array.isArray(upserts)) return { ok: false, error: 'entities: must be an array', field: 'entities' };
    if (!Array.isArray(removes))
      return { ok: false, error: 'removes: must be an array of ids', field: 'removes' };
    const now = this.now();
    const valid: EntityBase[] = [];
    for (const [i, raw] of upserts.entries()) {
      const result = this.readEntity(slot, raw, INGEST_SOURCE, now);
      if (!result.ok) {
        const field = result.field === '' ? `entities[${i}]` : `entities[${i}].${result.field}`;
        this.runner.ingestRecord().rejected += 1;
        return { ok: false, error: `${field}: ${result.error}`, field };
      }
      valid.push(result.entity);
    }
    for (const [i, id] of removes.entries()) {
      if (!isEntityId(id)) {
        return { ok: false, error: `removes[${i}]: must be a non-empty string`, field: `removes[${i}]` };
      }
    }
    const record = this.runner.ingestRecord();
    record.readings += valid.length;
    record.lastSuccessAt = now;
    this.apply(slot, valid, removes, now);
    return { ok: true, seq: slot.seq };
  }

  /**
   * A published UPDATE (`POST /api/publish`): `data` must be a valid change of the topic's state by the protocol's
   * rule (`parseUpdate`: all or nothing, whole entities, no defaults filled). It is applied to the state exactly as
   * every client folds it and published as given (normalised), so it always takes a `seq`, even when it changes
   * nothing. A refused one changes nothing and takes no `seq`.
   * @throws what the publisher throws synchronously (nothing is applied then).
   */
  publishUpdate(topic: string, data: unknown): PublishUpdateResult {
    const slot = this.slots.get(topic);
    if (slot === undefined) return { ok: false, field: 'topic', error: `unknown topic "${topic}"` };
    const parsed = this.registry.parseUpdate(topic, data);
    if (!parsed.ok) return parsed;
    const change = parsed.change;
    const message: WebSocketMessage = {
      type: 'UPDATE',
      topic,
      data: change,
      timestamp: new Date(this.now()).toISOString(),
    };
    const position =
      this.publisher === null
        ? { epoch: slot.epoch ?? '', seq: slot.seq }
        : this.publishOwn(this.publisher, topic, message);
    const alerts = this.applyPublished(slot, change);
    if (position instanceof Promise) {
      position.then(
        (p) => {
          if (p.epoch !== slot.epoch || p.seq > slot.seq) this.recordPosition(slot, p);
        },
        () => {}, // the caller answers the failure
      );
    } else if (this.publisher !== null) {
      this.recordPosition(slot, position);
    }
    this.publishAlerts(alerts);
    return { ok: true, position };
  }

  /**
   * Folds a published (already validated, normalised) change into the state, as every client folds it. Returns the
   * ALERTs the change raises, for the caller to publish after the change itself.
   */
  private applyPublished(slot: TopicSlot, change: EntityChange): readonly CityAlert[] {
    const now = this.now();
    const removed: string[] = [];
    for (const entity of change.upserts) slot.entities.set(entity.id, { entity, seenAt: now });
    for (const id of change.removes) if (slot.entities.delete(id)) removed.push(id);
    this.invalidate(slot);
    return this.alertEngine === null ? [] : this.alertEngine.onChange(slot.name, change.upserts, removed);
  }

  /** Publishes `message` marked as this aggregator's own (the publisher's change listener then skips it). */
  private publishOwn(
    publisher: TopicPublisher,
    topic: string,
    message: WebSocketMessage,
  ): StreamPosition | Promise<StreamPosition> {
    this.ownMessages.add(message);
    return publisher.publish(topic, message);
  }

  /**
   * Removes entities past their topic's TTL and runs the time-based alert rules. Runs on a timer while started;
   * exposed so tests with an injected clock can drive it.
   */
  sweep(): void {
    const now = this.now();
    for (const slot of this.slots.values()) {
      if (slot.ttlMs === 0) continue;
      const expired: string[] = [];
      for (const [id, stored] of slot.entities) if (now - stored.seenAt >= slot.ttlMs) expired.push(id);
      if (expired.length > 0) this.apply(slot, [], expired, now);
    }
    if (this.alertEngine !== null) this.publishAlerts(this.alertEngine.tick());
  }

  // ---------------------------------------------------------------------------------------------------------
  // Internals
  // ---------------------------------------------------------------------------------------------------------

  private handleBatch(record: SourceRecord, batch: SourceBatch): void {
    const now = this.now();
    record.state = 'running';
    record.lastSuccessAt = now;
    const slot = this.slots.get(batch.topic);
    if (slot === undefined) {
      record.rejected += batch.upserts?.length ?? 0;
      this.logger.warn({ source: record.name, topic: batch.topic }, 'batch for an unknown topic dropped');
      return;
    }
    const valid: EntityBase[] = [];
    const mentioned = new Set<string>();
    let firstRejection: { id: string | undefined; field: string; error: string } | null = null;
    let rejected = 0;
    for (const raw of batch.upserts ?? []) {
      const result = this.readEntity(slot, raw, record.name, now);
      if (result.ok) {
        valid.push(result.entity);
        mentioned.add(result.entity.id);
        continue;
      }
      rejected += 1;
      const id = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
      // A rejected reading of a known entity keeps the entity (it is not "unreported").
      if (typeof id === 'string') mentioned.add(id);
      firstRejection ??= {
        id: typeof id === 'string' ? id : undefined,
        field: result.field,
        error: result.error,
      };
    }
    if (firstRejection !== null) {
      // One line per batch, naming the first bad reading, so a broken feed cannot flood the log.
      record.rejected += rejected;
      this.logger.warn(
        { source: record.name, topic: slot.name, rejected, first: firstRejection },
        'readings rejected',
      );
    }
    record.readings += valid.length;
    const removes = (batch.removes ?? []).filter((id): id is string => typeof id === 'string');
    if (batch.complete === true) {
      for (const id of batch.retained ?? []) if (typeof id === 'string') mentioned.add(id);
      for (const [id, stored] of slot.entities) {
        if (stored.entity.source === record.name && !mentioned.has(id)) removes.push(id);
      }
    }
    this.apply(slot, valid, removes, now);
    if (batch.alerts !== undefined && this.alertEngine !== null) {
      this.publishAlerts(
        this.alertEngine.onExternalAlerts(record.name, batch.alerts, batch.complete === true, slot.name),
      );
    }
  }

  /**
   * Validates one reported entity (defaults filled: `source`, `updatedAt`, the id field). A record that carries no
   * `updatedAt` of its own and equals the stored entity in every other field is the stored entity: its content did
   * not change, so its time stays that of the last change and nothing is published for it (stamping "now" would
   * republish every record of a time-less feed on every poll). Its TTL is refreshed all the same.
   */
  private readEntity(slot: TopicSlot, raw: unknown, source: string, now: number): ValidationResult {
    const result = validateEntity(this.registry, slot.name, raw, { source, now });
    if (!result.ok || (raw as { updatedAt?: unknown }).updatedAt !== undefined) return result;
    const stored = slot.entities.get(result.entity.id)?.entity;
    if (stored === undefined || !jsonEqual({ ...result.entity, updatedAt: stored.updatedAt }, stored))
      return result;
    return { ok: true, entity: stored };
  }

  /**
   * Applies validated upserts, then removes, to a topic; publishes one UPDATE when anything changed and feeds the
   * alert rules. Unchanged entities only refresh their TTL.
   */
  private apply(
    slot: TopicSlot,
    upserts: readonly EntityBase[],
    removes: readonly string[],
    now: number,
  ): void {
    const change: PendingChange = { upserts: new Map(), removes: new Set() };
    for (const entity of upserts) {
      const stored = slot.entities.get(entity.id);
      if (stored !== undefined && jsonEqual(stored.entity, entity)) {
        stored.seenAt = now;
        continue;
      }
      slot.entities.set(entity.id, { entity, seenAt: now });
      change.upserts.set(entity.id, entity);
    }
    for (const id of removes) {
      if (!slot.entities.delete(id)) continue;
      change.upserts.delete(id);
      change.removes.add(id);
    }
    if (change.upserts.size === 0 && change.removes.size === 0) return;
    this.commit(slot, { upserts: [...change.upserts.values()], removes: [...change.removes] });
  }

  private commit(slot: TopicSlot, change: EntityChange): void {
    this.invalidate(slot);
    this.publishTo(slot, {
      type: 'UPDATE',
      topic: slot.name,
      data: change,
      timestamp: new Date(this.now()).toISOString(),
    });
    if (this.alertEngine !== null)
      this.publishAlerts(this.alertEngine.onChange(slot.name, change.upserts, change.removes));
  }

  private publishAlerts(alerts: readonly CityAlert[]): void {
    for (const alert of alerts) {
      this.logger.info({ alert: alert.id, rule: alert.rule, state: alert.state }, alert.message);
      const slot = this.slots.get(alert.topic);
      if (slot === undefined) continue;
      this.publishTo(slot, {
        type: 'ALERT',
        topic: slot.name,
        data: alert,
        timestamp: new Date(this.now()).toISOString(),
      });
    }
  }

  /**
   * Publishes on a topic and records the position it got, so the snapshot's `seq` covers the message. An ALERT
   * that took its position folds into the topic's active alerts in the same turn.
   */
  private publishTo(slot: TopicSlot, message: WebSocketMessage): void {
    if (this.publisher === null) return;
    let position: StreamPosition | Promise<StreamPosition>;
    try {
      position = this.publishOwn(this.publisher, slot.name, message);
    } catch (error) {
      this.logger.error({ topic: slot.name, err: errorText(error) }, 'publish failed');
      return;
    }
    if (message.type === 'ALERT' && applyAlert(slot.alerts, message.data)) this.invalidate(slot);
    // In cluster mode the position comes back later; keep the newest one.
    if (position instanceof Promise) {
      position.then(
        (p) => {
          if (p.epoch !== slot.epoch || p.seq > slot.seq) this.recordPosition(slot, p);
        },
        (error: unknown) => this.logger.error({ topic: slot.name, err: errorText(error) }, 'publish failed'),
      );
      return;
    }
    this.recordPosition(slot, position);
  }

  private recordPosition(slot: TopicSlot, position: StreamPosition): void {
    if (position.seq !== slot.seq || position.epoch !== slot.epoch) {
      slot.seq = position.seq;
      slot.epoch = position.epoch;
      this.invalidate(slot);
    }
  }

  private invalidate(slot: TopicSlot): void {
    slot.view = null;
    this.snapshotView = null;
  }
}
