/**
 * Per-topic sequence numbers and bounded history for a single node. Each UPDATE/ALERT on a topic takes the topic's
 * next `seq` (1, 2, 3, ...) within an `epoch` that changes whenever the history restarts (a new process), so a
 * position from a previous life is never trusted. History is bounded by count and by age.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { StreamPosition } from '../protocol/messages.js';

/** One sequenced message as kept in history. */
export interface LogEntry {
  readonly seq: number;
  /** The encoded JSON of the frame (without `recovered`). */
  readonly json: string;
  /** When it was appended (ms, from the injected clock). */
  readonly at: number;
}

/** Options of {@link TopicLog}. */
export interface TopicLogOptions {
  /** Most entries kept per topic. Default 1000. 0 keeps no history. */
  historySize?: number;
  /** Oldest entry kept, in ms. Default 300000 (5 min). */
  historyTtlMs?: number;
  /** Clock. Default `Date.now`. */
  now?: () => number;
  /** Fixed epoch (tests). Default: random per log. */
  epoch?: string;
}

/** Result of {@link TopicLog.since}. */
export type HistoryLookup =
  | { readonly covered: true; readonly entries: readonly LogEntry[] }
  | { readonly covered: false; readonly reason: 'epoch' | 'expired' | 'future' };

class TopicStream {
  seq = 0;
  /** Ring of the newest entries, oldest first from `head`. */
  readonly ring: (LogEntry | undefined)[];
  head = 0;
  size = 0;
  constructor(capacity: number) {
    this.ring = new Array<LogEntry | undefined>(capacity);
  }
}

/** Sequence numbers and bounded history for every topic of one node. */
export class TopicLog {
  /** Identifies this log's life. */
  readonly epoch: string;
  readonly #streams = new Map<string, TopicStream>();
  readonly #capacity: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: TopicLogOptions = {}) {
    this.epoch = options.epoch ?? `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
    this.#capacity = Math.max(0, options.historySize ?? 1000);
    this.#ttlMs = options.historyTtlMs ?? 300_000;
    this.#now = options.now ?? Date.now;
  }

  /** The topic's current position (seq 0 before its first message). */
  position(topic: string): StreamPosition {
    return { epoch: this.epoch, seq: this.#streams.get(topic)?.seq ?? 0 };
  }

  /** Takes the topic's next seq. Call {@link record} with the encoded frame afterwards to keep it in history. */
  next(topic: string): number {
    return ++this.#stream(topic).seq;
  }

  /** Keeps the encoded frame of `seq` (just taken with {@link next}) in the topic's history. */
  record(topic: string, seq: number, json: string): void {
    if (this.#capacity === 0) return;
    const stream = this.#stream(topic);
    const entry: LogEntry = { seq, json, at: this.#now() };
    const index = (stream.head + stream.size) % this.#capacity;
    stream.ring[index] = entry;
    if (stream.size < this.#capacity) stream.size++;
    else stream.head = (stream.head + 1) % this.#capacity;
  }

  /**
   * The entries after `position`, oldest first, when history still holds every one of them; otherwise why not.
   * A position equal to the current one is covered with no entries.
   */
  since(topic: string, position: StreamPosition): HistoryLookup {
    if (position.epoch !== this.epoch) return { covered: false, reason: 'epoch' };
    const stream = this.#streams.get(topic);
    const current = stream?.seq ?? 0;
    if (position.seq > current) return { covered: false, reason: 'future' };
    if (position.seq === current) return { covered: true, entries: [] };
    if (stream === undefined || stream.size === 0) return { covered: false, reason: 'expired' };
    const oldestAllowed = this.#now() - this.#ttlMs;
    const entries: LogEntry[] = [];
    for (let i = 0; i < stream.size; i++) {
      const entry = stream.ring[(stream.head + i) % this.#capacity] as LogEntry;
      if (entry.seq > position.seq) entries.push(entry);
    }
    const first = entries[0];
    if (first === undefined || first.seq !== position.seq + 1 || first.at < oldestAllowed) {
      return { covered: false, reason: 'expired' };
    }
    return { covered: true, entries };
  }

  #stream(topic: string): TopicStream {
    let stream = this.#streams.get(topic);
    if (stream === undefined) {
      stream = new TopicStream(this.#capacity);
      this.#streams.set(topic, stream);
    }
    return stream;
  }
}
