/**
 * What one node of the Redis broker knows of one topic (`TopicChannel`): its subscription state, its position (epoch
 * and last seq delivered), the frames held back while subscribing or filling a gap, and the reads waiting for
 * delivery to reach their position. `redis-subscriptions.ts` drives the subscription state, `redis-delivery.ts` the
 * position.
 *
 * States of a topic on this node: `idle` -> `subscribing` (SUBSCRIBE sent; frames buffered) -> `active` (frames
 * delivered) -> `unsubscribing` -> `idle`.
 *
 * @module
 */

/** Subscription states of a topic on this node. */
export type TopicState = 'idle' | 'subscribing' | 'active' | 'unsubscribing';

/** A frame as it arrives on a channel. */
export interface ChannelFrame {
  readonly seq: number;
  readonly epoch: string;
  readonly json: string;
}

/** A read (snapshot or history) waiting until this node has delivered up to the position it read. */
export interface Waiter {
  readonly epoch: string;
  readonly seq: number;
  readonly resolve: () => void;
}

/** What this node knows of one topic. */
export class TopicChannel {
  state: TopicState = 'idle';
  /** Resolves once the topic is `active` (rejects when the SUBSCRIBE failed). */
  ready: Promise<void> | null = null;
  /** Serialises SUBSCRIBE/UNSUBSCRIBE of this topic. */
  ops: Promise<void> = Promise.resolve();
  epoch: string | null = null;
  /** Last seq delivered locally (or known to be covered by the reads that follow a subscribe). */
  lastSeq = 0;
  /** Frames received while subscribing or while a gap is being filled, in arrival order. */
  buffer: ChannelFrame[] | null = null;
  /** Reads waiting for local delivery to reach the position they read (see `TopicDelivery.awaitDelivered`). */
  waiters: Waiter[] = [];
  /** A gap fill failed (Redis unreachable): `buffer` waits for the reconnection to retry it. */
  gapPending = false;
  /** @param topic The topic this channel carries. */
  constructor(readonly topic: string) {}
}

/** Longest epoch a channel frame may name (ours are about 17 characters). */
const MAX_EPOCH_LENGTH = 64;

/**
 * Parses a frame as the publish script sends it on a topic's channel (`<seq> <epoch> <nodeId> <json>`); `null` when
 * it is not of that shape: a channel is input like any other (anyone with access to the Redis can PUBLISH on it), so
 * the seq must be a positive safe integer, the epoch short and non-empty, and the payload a JSON object envelope as
 * the script builds it, or the frame is dropped before it can move a position or reach a client.
 */
export function parseChannelFrame(message: string): ChannelFrame | null {
  const a = message.indexOf(' ');
  const b = message.indexOf(' ', a + 1);
  const c = message.indexOf(' ', b + 1);
  if (a <= 0 || b <= a + 1 || c <= b + 1 || b - a - 1 > MAX_EPOCH_LENGTH) return null;
  const seqText = message.slice(0, a);
  const seq = Number(seqText);
  if (!/^[1-9][0-9]*$/.test(seqText) || !Number.isSafeInteger(seq)) return null;
  const json = message.slice(c + 1);
  if (!json.startsWith('{"type":') || !json.endsWith('}')) return null;
  return { seq, epoch: message.slice(a + 1, b), json };
}

/** Whether `channel` has delivered up to `seq` of `epoch` (or moved past that epoch). */
export function reached(channel: TopicChannel, epoch: string, seq: number): boolean {
  if (channel.epoch !== epoch) return channel.epoch !== null && channel.epoch > epoch;
  return channel.lastSeq >= seq;
}
