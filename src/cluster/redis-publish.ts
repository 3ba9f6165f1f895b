/**
 * The publish path of the Redis broker (`RedisPublisher`): one Lua script (`PUBLISH` in `redis-scripts.ts`) takes the
 * topic's next seq, appends the frame to the topic's stream, applies the entity change to the topic's state hash
 * (an ALERT's effect to its active alerts hash, by the protocol's `alertEffect`, bounded by `MAX_ACTIVE_ALERTS`)
 * and PUBLISHes the frame on the topic's channel, so the channel carries frames in seq order and the state always
 * matches its seq.
 *
 * The whole publish has one deadline (`commandTimeoutMs`), and Redis refuses the script past a deadline on its own
 * clock, a margin before the publisher stops waiting: a publish answered 503 never lands later.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { SequencedMessage } from '../gateway/broker.js';
import type { StreamPosition } from '../protocol/messages.js';
import { isChangeShaped, UpdateRejectedError } from '../protocol/state-model.js';
import type { TopicRegistry } from '../protocol/topic-registry.js';
import type { EntityChange } from '../protocol/topics.js';
import { MAX_ACTIVE_ALERTS, alertEffect } from '../protocol/alert-state.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisKeys } from './redis-keys.js';
import { PUBLISH, runScript } from './redis-scripts.js';

/** What {@link RedisPublisher} needs of the broker. */
export interface RedisPublisherOptions {
  readonly connection: RedisConnection;
  readonly keys: RedisKeys;
  /** This node's id, carried by every frame it publishes. */
  readonly nodeId: string;
  /** Entries kept per topic stream (approximate, `MAXLEN ~`). */
  readonly historySize: number;
  /** The clock of the stream entries' times (ms). */
  readonly now: () => number;
  /** The topics' entity validators (the service's registry), read at each publish. */
  readonly registry: () => TopicRegistry;
}

/** Sequences, stores and publishes UPDATE/ALERT frames through the publish script. */
export class RedisPublisher {
  readonly #options: RedisPublisherOptions;

  /** @param options The connection, keys and node the frames are published with. */
  constructor(options: RedisPublisherOptions) {
    this.#options = options;
  }

  /**
   * Gives `message` the topic's next seq, stores it and publishes it. Rejects an invalid UPDATE change
   * (`UpdateRejectedError`), and a publish Redis did not answer within `commandTimeoutMs`.
   */
  async publish(topic: string, message: SequencedMessage): Promise<StreamPosition> {
    const { connection, keys } = this.#options;
    const change =
      message.type === 'UPDATE' ? entityChangeOf(this.#options.registry(), topic, message.data) : null;
    const args: (string | number)[] = [
      newEpoch(),
      this.#options.historySize,
      message.type,
      JSON.stringify(message.timestamp),
      JSON.stringify(change ?? message.data) ?? 'null',
      JSON.stringify(topic),
      this.#options.nodeId,
      this.#options.now(),
      // Redis refuses the script past this instant (its clock), a margin before we stop waiting for the reply.
      connection.redisDeadline(),
    ];
    args.push(change?.upserts.length ?? 0);
    for (const entity of change?.upserts ?? []) args.push(entity.id, JSON.stringify(entity));
    args.push(change?.removes.length ?? 0);
    for (const id of change?.removes ?? []) args.push(id);
    const effect = message.type === 'ALERT' ? alertEffect(message.data) : null;
    args.push(effect?.kind ?? '', effect?.id ?? '', MAX_ACTIVE_ALERTS);
    const reply = (await connection.bounded(
      runScript(
        connection.redis,
        PUBLISH,
        [
          keys.topic(topic, 'meta'),
          keys.topic(topic, 'log'),
          keys.topic(topic, 'state'),
          keys.topic(topic, 'live'),
          keys.topic(topic, 'alerts'),
        ],
        args,
      ),
      `publish on ${topic}`,
    )) as [number, string];
    return { seq: Number(reply[0]), epoch: String(reply[1]) };
  }
}

/** A fresh epoch candidate: time-ordered and random, letters and digits only. */
export function newEpoch(): string {
  return `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

/**
 * The entity change an UPDATE's data describes, by the protocol's one rule (`parseUpdate`), normalised so the Lua
 * applies it mechanically (HSET each upsert, then HDEL each remove); `null` for an opaque message (no state change).
 * The service has refused invalid changes already; one that reaches the broker directly is refused the same way.
 */
function entityChangeOf(registry: TopicRegistry, topic: string, data: unknown): EntityChange | null {
  if (!isChangeShaped(data)) return null;
  const parsed = registry.parseUpdate(topic, data);
  if (!parsed.ok) throw new UpdateRejectedError(parsed.field, parsed.error);
  return parsed.change;
}
