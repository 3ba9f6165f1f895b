/**
 * Snapshots of the gateway: calling the snapshot provider, per-topic SNAPSHOTs followed by the frames held
 * meanwhile, the subscriptions still owed a snapshot after a failure (retried when the broker is available again,
 * and on a timer that covers a failure racing that signal), and the broker's `resync` / `restart` of a topic.
 *
 * @module
 */
import { ErrorCode, type StreamPosition } from '../protocol/messages.js';
import type { ClientSession } from './client-session.js';
import { seqOf } from './frames.js';
import { isPromiseLike, type ServiceContext } from './service-context.js';
import type { SnapshotProvider } from './service-options.js';

/** The snapshot side of the service; see the module comment. */
export class Snapshots {
  readonly #ctx: ServiceContext;
  readonly #retryMs: number;
  #provider: SnapshotProvider | null = null;
  /** Subscriptions still owed a snapshot (theirs failed): retried once the broker is available. */
  readonly #unsynced = new Map<ClientSession, Set<string>>();
  #retryTimer: NodeJS.Timeout | null = null;

  /** @param retryMs how often owed snapshots are retried while some are owed */
  constructor(ctx: ServiceContext, retryMs: number) {
    this.#ctx = ctx;
    this.#retryMs = retryMs;
  }

  /** Sets where snapshots come from (see `WebSocketService.setSnapshotProvider`). */
  setProvider(provider: SnapshotProvider): void {
    this.#provider = provider;
  }

  /**
   * Calls the provider and hands its result (and the topics' positions at call time) to `done`, synchronously when
   * the provider is synchronous. Provider failures, thrown or rejected, go to `failed`.
   */
  withSnapshot(
    done: (snapshot: unknown, callTimeSeqs: Map<string, StreamPosition>) => void,
    failed: (error: unknown) => void,
    topics: readonly string[] = this.#ctx.topicList,
  ): void {
    const callTimeSeqs = new Map<string, StreamPosition>();
    for (const topic of this.#ctx.topicList) callTimeSeqs.set(topic, this.#ctx.broker.position(topic));
    let result: unknown;
    try {
      result = this.#provider === null ? null : this.#provider(topics);
    } catch (error) {
      failed(error);
      return;
    }
    // An encoding failure (a provider's state JSON cannot encode) is a provider failure, never a crash.
    const finish = (snapshot: unknown): void => {
      try {
        done(snapshot, callTimeSeqs);
      } catch (error) {
        failed(error);
      }
    };
    if (isPromiseLike(result)) result.then(finish, (error: unknown) => failed(error));
    else finish(result);
  }

  /**
   * Holds `topics`, fetches a snapshot and sends one per-topic SNAPSHOT each, then the frames held meanwhile. On
   * failure the client gets `SNAPSHOT_UNAVAILABLE` (not again when `retry`) and the topics stay owed a snapshot.
   */
  sendTopicSnapshots(
    session: ClientSession,
    topics: readonly string[],
    recoveryFallback: boolean,
    retry = false,
  ): void {
    const { index, frames, sender, logger } = this.#ctx;
    for (const topic of topics) session.holdTopic(topic);
    this.withSnapshot(
      (snapshot, callTimeSeqs) => {
        for (const topic of topics) {
          if (session.state === 'closed' || !index.has(session, topic) || !session.held?.has(topic)) continue;
          const seq = seqOf(snapshot, topic, callTimeSeqs);
          sender.send(session, frames.topicSnapshotFrame(snapshot, topic, seq, recoveryFallback));
          sender.releaseHeld(session, topic, seq);
        }
      },
      (error) => {
        if (session.state === 'closed') return;
        logger.warn({ err: error, clientId: session.id, topics }, 'snapshot provider failed');
        if (!retry)
          sender.sendError(
            session,
            ErrorCode.SnapshotUnavailable,
            'the snapshot could not be produced',
            topics,
          );
        for (const topic of topics) if (session.held?.has(topic)) sender.releaseHeld(session, topic, -1);
        this.markUnsynced(session, topics);
      },
      topics,
    );
  }

  /** Marks the `topics` of `session` whose snapshot failed as owed one; retried when the broker is back. */
  markUnsynced(session: ClientSession, topics: readonly string[]): void {
    if (session.state === 'closed') return;
    const owed = topics.filter((topic) => this.#ctx.index.has(session, topic));
    if (owed.length === 0) return;
    let set = this.#unsynced.get(session);
    if (set === undefined) {
      set = new Set();
      this.#unsynced.set(session, set);
    }
    for (const topic of owed) set.add(topic);
    // The broker's `available` signal retries at once; this timer covers a failure that raced that signal.
    if (this.#retryTimer === null && this.#ctx.state() === 'running') {
      this.#retryTimer = setInterval(() => {
        if (this.#ctx.broker.isAvailable?.() !== false) this.retryUnsynced();
      }, this.#retryMs);
      this.#retryTimer.unref();
    }
  }

  /** Sends the snapshots owed since a failure (`recovered: false`); a failure again keeps them owed, quietly. */
  retryUnsynced(): void {
    if (this.#ctx.state() !== 'running') return;
    const owed = [...this.#unsynced];
    this.#unsynced.clear();
    this.#stopRetry();
    for (const [session, topics] of owed) {
      const due = [...topics].filter(
        (topic) =>
          session.state === 'open' && this.#ctx.index.has(session, topic) && !session.held?.has(topic),
      );
      if (due.length > 0) this.sendTopicSnapshots(session, due, true, true);
    }
  }

  /** The topic's stream restarted or lost frames: a fresh snapshot (`recovered: false`) to its subscribers. */
  resync(topic: string): void {
    const members = this.#ctx.index.membersOf(topic);
    if (members === undefined) return;
    for (const session of [...members]) {
      if (session.state === 'open' && !session.held?.has(topic))
        this.sendTopicSnapshots(session, [topic], true);
    }
  }

  /**
   * The topic's stream began a new life at seq 0 of `epoch` with an empty state (the cluster store lost its data):
   * each subscriber that is not waiting for a snapshot gets the empty SNAPSHOT of that epoch (`recovered: false`),
   * then every frame of the new life from seq 1, ALERTs included. Those waiting for a snapshot get theirs.
   */
  restart(topic: string, epoch: string): void {
    const members = this.#ctx.index.membersOf(topic);
    if (members === undefined) return;
    const frame = this.#ctx.frames.topicSnapshotFrame(
      { [topic]: { entities: [], seq: 0, epoch } },
      topic,
      0,
      true,
    );
    for (const session of [...members]) {
      if (session.state !== 'open' || session.held?.has(topic)) continue;
      session.stale?.delete(topic);
      this.#unsynced.get(session)?.delete(topic);
      this.#ctx.sender.send(session, frame);
    }
  }

  /** `session` is gone: it is owed nothing more. */
  forget(session: ClientSession): void {
    this.#unsynced.delete(session);
  }

  /** Stops the retry timer and forgets every owed snapshot (shutdown). Idempotent. */
  dispose(): void {
    this.#stopRetry();
    this.#unsynced.clear();
  }

  #stopRetry(): void {
    if (this.#retryTimer !== null) clearInterval(this.#retryTimer);
    this.#retryTimer = null;
  }
}
