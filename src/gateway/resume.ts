/**
 * Resume: a client continues topics from the positions it last saw. Missed frames are replayed from the broker's
 * history (marked `recovered: true`) when it still covers them, otherwise the topic gets a fresh SNAPSHOT (marked
 * `recovered: false`). A cluster broker answers later: live frames are held meanwhile, then deduplicated by `seq`.
 *
 * @module
 */
import type { StreamPosition } from '../protocol/messages.js';
import type { ClientSession } from './client-session.js';
import { isPromiseLike, type ServiceContext } from './service-context.js';
import type { Snapshots } from './snapshots.js';
import type { HistoryLookup } from './topic-log.js';

/** The resume side of the service; see the module comment. */
export class Resumer {
  readonly #ctx: ServiceContext;
  readonly #snapshots: Snapshots;

  constructor(ctx: ServiceContext, snapshots: Snapshots) {
    this.#ctx = ctx;
    this.#snapshots = snapshots;
  }

  /**
   * Continues `topics` from the client's positions: replays the missed frames (marked `recovered: true`) when history
   * covers them, otherwise sends a fresh per-topic SNAPSHOT (marked `recovered: false`). Runs synchronously against
   * the log, so no live frame can slip between the replay and the live stream.
   */
  resumeTopics(
    session: ClientSession,
    topics: readonly string[],
    positions: Record<string, StreamPosition>,
  ): void {
    const fallback: string[] = [];
    for (const topic of topics) {
      if (session.held?.has(topic)) session.releaseTopic(topic);
      const position = positions[topic];
      const lookup = position === undefined ? null : this.#ctx.broker.since(topic, position);
      // a cluster broker answers later; live frames are held meanwhile, then deduplicated by seq.
      if (isPromiseLike(lookup)) {
        session.holdTopic(topic);
        lookup.then(
          (result) => this.#finishResume(session, topic, (position as StreamPosition).seq, result),
          (error: unknown) => {
            this.#ctx.logger.warn({ err: error, clientId: session.id, topic }, 'history lookup failed');
            this.#finishResume(session, topic, 0, { covered: false, reason: 'expired' });
          },
        );
        continue;
      }
      if (lookup === null || !lookup.covered) {
        fallback.push(topic);
        continue;
      }
      for (const entry of lookup.entries) {
        this.#ctx.sender.send(session, this.#ctx.frames.recoveredFrame(entry));
      }
    }
    if (fallback.length > 0) this.#snapshots.sendTopicSnapshots(session, fallback, true);
  }

  /** Completes an asynchronous resume of one held topic: the replay then the held frames after it. */
  #finishResume(session: ClientSession, topic: string, fromSeq: number, lookup: HistoryLookup): void {
    if (session.state === 'closed' || !this.#ctx.index.has(session, topic) || !session.held?.has(topic))
      return;
    if (!lookup.covered) {
      this.#snapshots.sendTopicSnapshots(session, [topic], true);
      return;
    }
    let last = fromSeq;
    for (const entry of lookup.entries) {
      this.#ctx.sender.send(session, this.#ctx.frames.recoveredFrame(entry));
      last = entry.seq;
    }
    this.#ctx.sender.releaseHeld(session, topic, last);
  }
}
