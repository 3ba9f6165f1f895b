/**
 * The converged state of one topic: a snapshot folded with the UPDATEs after it, in `seq` order.
 *
 * Rules (the protocol's state model, `src/protocol/state-model.ts`): a snapshot at `seq` N followed by every UPDATE
 * after N reproduces the server's state; upserts replace whole entities, then removes delete ids. ALERTs on a topic
 * advance its `seq` and change its active alerts by the protocol's rule (`src/protocol/alert-state.ts`:
 * `applyAlert`), never its entities; a snapshot carries the alerts active as of its `seq`. A frame whose `seq` is
 * not the next one is either stale (ignored) or reveals a gap (the caller asks the server to recover). Frames that arrive before the first snapshot are held (bounded) and replayed onto it.
 *
 * @module
 */
import type { StreamPosition } from '../protocol/messages.js';
import type { EntityBase, EntityChange } from '../protocol/topics.js';
import {
  applyChange,
  isChangeShaped,
  isEntityId,
  parseUpdate,
  validateBase,
  type EntityValidator,
} from '../protocol/state-model.js';
import { activeAlertsFrom, applyAlert } from '../protocol/alert-state.js';
import { isRecord } from '../shared/json.js';

/** What happened to one sequenced frame. */
export type FoldResult =
  /** Applied (or, for an ALERT, accounted for). */
  | 'applied'
  /** Its `seq` is not newer than the state; ignored. */
  | 'stale'
  /** Held until the first snapshot arrives. */
  | 'held'
  /** Frames are missing before it (or it is from another epoch); not applied. */
  | 'gap';

/** A frame of a topic's stream as the store sees it. */
export interface SequencedFrame {
  readonly seq?: number | undefined;
  readonly epoch?: string | undefined;
  /** The entity change it carries; `null` for ALERTs and for UPDATEs whose data is not an entity change. */
  readonly change: EntityChange | null;
  /** Present for an ALERT: its `data`, folded into the active alerts (`applyAlert`). */
  readonly alert?: { readonly data: unknown } | undefined;
}

/** Most frames held while waiting for the first snapshot; older ones are dropped beyond it. */
export const MAX_HELD_FRAMES = 1000;

function isEntity(value: unknown): value is EntityBase {
  return isRecord(value) && isEntityId(value.id);
}

/**
 * Reads an UPDATE's `data` as an entity change of `topic`, by the protocol's one rule (`parseUpdate` in
 * `src/protocol/state-model.ts`): a valid change, normalised (each id once; removes after upserts). Anything else
 * is `null`, delivered but no state change: an opaque library message, or a change the rule refuses (a server
 * never sequences one). Entities are checked with `validate`, by default the base rule (`validateBase`): the server
 * has already checked the topic's schema, and the SDK carries no schema validator (it has no dependencies).
 */
export function toEntityChange(
  data: unknown,
  topic = '',
  validate: EntityValidator = validateBase,
): EntityChange | null {
  if (!isChangeShaped(data)) return null;
  const parsed = parseUpdate(topic, data, validate);
  return parsed.ok ? parsed.change : null;
}

/** A topic snapshot read from the wire: its entities and the position it reflects. */
export interface SnapshotContent {
  readonly entities: readonly EntityBase[];
  /** The active alerts' data, oldest first (absent: none). */
  readonly alerts?: readonly unknown[];
  readonly seq: number | undefined;
  readonly epoch: string | undefined;
}

/**
 * Reads a topic's snapshot `data`: a `TopicState` (`{entities, seq, epoch, alerts}`), a bare entity array, or an
 * object of id -> entity. The envelope's `seq`/`epoch` (per-topic SNAPSHOT) win over those inside `data`.
 */
export function toSnapshotContent(data: unknown, seq?: number, epoch?: string): SnapshotContent {
  let entities: EntityBase[] = [];
  let alerts: unknown[] = [];
  let innerSeq: number | undefined;
  let innerEpoch: string | undefined;
  if (Array.isArray(data)) {
    entities = data.filter(isEntity);
  } else if (isRecord(data)) {
    if (Array.isArray(data.entities)) {
      entities = data.entities.filter(isEntity);
      if (typeof data.seq === 'number') innerSeq = data.seq;
      if (typeof data.epoch === 'string') innerEpoch = data.epoch;
      if (Array.isArray(data.alerts)) alerts = data.alerts;
    } else {
      entities = Object.values(data).filter(isEntity);
    }
  }
  return { entities, alerts, seq: seq ?? innerSeq, epoch: epoch ?? innerEpoch };
}

