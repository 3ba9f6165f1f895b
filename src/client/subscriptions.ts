/**
 * The client's subscriptions: one entry per wanted topic with its holders, its handlers and its converged state
 * (a `TopicStore`). A topic is subscribed on its first holder and unsubscribed (its state forgotten) when the last
 * one lets go.
 *
 * @module
 */
import { TOPIC_NAME_PATTERN } from '../protocol/messages.js';
import type { StreamPosition } from '../protocol/messages.js';
import type { TopicEvent, TopicHandler } from './events.js';
import { TopicStore } from './topic-store.js';

/** One wanted topic. */
export interface Subscription {
  /** Holders: one per `subscribe()` call still active, plus one for a topic of `options.topics`. */
  refs: number;
  readonly handlers: Set<TopicHandler>;
  readonly store: TopicStore;
}

/** What {@link Subscriptions} asks of the client. */
export interface SubscriptionHooks {
  /** `topic` got its first holder: ask the server for it. */
  onFirstHold(topic: string): void;
  /** `topic` lost its last holder and its state is forgotten: tell the server. */
  onLastRelease(topic: string): void;
  /** A subscription handler threw (`where` names it). */
  onHandlerError(error: unknown, where: string): void;
}

/** Throws `TypeError` when `topic` is not a valid topic name. */
export function validateTopic(topic: string): void {
  if (!TOPIC_NAME_PATTERN.test(topic)) throw new TypeError(`invalid topic name ${JSON.stringify(topic)}`);
}

/** The wanted topics, by name, in the order they were first held. */
export class Subscriptions {
  readonly #byTopic = new Map<string, Subscription>();
  readonly #hooks: SubscriptionHooks;

  constructor(hooks: SubscriptionHooks) {
    this.#hooks = hooks;
  }

  /** The wanted topics. */
  get topics(): string[] {
    return [...this.#byTopic.keys()];
  }

  /** Whether `topic` is wanted. */
  has(topic: string): boolean {
    return this.#byTopic.has(topic);
  }

  /** The subscription of `topic`, if wanted. */
  get(topic: string): Subscription | undefined {
    return this.#byTopic.get(topic);
  }

  /** Adds a holder of `topic` (validated; created, and asked for, on its first holder). */
  hold(topic: string): Subscription {
    validateTopic(topic);
    let subscription = this.#byTopic.get(topic);
    if (subscription === undefined) {
      subscription = { refs: 0, handlers: new Set(), store: new TopicStore() };
      this.#byTopic.set(topic, subscription);
      this.#hooks.onFirstHold(topic);
    }
    subscription.refs++;
    return subscription;
  }

  /** Removes a holder of `topic`; the last one drops the topic and resets its state. */
  release(topic: string): void {
    const subscription = this.#byTopic.get(topic);
    if (subscription === undefined) return;
    subscription.refs--;
    if (subscription.refs > 0) return;
    this.#byTopic.delete(topic);
    subscription.store.reset();
    this.#hooks.onLastRelease(topic);
  }

  /** The stream position of `topic`'s state, when it has a `seq`. */
  position(topic: string): { readonly seq: number; readonly epoch: string | undefined } | undefined {
    const store = this.#byTopic.get(topic)?.store;
    if (store === undefined || store.seq === undefined) return undefined;
    return { seq: store.seq, epoch: store.epoch };
  }

  /** The positions to resume from: every topic whose position is known. */
  resumePositions(): Record<string, StreamPosition> {
    const resume: Record<string, StreamPosition> = {};
    for (const [topic, { store }] of this.#byTopic) {
      const position = store.position;
      if (position !== undefined) resume[topic] = position;
    }
    return resume;
  }

  /** Calls every handler of `subscription` with `event`; a handler that throws does not stop the others. */
  dispatch(subscription: Subscription, event: TopicEvent): void {
    for (const handler of [...subscription.handlers]) {
      try {
        handler(event);
      } catch (error) {
        this.#hooks.onHandlerError(error, `${event.topic} handler`);
      }
    }
  }
}
