/**
 * The names of the Redis broker's keys and channels under one deployment's prefix: a topic's keys (its position,
 * stream, state hash and live channel, laid out in `redis-scripts.ts`) and the keys outside topics (the broadcast
 * channel, leases, node stats).
 *
 * @module
 */

/** The parts of a topic in Redis: position hash, stream, entity state hash, active alerts hash, pub/sub channel. */
export type TopicKeyPart = 'meta' | 'log' | 'state' | 'alerts' | 'live';

/** Key and channel names under one prefix. */
export class RedisKeys {
  /** @param prefix Prefix of every key and channel (e.g. `citypulse:`). */
  constructor(readonly prefix: string) {}

  /** The key of `topic`'s `part`; the topic sits in braces, so all its keys share one cluster hash slot. */
  topic(topic: string, part: TopicKeyPart): string {
    return `${this.prefix}{${topic}}:${part}`;
  }

  /** A key of this deployment outside topics (leases, node stats, the broadcast channel). */
  global(name: string): string {
    return `${this.prefix}${name}`;
  }
}
