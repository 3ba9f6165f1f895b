/**
 * The client side of the convergence contract: fold a topic's SNAPSHOT and the UPDATE/ALERT frames after it into
 * the same state the aggregator holds. Pure functions over immutable values, so the client SDK and the
 * dashboard can use them as they are, and the property test proves them against the aggregator.
 *
 * Rules: an UPDATE's change is read and applied by the protocol's state model (`src/protocol/state-model.ts`:
 * whole-entity upserts, then removes; all or nothing); an ALERT changes the topic's active alerts by the protocol's
 * rule (`src/protocol/alert-state.ts`: `applyAlert`); an UPDATE without `upserts`/`removes` (an opaque library
 * message) only advances `seq`; an UPDATE whose change the rule refuses is `malformed`; a frame at or below
 * the current `seq` is a duplicate and ignored; a frame from another epoch, or one that skips a `seq`, cannot be
 * applied: the client must resume or take a fresh snapshot.
 *
 * @module
 */
import type { AlertPayload, EntityBase, TopicState } from '../protocol/topics.js';
import { applyChange, isChangeShaped, parseUpdate, validateBase } from '../protocol/state-model.js';
import type { EntityValidator } from '../protocol/state-model.js';
import { activeAlertsFrom, applyAlert } from '../protocol/alert-state.js';

/** A client's copy of one topic. */
export interface FoldedTopic {
  /** Entities by id, in the server's order. */
  readonly entities: ReadonlyMap<string, EntityBase>;
  /** Active alerts by id, oldest first (`applyAlert`). */
  readonly alerts: ReadonlyMap<string, unknown>;
  readonly seq: number;
  readonly epoch: string | undefined;
}

/** The parts of a topic frame the fold reads (an UPDATE or ALERT as received). */
export interface TopicFrame {
  readonly type: string;
  /** The topic whose entity schema the change is checked against (the generic one when absent). */
  readonly topic?: string;
  readonly seq?: number;
  readonly epoch?: string;
  readonly data?: unknown;
}

/** Result of {@link applyFrame}: the new state, or why the frame cannot be applied. */
export type FoldResult =
  | { readonly ok: true; readonly state: FoldedTopic }
  | { readonly ok: false; readonly reason: 'gap' | 'epoch' | 'malformed' };

/** A client's state from a topic snapshot (`{ entities, seq, epoch, alerts }`). */
export function fromSnapshot(snapshot: TopicState): FoldedTopic {
  const entities = new Map<string, EntityBase>();
  for (const entity of snapshot.entities) entities.set(entity.id, entity);
  return { entities, alerts: activeAlertsFrom(snapshot.alerts), seq: snapshot.seq, epoch: snapshot.epoch };
}

/**
 * Applies one UPDATE or ALERT frame of the topic. Does not modify `state`. Entities are checked with `validate`
 * (default: the base rule; the server that sequenced the frame has checked the topic's schema).
 */
export function applyFrame(
  state: FoldedTopic,
  frame: TopicFrame,
  validate: EntityValidator = validateBase,
): FoldResult {
  if (typeof frame.seq !== 'number') return { ok: false, reason: 'malformed' };
  if (state.epoch !== undefined && frame.epoch !== undefined && frame.epoch !== state.epoch) {
    return { ok: false, reason: 'epoch' };
  }
  // Before the first message a snapshot carries no epoch; the first frame tells it.
  const epoch = state.epoch ?? frame.epoch;
  if (frame.seq <= state.seq) return { ok: true, state };
  if (frame.seq !== state.seq + 1) return { ok: false, reason: 'gap' };
  if (frame.type === 'ALERT') {
    const alerts = new Map(state.alerts);
    applyAlert(alerts, frame.data);
    return { ok: true, state: { entities: state.entities, alerts, seq: frame.seq, epoch } };
  }
  if (frame.type !== 'UPDATE') return { ok: false, reason: 'malformed' };
  if (!isChangeShaped(frame.data)) {
    // Not an entity change: an opaque library message on the topic. It takes a seq, changes no state.
    return { ok: true, state: { ...state, seq: frame.seq, epoch } };
  }
  const parsed = parseUpdate(frame.topic ?? '', frame.data, validate);
  if (!parsed.ok) return { ok: false, reason: 'malformed' };
  const entities = new Map(state.entities);
  applyChange(entities, parsed.change);
  return { ok: true, state: { entities, alerts: state.alerts, seq: frame.seq, epoch } };
}

/** The folded state in snapshot shape, comparable with the aggregator's `getTopicSnapshot()`. */
export function toTopicState(state: FoldedTopic): TopicState {
  const entities = [...state.entities.values()];
  const alerts = [...state.alerts.values()] as AlertPayload[];
  return state.epoch === undefined
    ? { entities, seq: state.seq, alerts }
    : { entities, seq: state.seq, epoch: state.epoch, alerts };
}
