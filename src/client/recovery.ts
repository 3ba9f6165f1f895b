/**
 * Sequence tracking and recovery of the client's topics: folds sequenced UPDATE and ALERT frames into a topic's
 * store, and on a gap (or a new epoch) asks for the missed frames with `resume` when the server may support it,
 * else re-subscribes for a fresh snapshot. Learns per connection whether the server answers `resume`.
 *
 * @module
 */
import { ClientMessageType, ErrorCode } from '../protocol/messages.js';
import type { AlertMessage, ClientMessage, UpdateMessage } from '../protocol/messages.js';
import type { EntityChange } from '../protocol/topics.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { FoldResult, TopicStore } from './topic-store.js';

/** Whether the server answered our `resume` requests on this connection. */
type ResumeSupport = 'unknown' | 'yes' | 'no';

/** What {@link Recovery} asks of the client. */
export interface RecoveryHooks {
  /** Clock in milliseconds. */
  now(): number;
  /** Sends a frame on the current connection (dropped when not connected). */
  send(message: ClientMessage): void;
  reportError(error: ClientError): void;
}

/** The recovery state of the client's topics. */
export class Recovery {
  readonly #recoveryTimeoutMs: number;
  readonly #hooks: RecoveryHooks;
  #resumeSupport: ResumeSupport = 'unknown';
  /** Topics whose `resume` request awaits an answer. */
  readonly #resumePending = new Set<string>();
  /** Topic -> time its recovery was requested. */
  readonly #recovering = new Map<string, number>();

  /** `recoveryTimeoutMs`: a recovery request not answered within this long is repeated (as a re-subscribe). */
  constructor(recoveryTimeoutMs: number, hooks: RecoveryHooks) {
    this.#recoveryTimeoutMs = recoveryTimeoutMs;
    this.#hooks = hooks;
  }

  /** A new connection: the server's resume support is unknown again and nothing is being recovered. */
  onConnected(): void {
    this.#resumeSupport = 'unknown';
    this.#recovering.clear();
  }

  /** The socket was dropped: pending `resume` requests die with it. */
  onTransportDown(): void {
    this.#resumePending.clear();
  }

  /** The client closed: nothing is being recovered. */
  onShutdown(): void {
    this.#recovering.clear();
  }

  /** `topic` got a fresh state (a snapshot) or was dropped: its recovery is over. */
  settle(topic: string): void {
    this.#recovering.delete(topic);
    this.#resumePending.delete(topic);
  }

  /** Folds a frame of `topic` into `store`; a gap starts a recovery. */
  fold(
    topic: string,
    store: TopicStore,
    message: UpdateMessage | AlertMessage,
    change: EntityChange | null,
  ): FoldResult {
    const result = store.fold({
      seq: message.seq,
      epoch: message.epoch,
      change,
      alert: message.type === 'ALERT' ? { data: message.data } : undefined,
    });
    if (result === 'applied' && message.seq !== undefined) {
      this.settle(topic);
      if (message.recovered === true) this.#resumeSupport = 'yes';
    } else if (result === 'gap') {
      this.#requestRecovery(topic, store, message);
    }
    return result;
  }

  /**
   * An ERROR frame with `code`: when it answers our `resume` requests (a server without resume support), falls
   * back to fresh snapshots and returns `true`; else returns `false` and the caller reports it.
   */
  onServerError(code: ErrorCode | undefined): boolean {
    if (this.#resumePending.size > 0 && (code === ErrorCode.UnknownType || code === ErrorCode.BadMessage)) {
      // A server without resume support: fall back to fresh snapshots.
      this.#resumeSupport = 'no';
      const topics = [...this.#resumePending];
      this.#resumePending.clear();
      this.#resubscribe(topics);
      return true;
    }
    return false;
  }

  /**
   * A gap (or a new epoch) in `topic`: ask for the missed frames with `resume` when the server may support it,
   * else re-subscribe for a fresh snapshot. Repeated at most once per `recoveryTimeoutMs`.
   */
  #requestRecovery(topic: string, store: TopicStore, message: UpdateMessage | AlertMessage): void {
    const now = this.#hooks.now();
    const since = this.#recovering.get(topic);
    if (since !== undefined && now - since < this.#recoveryTimeoutMs) return;
    this.#recovering.set(topic, now);
    this.#hooks.reportError(
      new ClientError(
        ClientErrorCode.Gap,
        `${topic}: expected seq ${(store.seq ?? 0) + 1}${store.epoch ? ` of epoch ${store.epoch}` : ''}, got ${message.seq}${message.epoch ? ` of epoch ${message.epoch}` : ''}; recovering`,
        { topic },
      ),
    );
    const position = store.position;
    if (position !== undefined && since === undefined && this.#resumeSupport !== 'no') {
      this.#resumePending.add(topic);
      this.#hooks.send({ type: ClientMessageType.Resume, topics: { [topic]: position } });
    } else {
      this.#resubscribe([topic]);
    }
  }

  /** Unsubscribe then subscribe again: the server answers the subscribe with a fresh per-topic SNAPSHOT. */
  #resubscribe(topics: string[]): void {
    this.#hooks.send({ type: ClientMessageType.Unsubscribe, topics });
    this.#hooks.send({ type: ClientMessageType.Subscribe, topics });
  }
}
