/**
 * In-order, exactly-once delivery of a topic's frames on one node of the Redis broker (`TopicDelivery`).
 *
 * - A frame at or below the last delivered seq is dropped (exactly once); the next one is handed to the host.
 * - A frame past a gap (pub/sub is at-most-once: a reconnect loses what was in flight) holds the frames behind it
 *   while the gap is filled from the topic's stream (catch-up); a gap the stream no longer covers makes the host
 *   send its clients fresh snapshots (`BrokerHost.resync`). A fill that cannot reach Redis waits for the
 *   reconnection, which retries it.
 * - A new epoch (Redis lost its data) starts with an empty state at seq 0: the host tells its clients so
 *   (`BrokerHost.restart`) and the new epoch's frames follow from seq 1, read from the stream when they were not all
 *   received live, so no acknowledged frame of the new epoch is skipped.
 * - A snapshot or history read on the command connection can be ahead of the subscription: the reader waits
 *   (`awaitDelivered`) until delivery reaches the position it read, so no frame in the read arrives again live.
 *
 * @module
 */
import type { BrokerHost } from '../gateway/broker.js';
import type { Logger } from '../shared/logger.js';
import type { RedisConnection } from './redis-connection.js';
import { readHistory } from './redis-history.js';
import type { RedisKeys } from './redis-keys.js';
import { reached, type ChannelFrame, type TopicChannel, type Waiter } from './redis-topic-channel.js';

/** What {@link TopicDelivery} needs of the broker. */
export interface TopicDeliveryOptions {
  readonly connection: RedisConnection;
  readonly keys: RedisKeys;
  /** Entries kept per topic stream: a gap fill reads at most one more. */
  readonly historySize: number;
  readonly logger: Logger;
  /** The node's service, once attached (`null` before, and after `close()`). */
  readonly host: () => BrokerHost | null;
}

/** Delivers each topic's frames to the host once and in seq order, filling gaps and following epoch restarts. */
export class TopicDelivery {
  readonly #options: TopicDeliveryOptions;

  /** @param options What the delivery reads from and delivers to. */
  constructor(options: TopicDeliveryOptions) {
    this.#options = options;
  }

  /** Delivers `frame` if it is the next one; drops a duplicate; fills a gap or resyncs on a new epoch. */
  accept(channel: TopicChannel, frame: ChannelFrame): void {
    if (channel.epoch === null) {
      // The topic's first life begins (nothing was published when this node subscribed): nothing to resync.
      channel.epoch = frame.epoch;
    } else if (frame.epoch !== channel.epoch) {
      // The topic's stream restarted (Redis lost its data): a new life from an empty state at seq 0. Its frames
      // follow from seq 1 (this one, or the stream fills the gap up to it).
      this.#restart(channel, frame.epoch);
    }
    if (frame.seq <= channel.lastSeq) return;
    if (frame.seq === channel.lastSeq + 1) {
      channel.lastSeq = frame.seq;
      this.#options.host()?.deliver(channel.topic, frame.seq, frame.json);
      if (channel.waiters.length > 0) this.settle(channel);
      return;
    }
    channel.buffer = [frame];
    void this.fillGap(channel);
  }

