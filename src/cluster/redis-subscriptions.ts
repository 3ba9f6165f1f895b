/**
 * The topic channels one node of the Redis broker is subscribed to (`TopicSubscriptions`).
 *
 * A node SUBSCRIBEs to a topic's channel only while it has local subscribers (watch on demand) and unsubscribes by
 * a periodic sweep once nobody here listens any more. SUBSCRIBE and UNSUBSCRIBE of one topic run one after the
 * other. Frames that arrive while subscribing wait until the topic's position is read, then go to
 * `redis-delivery.ts`. When Redis answers again after an outage, every topic a local client needs is subscribed
 * again and the active ones catch up from their streams.
 *
 * @module
 */
import type { BrokerHost } from '../gateway/broker.js';
import type { StreamPosition } from '../protocol/messages.js';
import type { Logger } from '../shared/logger.js';
import type { RedisConnection } from './redis-connection.js';
import type { TopicDelivery } from './redis-delivery.js';
import { readHistory } from './redis-history.js';
import type { RedisKeys } from './redis-keys.js';
import { parseChannelFrame, TopicChannel } from './redis-topic-channel.js';

/** What {@link TopicSubscriptions} needs of the broker. Durations in ms. */
export interface TopicSubscriptionsOptions {
  readonly connection: RedisConnection;
  readonly keys: RedisKeys;
  readonly delivery: TopicDelivery;
  readonly logger: Logger;
  /** The node's service, once attached (`null` before, and after `close()`). */
  readonly host: () => BrokerHost | null;
  /** How often topics without local subscribers are unsubscribed. */
  readonly sweepIntervalMs: number;
}

/** The topics this node follows, their channel subscriptions and the frames arriving on them. */
export class TopicSubscriptions {
  readonly #options: TopicSubscriptionsOptions;
  readonly #topics = new Map<string, TopicChannel>();
  /** Channel name -> topic. */
  readonly #channelTopics = new Map<string, string>();
  #sweepTimer: NodeJS.Timeout | null;

  /** @param options The connections, the delivery and the host; starts the sweep. */
  constructor(options: TopicSubscriptionsOptions) {
    this.#options = options;
    this.#sweepTimer = setInterval(() => this.#sweep(), options.sweepIntervalMs);
    this.#sweepTimer.unref();
  }

  /** Subscribes to the channels of `topics` (those not yet subscribed); resolves once every one is active. */
  async watch(topics: readonly string[]): Promise<void> {
    await Promise.all(topics.map((topic) => this.#watchOne(topic)));
  }

  /** Topics whose channel this node is subscribed to. */
  activeTopics(): string[] {
    return [...this.#topics.values()].filter((c) => c.state === 'active').map((c) => c.topic);
  }

  /** The topic's position as delivered on this node (`epoch` empty and `seq` 0 when unknown). */
  position(topic: string): StreamPosition {
    const channel = this.#topics.get(topic);
    return { epoch: channel?.epoch ?? '', seq: channel?.lastSeq ?? 0 };
  }

  /** Resolves once this node has delivered `topic` up to `seq` of `epoch` (at once when it is not watched). */
  awaitDelivered(topic: string, epoch: string, seq: number): Promise<void> {
    const channel = this.#topics.get(topic);
    if (channel === undefined) return Promise.resolve();
    return this.#options.delivery.awaitDelivered(channel, epoch, seq);
  }

  /**
   * Takes a message of the subscription connection when `channelName` is a topic's channel (and returns `true`):
   * buffered while the topic subscribes or fills a gap, delivered when active, dropped otherwise.
   */
  receive(channelName: string, message: string): boolean {
    const topic = this.#channelTopics.get(channelName);
    if (topic === undefined) return false;
    const channel = this.#topics.get(topic);
    if (channel === undefined) return true;
    const frame = parseChannelFrame(message);
    if (frame === null) return true;
    if (channel.buffer !== null) {
      if (channel.state === 'subscribing' || channel.state === 'active') channel.buffer.push(frame);
      return true;
    }
    if (channel.state !== 'active') return true;
    this.#options.delivery.accept(channel, frame);
    return true;
  }

  /**
   * Redis answers again: subscribe again to every topic a local client needs whose SUBSCRIBE failed meanwhile, and
   * fill what the active subscriptions missed from the streams.
   */
  recover(): void {
    const host = this.#options.host();
    for (const channel of this.#topics.values()) {
      if (channel.state === 'idle' && host !== null && host.subscribers(channel.topic) > 0) {
        this.#watchOne(channel.topic).catch((error: unknown) =>
          this.#options.logger.warn(
            { err: (error as Error).message, topic: channel.topic },
            'resubscribe failed',
          ),
        );
        continue;
      }
      if (channel.state !== 'active') continue;
      // Frames published while the subscription was down were lost in flight: fill from the streams.
      if (channel.buffer === null) channel.buffer = [];
      else if (!channel.gapPending) continue; // a fill is running; it reads up to the current seq
      void this.#options.delivery.fillGap(channel);
    }
  }

  /** Stops the sweep. Idempotent. */
  stop(): void {
    if (this.#sweepTimer !== null) clearInterval(this.#sweepTimer);
    this.#sweepTimer = null;
  }

  #channel(topic: string): TopicChannel {
    let channel = this.#topics.get(topic);
    if (channel === undefined) {
      channel = new TopicChannel(topic);
      this.#topics.set(topic, channel);
      this.#channelTopics.set(this.#options.keys.topic(topic, 'live'), topic);
    }
    return channel;
  }

  #watchOne(topic: string): Promise<void> {
    const { connection, keys, delivery } = this.#options;
    const channel = this.#channel(topic);
    if (channel.state === 'active' || channel.state === 'subscribing')
      return channel.ready ?? Promise.resolve();
    channel.state = 'subscribing';
    channel.buffer = [];
    const ready = channel.ops.then(async () => {
      try {
        await connection.bounded(
          connection.sub.subscribe(keys.topic(topic, 'live')),
          `subscribe to ${topic}`,
        );
        // Everything up to the current seq is covered by the reads the waiting clients make after this resolves.
        const { epoch, seq } = await readHistory(connection, keys, topic, 0, 0);
        channel.epoch = epoch;
        channel.lastSeq = seq;
        channel.state = 'active';
        delivery.drain(channel);
        delivery.settle(channel);
      } catch (error) {
        channel.state = 'idle';
        channel.buffer = null;
        connection.sub.unsubscribe(keys.topic(topic, 'live')).catch(() => {});
        throw error;
      }
    });
    channel.ready = ready;
    channel.ops = ready.catch(() => {});
    return ready;
  }

  /** Unsubscribes the topics nobody on this node listens to any more. */
  #sweep(): void {
    const host = this.#options.host();
    if (host === null) return;
    for (const channel of this.#topics.values()) {
      if (channel.state !== 'active' || channel.buffer !== null || host.subscribers(channel.topic) > 0)
        continue;
      channel.state = 'unsubscribing';
      channel.ready = null;
      channel.ops = channel.ops.then(async () => {
        try {
          await this.#options.connection.sub.unsubscribe(this.#options.keys.topic(channel.topic, 'live'));
        } catch (error) {
          this.#options.logger.debug(
            { err: (error as Error).message, topic: channel.topic },
            'unsubscribe failed',
          );
        }
        if (channel.state === 'unsubscribing') channel.state = 'idle';
      });
    }
  }
}