/** The state of one topic. */
export class TopicStore<E extends EntityBase = EntityBase> {
  /** id -> entity; replaced in place, read through {@link TopicStore.entities}. */
  readonly #entities = new Map<string, E>();
  /** Active alerts, id -> ALERT data, oldest first (`applyAlert`). */
  #alerts = new Map<string, unknown>();
  #seq: number | undefined;
  #epoch: string | undefined;
  #held: SequencedFrame[] = [];

  /** The entities, by id. The map is live: it changes as frames are folded in. */
  get entities(): ReadonlyMap<string, E> {
    return this.#entities;
  }

  /**
   * The active alerts' data, oldest first, as of {@link TopicStore.seq} (the protocol's `applyAlert` rule). Live,
   * like {@link TopicStore.entities}.
   */
  get alerts(): ReadonlyMap<string, unknown> {
    return this.#alerts;
  }

  /** `seq` of the last frame folded in; `undefined` until the first snapshot. */
  get seq(): number | undefined {
    return this.#seq;
  }

  /** Epoch of {@link TopicStore.seq}, when the server sends epochs. */
  get epoch(): string | undefined {
    return this.#epoch;
  }

  /** Whether a snapshot has been applied. */
  get hasBaseline(): boolean {
    return this.#seq !== undefined;
  }

  /** The position to resume from: known only when the server sent an epoch. */
  get position(): StreamPosition | undefined {
    return this.#seq !== undefined && this.#epoch !== undefined && this.#epoch !== ''
      ? { epoch: this.#epoch, seq: this.#seq }
      : undefined;
  }

  /**
   * Replaces the state with a snapshot, then replays held frames that follow it. A snapshot older than the
   * state within the same epoch is ignored (returns `false`). A snapshot without `seq` counts as `seq` 0.
   */
  applySnapshot(snapshot: SnapshotContent): boolean {
    const seq = snapshot.seq ?? 0;
    if (
      this.#seq !== undefined &&
      snapshot.epoch !== undefined &&
      snapshot.epoch === this.#epoch &&
      seq < this.#seq
    ) {
      return false;
    }
    this.#entities.clear();
    for (const entity of snapshot.entities) this.#entities.set(entity.id, entity as E);
    this.#alerts = activeAlertsFrom(snapshot.alerts);
    this.#seq = seq;
    this.#epoch = snapshot.epoch ?? this.#epoch;
    const held = this.#held.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    this.#held = [];
    for (const frame of held) {
      if (this.fold(frame) === 'gap') break;
    }
    return true;
  }

  /**
   * Folds one UPDATE/ALERT frame in (see {@link FoldResult}). Frames without `seq` are applied unordered (their
   * entity change only: an ALERT outside the stream never becomes active).
   */
  fold(frame: SequencedFrame): FoldResult {
    if (frame.seq === undefined) {
      // Not part of the topic's stream (a broadcast): a change applies unordered, an ALERT is transient.
      this.#apply({ change: frame.change });
      return 'applied';
    }
    if (this.#seq === undefined) {
      this.#held.push(frame);
      if (this.#held.length > MAX_HELD_FRAMES) this.#held.shift();
      return 'held';
    }
    if (frame.epoch !== undefined && this.#epoch !== undefined && frame.epoch !== this.#epoch) return 'gap';
    if (frame.seq <= this.#seq) return 'stale';
    if (frame.seq !== this.#seq + 1) return 'gap';
    this.#seq = frame.seq;
    if (frame.epoch !== undefined) this.#epoch = frame.epoch;
    this.#apply(frame);
    return 'applied';
  }

  /** Forgets everything (used when the topic is unsubscribed). */
  reset(): void {
    this.#entities.clear();
    this.#alerts = new Map();
    this.#seq = undefined;
    this.#epoch = undefined;
    this.#held = [];
  }

  #apply(frame: SequencedFrame): void {
    if (frame.alert !== undefined) applyAlert(this.#alerts, frame.alert.data);
    const change = frame.change;
    if (change === null) return;
    // The protocol's fold, the same the server applies: upserts, then removes.
    applyChange(this.#entities, change as EntityChange<E>);
  }
}
