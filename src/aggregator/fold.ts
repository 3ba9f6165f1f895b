/**
 * The client side of the convergence contract: fold a topic's SNAPSHOT and the UPDATE/ALERT frames after it into
 * the same state the aggregator holds. Pure functions over immutable values, so the client SDK and the
 * dashboard can use them as they are, and the property test proves them against the aggregator.
 *
 * Rules: an UPDATE's `upserts` replace whole entities (new ids go last), then its `removes` delete ids; an ALERT,
 * or an UPDATE without `upserts`/`removes` (a raw pass-through publish), only advances `seq`; a frame at or below
 * the current `seq` is a duplicate and ignored; a frame from another epoch, or one that skips a `seq`, cannot be
 * applied: the client must resume or take a fresh snapshot.
 *
 * @module
 */
import type { EntityBase, TopicState } from '../protocol/topics.js';

/** A client's copy of one topic. */
export interface FoldedTopic {
  /** Entities by id, in the server's order. */
  readonly entities: ReadonlyMap<string, EntityBase>;
  readonly seq: number;
  readonly epoch: string | undefined;
}

/** The parts of a topic frame the fold reads (an UPDATE or ALERT as received). */
export interface TopicFrame {
  readonly type: string;
  readonly seq?: number;
  readonly epoch?: string;
  readonly data?: unknown;
}

/** Result of {@link applyFrame}: the new state, or why the frame cannot be applied. */
export type FoldResult =
  | { readonly ok: true; readonly state: FoldedTopic }
  | { readonly ok: false; readonly reason: 'gap' | 'epoch' | 'malformed' };

function isEntity(value: unknown): value is EntityBase {
  return typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string';
}

/** A client's state from a topic snapshot (`{ entities, seq, epoch }`). */
export function fromSnapshot(snapshot: TopicState): FoldedTopic {
  const entities = new Map<string, EntityBase>();
  for (const entity of snapshot.entities) entities.set(entity.id, entity);
  return { entities, seq: snapshot.seq, epoch: snapshot.epoch };
}

/** Applies one UPDATE or ALERT frame of the topic. Does not modify `state`. */
export function applyFrame(state: FoldedTopic, frame: TopicFrame): FoldResult {
  if (typeof frame.seq !== 'number') return { ok: false, reason: 'malformed' };
  if (state.epoch !== undefined && frame.epoch !== undefined && frame.epoch !== state.epoch) {
    return { ok: false, reason: 'epoch' };
  }
  // Before the first message a snapshot carries no epoch; the first frame tells it.
  const epoch = state.epoch ?? frame.epoch;
  if (frame.seq <= state.seq) return { ok: true, state };
  if (frame.seq !== state.seq + 1) return { ok: false, reason: 'gap' };
  if (frame.type === 'ALERT') return { ok: true, state: { entities: state.entities, seq: frame.seq, epoch } };
  if (frame.type !== 'UPDATE') return { ok: false, reason: 'malformed' };
  const data = frame.data as { upserts?: unknown; removes?: unknown } | null | undefined;
  if (
    typeof data !== 'object' ||
    data === null ||
    (data.upserts === undefined && data.removes === undefined)
  ) {
    // Not an entity change: a raw `/api/publish` pass-through on the topic. It takes a seq, changes no state.
    return { ok: true, state: { entities: state.entities, seq: frame.seq, epoch } };
  }
  const upserts = data.upserts ?? [];
  const removes = data.removes ?? [];
  if (!Array.isArray(upserts) || !upserts.every(isEntity)) return { ok: false, reason: 'malformed' };
  if (!Array.isArray(removes) || !removes.every((id) => typeof id === 'string'))
    return { ok: false, reason: 'malformed' };
  const entities = new Map(state.entities);
  for (const entity of upserts) entities.set(entity.id, entity);
  for (const id of removes as string[]) entities.delete(id);
  return { ok: true, state: { entities, seq: frame.seq, epoch } };
}

/** The folded state in snapshot shape, comparable with the aggregator's `getTopicSnapshot()`. */
export function toTopicState(state: FoldedTopic): TopicState {
  const entities = [...state.entities.values()];
  return state.epoch === undefined
    ? { entities, seq: state.seq }
    : { entities, seq: state.seq, epoch: state.epoch };
}
