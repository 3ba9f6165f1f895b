/**
 * What the parts of `WebSocketService` share: the sessions and their topic index, the broker, the frame encoders,
 * the outbound scheduler, the counters, and the one way a frame reaches a session (`SessionSender`). The service
 * builds one {@link ServiceContext} and hands it to each part (handshake, commands, snapshots, resume, fan-out).
 *
 * @module
 */
import { ServerMessageType, type ErrorCode } from '../protocol/messages.js';
import type { Logger } from '../shared/logger.js';
import type { Broker } from './broker.js';
import type { ClientSession, HeldFrame } from './client-session.js';
import type { FrameCompressor } from './deflate.js';
import type { ServerFrames } from './frames.js';
import type { Metrics } from './metrics.js';
import type { OutboundScheduler } from './outbound.js';
import type { InputPath, ServiceCounters, ServiceState } from './service-options.js';
import type { TopicIndex } from './topic-index.js';

/** The counters the service's parts increment (the rest of {@link ServiceCounters} is read at call time). */
export type MutableCounters = {
  -readonly [
    K in
      | 'published'
      | 'framesOut'
      | 'framesIn'
      | 'errors'
      | 'heartbeatTerminations'
      | 'slowConsumerCloses'
      | 'conflatedFrames'
      | 'connectionsTotal'
      | 'rejected'
  ]: ServiceCounters[K];
};

/** The state every part of the service reads; built once by the service. */
export interface ServiceContext {
  /** Every connected session. */
  readonly sessions: Set<ClientSession>;
  /** Topic -> sessions and session -> topics. */
  readonly index: TopicIndex<ClientSession>;
  /** Sequences UPDATE/ALERT, keeps history, carries frames between nodes. */
  readonly broker: Broker;
  /** Per-session queues and joined writes. */
  readonly outbound: OutboundScheduler<ClientSession>;
  /** Every frame the service encodes itself, and their caches. */
  readonly frames: ServerFrames;
  /** Compressed forms of outgoing frames; `null` when compression is off. */
  readonly compressor: FrameCompressor | null;
  /** The topic registry, as a set. */
  readonly topics: ReadonlySet<string>;
  /** The topic registry, in order. */
  readonly topicList: readonly string[];
  readonly logger: Logger;
  /** The service clock, ms since the epoch. */
  readonly now: () => number;
  readonly metrics: Metrics | undefined;
  readonly counters: MutableCounters;
  /** The service's life right now. */
  readonly state: () => ServiceState;
  /** Counts an input refused by the JSON bounds (counter and metric). */
  readonly countRejected: (path: InputPath, code: string) => void;
  /** The one way a frame reaches a session. */
  readonly sender: SessionSender;
}

/** Queues frames to sessions, counted, in the form each session takes. */
export class SessionSender {
  readonly #outbound: OutboundScheduler<ClientSession>;
  readonly #frames: ServerFrames;
  readonly #compressor: FrameCompressor | null;
  readonly #counters: MutableCounters;

  constructor(
    outbound: OutboundScheduler<ClientSession>,
    frames: ServerFrames,
    compressor: FrameCompressor | null,
    counters: MutableCounters,
  ) {
    this.#outbound = outbound;
    this.#frames = frames;
    this.#compressor = compressor;
    this.#counters = counters;
  }

  /** Queues `frame` (plain) for `session`, in the form the session takes: compressed once per message, shared. */
  send(session: ClientSession, frame: Buffer): void {
    this.#counters.framesOut++;
    const compressor = this.#compressor;
    this.#outbound.enqueue(
      session,
      session.windowBits === 0 || compressor === null ? frame : compressor.formFor(frame, session.windowBits),
    );
  }

  /**
   * Sends a reply made for this one session (CONNECTED, SUBSCRIBED, ERROR, PONG...) plain: small, never shared, so
   * compressing it would cost a zlib set-up per frame (per connection for CONNECTED) for a few bytes saved.
   */
  sendMessage(session: ClientSession, type: ServerMessageType, data: unknown): void {
    this.#counters.framesOut++;
    this.#outbound.enqueue(session, this.#frames.frame(type, data));
  }

  /** Sends an ERROR (counted in `errors`). */
  sendError(session: ClientSession, code: ErrorCode, message: string, topics?: readonly string[]): void {
    this.#counters.errors++;
    this.sendMessage(
      session,
      ServerMessageType.Error,
      topics === undefined ? { code, message } : { code, message, topics },
    );
  }

  /** Stops holding `topic` and sends the held frames newer than `afterSeq`. */
  releaseHeld(session: ClientSession, topic: string, afterSeq: number): void {
    const held: HeldFrame[] = session.releaseTopic(topic);
    for (const { seq, frame } of held) if (seq > afterSeq) this.send(session, frame);
  }
}

/** True for a Promise or any thenable. */
export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}