  /**
   * Reads the frames after `lastSeq` from the stream and delivers them, then what arrived meanwhile. When Redis
   * cannot be read, the buffered frames wait (`gapPending`) for the reconnection, which retries.
   */
  async fillGap(channel: TopicChannel): Promise<void> {
    const { connection, keys, historySize, logger } = this.#options;
    channel.gapPending = false;
    try {
      // Read in the epoch this node knows: when the topic moved to another one meanwhile, the read starts at its
      // seq 1 (not at our old position, which would skip the new life's first frames).
      const { epoch, seq, entries } = await readHistory(
        connection,
        keys,
        channel.topic,
        channel.lastSeq + 1,
        historySize + 1,
        channel.epoch,
      );
      if (channel.state !== 'active') {
        this.settle(channel);
        return;
      }
      if (epoch !== null && channel.epoch === null) {
        channel.epoch = epoch;
      } else if (epoch !== null && epoch !== channel.epoch) {
        this.#restart(channel, epoch);
      }
      const first = entries[0];
      if (first !== undefined && first.seq > channel.lastSeq + 1) {
        logger.warn(
          { topic: channel.topic, from: channel.lastSeq, to: first.seq },
          'gap beyond history: resync',
        );
        channel.lastSeq = first.seq - 1;
        this.#options.host()?.resync(channel.topic);
      }
      for (const entry of entries) {
        if (entry.seq !== channel.lastSeq + 1) continue;
        channel.lastSeq = entry.seq;
        this.#options.host()?.deliver(channel.topic, entry.seq, entry.json);
      }
      if (seq > channel.lastSeq && entries.length === 0) {
        channel.lastSeq = seq;
        this.#options.host()?.resync(channel.topic);
      }
    } catch (error) {
      logger.warn(
        { err: (error as Error).message, topic: channel.topic },
        'gap fill failed; retried on reconnect',
      );
      channel.gapPending = true;
      return;
    }
    this.drain(channel);
    this.settle(channel);
  }

  /**
   * Resolves once this node has delivered `channel` up to `seq` of `epoch` (at once when the topic is not active).
   * A snapshot or history is read on the command connection, which can be ahead of the subscription: releasing a
   * client before the subscription caught up would let a frame already in the read arrive again live.
   */
  awaitDelivered(channel: TopicChannel, epoch: string, seq: number): Promise<void> {
    if (channel.state !== 'active' || reached(channel, epoch, seq)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(nudge);
        clearTimeout(fail);
        resolve();
      };
      // Frames in flight normally arrive within a millisecond; if not, they were lost: read them from the stream.
      const nudge = setTimeout(() => {
        if (channel.state === 'active' && channel.buffer === null) {
          channel.buffer = [];
          void this.fillGap(channel);
        }
      }, 250);
      const fail = setTimeout(() => {
        channel.waiters = channel.waiters.filter((w) => w.resolve !== done);
        clearTimeout(nudge);
        reject(new Error(`delivery of ${channel.topic} did not reach seq ${seq}`));
      }, 5000);
      nudge.unref();
      fail.unref();
      channel.waiters.push({ epoch, seq, resolve: done });
    });
  }

  /** Resolves the waiters whose position was delivered (or can no longer be: the topic stopped or moved on). */
  settle(channel: TopicChannel): void {
    if (channel.waiters.length === 0) return;
    const waiting: Waiter[] = [];
    for (const waiter of channel.waiters) {
      if (channel.state !== 'active' || reached(channel, waiter.epoch, waiter.seq)) waiter.resolve();
      else waiting.push(waiter);
    }
    channel.waiters = waiting;
  }

  /** Delivers the buffered frames (in order) and resumes live delivery. */
  drain(channel: TopicChannel): void {
    const buffered = channel.buffer ?? [];
    channel.buffer = null;
    for (let i = 0; i < buffered.length; i++) {
      if (channel.state !== 'active') return;
      this.accept(channel, buffered[i] as ChannelFrame);
      if (channel.buffer !== null) {
        // A gap opened: the rest waits behind it.
        (channel.buffer as ChannelFrame[]).push(...buffered.slice(i + 1));
        return;
      }
    }
  }

  /** The topic's stream began a new life (`epoch`, empty state at seq 0): local clients start it from there. */
  #restart(channel: TopicChannel, epoch: string): void {
    this.#options.logger.warn(
      { topic: channel.topic, from: channel.epoch, to: epoch },
      'topic epoch changed',
    );
    channel.epoch = epoch;
    channel.lastSeq = 0;
    this.#options.host()?.restart(channel.topic, epoch);
  }
}
