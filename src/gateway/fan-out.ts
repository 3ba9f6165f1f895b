/**
 * Fan-out of the gateway: one encoded message framed once and queued to every subscriber of its topic (held for
 * those waiting for a snapshot), broadcasts to every local session, and the slow-consumer policy: a client that
 * falls behind has its queued UPDATEs conflated (ALERTs are never dropped) and gets one fresh SNAPSHOT per topic
 * once it drains; one past the queue bound is closed.
 *
 * @module
 */
import { CloseCode } from '../protocol/messages.js';
import type { ClientSession } from './client-session.js';
import { encodeTextFrame } from './frame.js';
import type { ServiceContext } from './service-context.js';
import type { Snapshots } from './snapshots.js';

/** The fan-out side of the service; see the module comment. */
export class FanOut {
  readonly #ctx: ServiceContext;
  readonly #snapshots: Snapshots;
  /** UPDATE frames -> their topic: what a backlog may drop (set once per publish, not per client). */
  readonly #conflatable = new WeakMap<Buffer, string>();

  constructor(ctx: ServiceContext, snapshots: Snapshots) {
    this.#ctx = ctx;
    this.#snapshots = snapshots;
  }

  /** Local fan-out of one encoded frame (the broker's `deliver`): encode once, hold or queue per member. */
  fanOut(topic: string, seq: number, json: string): void {
    const members = this.#ctx.index.membersOf(topic);
    if (members === undefined) return;
    const metrics = this.#ctx.metrics;
    const startedAt = metrics?.publishStarted() ?? 0;
    const frame = encodeTextFrame(json);
    // UPDATEs may be conflated for a client that falls behind; ALERTs never are.
    const conflatable = json.startsWith('{"type":"UPDATE"');
    if (conflatable) this.#conflatable.set(frame, topic);
    let sent = 0;
    for (const session of members) {
      const held = session.held?.get(topic);
      if (held !== undefined) held.push({ seq, frame });
      else if (!(conflatable && session.stale?.has(topic) === true)) {
        this.#ctx.sender.send(session, frame);
        sent++;
      }
    }
    if (metrics !== undefined) {
      metrics.messagesOut(frameType(json), topic, sent, frame.length);
      metrics.publishFinished(topic, startedAt);
    }
  }

  /** Sends an encoded frame to every local client (a broadcast from here or from another node). */
  broadcastLocal(json: string): void {
    const sessions = this.#ctx.sessions;
    const frame = encodeTextFrame(json);
    for (const session of sessions) {
      if (session.state === 'handshaking') (session.heldBroadcasts ??= []).push(frame);
      else this.#ctx.sender.send(session, frame);
    }
    this.#ctx.metrics?.messagesOut(frameType(json), undefined, sessions.size, frame.length);
  }

  /** The client fell behind: drop its queued UPDATEs; their topics get a fresh snapshot once it drains. */
  conflate(session: ClientSession): void {
    const { outbound, compressor, metrics, counters, logger } = this.#ctx;
    const stale = (session.stale ??= new Set());
    const dropped = outbound.retain(session, (frame) => {
      const topic = this.#conflatable.get(compressor?.plainOf(frame) ?? frame);
      if (topic === undefined) return true;
      stale.add(topic);
      metrics?.dropped('conflated', topic);
      return false;
    });
    if (stale.size === 0) session.stale = null;
    counters.conflatedFrames += dropped;
    if (dropped > 0)
      logger.debug({ clientId: session.id, dropped, topics: [...stale] }, 'slow consumer conflated');
  }

  /** The client caught up: replace what was conflated with one fresh SNAPSHOT per topic (`recovered: false`). */
  refreshStaleTopics(session: ClientSession): void {
    const stale = session.stale;
    if (stale === null) return;
    session.stale = null;
    this.#ctx.metrics?.slowConsumer('snapshot');
    this.#snapshots.sendTopicSnapshots(session, [...stale], true);
  }

  /** The client's queue passed its bound: its queue discarded, closed with `SlowConsumer`. */
  onSlowConsumer(session: ClientSession): void {
    this.#ctx.counters.slowConsumerCloses++;
    this.#ctx.metrics?.slowConsumer('close');
    this.#ctx.logger.warn({ clientId: session.id, queuedBytes: session.bytes }, 'slow consumer closed');
    this.#ctx.outbound.discard(session);
    session.transport.close(CloseCode.SlowConsumer, 'slow consumer: reconnect and resume');
  }
}

/** The `type` of an encoded server frame (it is always the first key). */
function frameType(json: string): string {
  return json.slice(9, json.indexOf('"', 9));
}
