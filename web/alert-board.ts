/**
 * The alerts panel's model: the alerts active per topic and a feed of recent ones, newest first.
 *
 * Active alerts come from two places: the `alerts` of each topic's SNAPSHOT (what was active before the page
 * opened, contract 5 of issue 12) and the ALERT frames after it. An alert with an id is one feed entry that changes
 * state (raised, then resolved); an alert without an id is a transient entry of its own.
 *
 * @module
 */
import type { AlertView } from '../src/protocol/payloads.js';
import { isRecord } from '../src/shared/json.js';
import type { FeedAlert } from './panels.js';
import { toFeedAlert } from './panels.js';

/** Entries kept in the feed. */
export const MAX_FEED = 60;
/** Most active alerts kept per topic (the protocol's bound). */
export const MAX_ACTIVE_PER_TOPIC = 256;

/**
 * The `alerts` of topic `topic` in a SNAPSHOT frame's `data` (per-topic: `data.alerts`; full: `data[topic].alerts`),
 * at most {@link MAX_ACTIVE_PER_TOPIC}; `undefined` when the server sends none (an older server).
 */
export function snapshotAlerts(
  message: { readonly topic?: string | undefined; readonly data: unknown },
  topic: string,
): unknown[] | undefined {
  const data: unknown =
    message.topic !== undefined
      ? message.data
      : isRecord(message.data) && Object.hasOwn(message.data, topic)
        ? message.data[topic]
        : undefined;
  if (!isRecord(data) || !Array.isArray(data.alerts)) return undefined;
  return data.alerts.slice(0, MAX_ACTIVE_PER_TOPIC);
}

/** Active alerts and the recent-alerts feed. */
export class AlertBoard {
  /** Frame topic -> alert id -> its feed entry. */
  readonly #active = new Map<string, Map<string, FeedAlert>>();
  #feed: FeedAlert[] = [];

  /** The feed, newest first. */
  get feed(): readonly FeedAlert[] {
    return this.#feed;
  }

  /** How many alerts are active over all topics. */
  get activeCount(): number {
    let count = 0;
    for (const alerts of this.#active.values()) count += alerts.size;
    return count;
  }

  /**
   * Replaces the active alerts of `topic` with those a snapshot carried (oldest first). Entries the feed shows as
   * raised that are no longer active were resolved while this page was not listening: they turn resolved.
   */
  seed(topic: string, views: readonly AlertView[], timestamp: string): void {
    const next = new Map<string, FeedAlert>();
    for (const view of views) {
      if (view.id === undefined || view.state === 'resolved' || next.size >= MAX_ACTIVE_PER_TOPIC) continue;
      const current = this.#active.get(topic)?.get(view.id);
      const entry = current ?? toFeedAlert(view, timestamp, topic);
      next.set(view.id, entry);
      if (current === undefined) this.#feed.push(entry);
    }
    for (const [id, entry] of this.#active.get(topic) ?? []) {
      if (!next.has(id)) this.#replace(entry, { ...entry, state: 'resolved', at: timestamp }, false);
    }
    this.#active.set(topic, next);
    this.#feed.sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || 0);
    this.#trim();
  }

  /** Folds one ALERT frame (of frame topic `topic`, `undefined` for a broadcast). */
  apply(view: AlertView, timestamp: string, topic: string | undefined): void {
    const entry = toFeedAlert(view, timestamp, topic);
    if (view.id === undefined || topic === undefined) {
      this.#feed.unshift(entry);
      this.#trim();
      return;
    }
    let active = this.#active.get(topic);
    if (active === undefined) {
      active = new Map();
      this.#active.set(topic, active);
    }
    const current = active.get(view.id);
    if (view.state === 'resolved') active.delete(view.id);
    else if (current !== undefined || active.size < MAX_ACTIVE_PER_TOPIC) active.set(view.id, entry);
    if (current !== undefined) this.#replace(current, entry, true);
    else this.#feed.unshift(entry);
    this.#trim();
  }

  /** Puts `next` where `previous` was (or at the top when `toTop`). */
  #replace(previous: FeedAlert, next: FeedAlert, toTop: boolean): void {
    const index = this.#feed.indexOf(previous);
    if (index >= 0) this.#feed.splice(index, 1);
    if (toTop || index < 0) this.#feed.unshift(next);
    else this.#feed.splice(index, 0, next);
  }

  #trim(): void {
    if (this.#feed.length > MAX_FEED) this.#feed.length = MAX_FEED;
  }
}
