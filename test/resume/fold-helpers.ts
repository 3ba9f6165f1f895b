/**
 * Helpers of the resume tests: a strict fold of one topic (any gap, duplicate or foreign epoch fails the test) and
 * entity makers for driving the aggregator.
 */
import assert from 'node:assert/strict';
import { applyFrame, fromSnapshot, type FoldedTopic } from '../../src/aggregator/fold.js';
import type { ServerMessage } from '../../src/protocol/messages.js';
import type { TopicState } from '../../src/protocol/topics.js';

/** A valid camera whose content changes with `n` (so every ingest is a change). */
export function camera(id: string, n: number): Record<string, unknown> {
  return {
    id,
    name: `Camera ${id} #${n}`,
    location: { lat: 52.37, lon: 4.89 },
    status: 'online',
    updatedAt: '2026-03-01T12:00:00.000Z',
  };
}

/** A client's copy of one topic, folded strictly: the next frame must carry exactly `seq + 1`. */
export class StrictFold {
  state: FoldedTopic | null = null;
  /** Seqs of the UPDATE/ALERT frames applied, in order. */
  readonly seqs: number[] = [];

  constructor(readonly topic: string) {}

  /** Takes a topic snapshot (`{entities, seq, epoch}`), replacing the state. */
  snapshot(state: unknown): void {
    this.state = fromSnapshot(state as TopicState);
  }

  /** Applies one UPDATE/ALERT frame of the topic; fails on a gap, a duplicate or another epoch. */
  apply(frame: ServerMessage): void {
    assert.ok(this.state !== null, 'a frame before any snapshot');
    const seq = (frame as { seq?: number }).seq;
    assert.equal(seq, this.state.seq + 1, `frame seq ${seq} after ${this.state.seq} (gap or duplicate)`);
    const result = applyFrame(this.state, frame as Parameters<typeof applyFrame>[1]);
    assert.ok(result.ok, `frame ${seq} could not be applied: ${result.ok ? '' : result.reason}`);
    this.state = result.state;
    this.seqs.push(seq as number);
  }

  /** The folded state as a comparable value: entities by id, seq and epoch. */
  comparable(): { entities: Record<string, unknown>; seq: number; epoch: string | undefined } {
    assert.ok(this.state !== null);
    return {
      entities: Object.fromEntries(this.state.entities),
      seq: this.state.seq,
      epoch: this.state.epoch,
    };
  }
}

/** A server topic state as a comparable value (see {@link StrictFold.comparable}). */
export function comparableState(state: TopicState): {
  entities: Record<string, unknown>;
  seq: number;
  epoch: string | undefined;
} {
  return {
    entities: Object.fromEntries(state.entities.map((e) => [e.id, e])),
    seq: state.seq,
    epoch: state.epoch,
  };
}
