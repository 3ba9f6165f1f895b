/**
 * The frames the gateway encodes itself, apart from the published ones the broker sequences: CONNECTED (from a
 * cached template), session replies (`{type, data, timestamp}`), connect-time and per-topic SNAPSHOTs (cached per
 * snapshot object, least recently used dropped), and replayed history entries (`recovered: true`, one per entry).
 * The `WebSocketService` owns one and sends what it makes.
 *
 * @module
 */
import { PROTOCOL_VERSION, ServerMessageType, type StreamPosition } from '../protocol/messages.js';
import { encodeEnvelope, markRecovered } from '../protocol/payloads.js';
import { encodeTextFrame } from './frame.js';
import type { LogEntry } from './topic-log.js';

/** What {@link ServerFrames} needs of its service. */
export interface ServerFramesOptions {
  /** The topic registry, in order (CONNECTED lists it). */
  readonly topics: readonly string[];
  /** Announced in CONNECTED. */
  readonly heartbeatIntervalMs: number;
  /** Announced in CONNECTED. */
  readonly heartbeatTimeoutMs: number;
  /** Most snapshot frames cached for the current snapshot object (at least 1). */
  readonly snapshotCacheSize: number;
  /** Clock, ms since the epoch. */
  readonly now: () => number;
  /** A topic's current position (its epoch goes into a SNAPSHOT whose state names none). */
  readonly position: (topic: string) => StreamPosition;
}

/** Encodes (and caches) the frames of one service; see the module comment. */
export class ServerFrames {
  readonly #topics: readonly string[];
  readonly #heartbeatIntervalMs: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #cacheSize: number;
  readonly #now: () => number;
  readonly #position: (topic: string) => StreamPosition;
  /**
   * Encoded snapshot frames of one snapshot object (the current state generation), by shape key; a new snapshot
   * object replaces them all. A `Map` in use order, so the least recently used entry goes first.
   */
  #snapshotCache: { owner: object; frames: Map<string, Buffer> } | null = null;
  /** Replayed frames (`recovered: true`) by history entry: built once, shared (and compressed once) by resumers. */
  readonly #recoveredFrames = new WeakMap<LogEntry, Buffer>();
  /** The three constant pieces of every CONNECTED frame (see `connectedFrame`). */
  #connectedTemplate: readonly [string, string, string] | null = null;
  #isoAt = Number.NaN;
  #iso = '';

  constructor(options: ServerFramesOptions) {
    this.#topics = options.topics;
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs;
    this.#heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    this.#cacheSize = Math.max(1, options.snapshotCacheSize);
    this.#now = options.now;
    this.#position = options.position;
  }

  /** Encoded snapshot frames cached right now. */
  get snapshotCacheEntries(): number {
    return this.#snapshotCache?.frames.size ?? 0;
  }

  /**
   * The connect-time SNAPSHOT; a topic state that has a `seq` carries the effective one (see `seqOf`) and, when it
   * names no epoch (a topic nothing was published on yet), the topic's current epoch: every topic's state carries
   * its epoch from the first frame on, so a client can resume from it.
   */
  fullSnapshotFrame(snapshot: unknown, topics: readonly string[], seqs: readonly number[]): Buffer {
    const epochs = topics.map((topic) => this.#position(topic).epoch);
    const key = `full:${topics.join(',')}:${seqs.join(',')}:${epochs.join(',')}`;
    return this.#cachedSnapshotFrame(snapshot, key, () => {
      const data: Record<string, unknown> = {};
      topics.forEach((topic, i) => {
        const state = topicStateOf(snapshot, topic);
        const seq = seqs[i] ?? 0;
        // None yet (a cluster topic never published) is left out, not sent as "".
        const epoch = epochOf(state) === undefined ? epochs[i] || undefined : undefined;
        data[topic] =
          ownSeq(state) === null || (ownSeq(state) === seq && epoch === undefined)
            ? state
            : { ...(state as object), seq, ...(epoch === undefined ? {} : { epoch }) };
      });
      return encodeEnvelope({
        type: ServerMessageType.Snapshot,
        data,
        timestamp: new Date(this.#now()).toISOString(),
      });
    });
  }

  /** A per-topic SNAPSHOT at `seq` (`recovered: false` when it stands in for a resume that could not replay). */
  topicSnapshotFrame(snapshot: unknown, topic: string, seq: number, recoveryFallback: boolean): Buffer {
    const own = topicStateOf(snapshot, topic);
    const state = ownSeq(own) === null || ownSeq(own) === seq ? own : { ...(own as object), seq };
    const encode = (): string =>
      encodeEnvelope({
        type: ServerMessageType.Snapshot,
        topic,
        data: state,
        timestamp: new Date(this.#now()).toISOString(),
        seq,
        // Per-topic epoch; none yet (a cluster topic never published) is left out, not sent as "".
        epoch: epochOf(state) ?? (this.#position(topic).epoch || undefined),
        recovered: recoveryFallback ? false : undefined,
      });
    return this.#cachedSnapshotFrame(
      snapshot,
      `topic:${topic}:${seq}:${recoveryFallback ? 'r' : ''}`,
      encode,
    );
  }

  /**
   * The encoded frame of `key` for `snapshot`, from the cache when this snapshot object encoded it before. Only the
   * current snapshot object's frames are kept, at most `snapshotCacheSize` of them (least recently used dropped),
   * and `key` is built from canonical values only (registry-ordered topic sets, seqs), never from raw client input.
   */
  #cachedSnapshotFrame(snapshot: unknown, key: string, encode: () => string): Buffer {
    if (typeof snapshot !== 'object' || snapshot === null) return encodeTextFrame(encode());
    if (this.#snapshotCache?.owner !== snapshot) this.#snapshotCache = { owner: snapshot, frames: new Map() };
    const frames = this.#snapshotCache.frames;
    let frame = frames.get(key);
    if (frame === undefined) {
      frame = encodeTextFrame(encode());
      if (frames.size >= this.#cacheSize) frames.delete(frames.keys().next().value as string);
    } else {
      frames.delete(key); // re-inserted below as the most recently used
    }
    frames.set(key, frame);
    return frame;
  }

  /**
   * CONNECTED, built from a cached JSON template: only the client id, the subscribed list and the timestamp vary.
   * Byte-for-byte what `#frame(Connected, {...})` makes (`test/server/connect-path.test.ts` checks it).
   */
  connectedFrame(clientId: string, subscribed: readonly string[]): Buffer {
    this.#connectedTemplate ??= [
      `{"type":${JSON.stringify(ServerMessageType.Connected)},"data":{"clientId":`,
      `,"protocol":${JSON.stringify(PROTOCOL_VERSION)},"topics":${JSON.stringify(this.#topics)},"subscribed":`,
      `,"heartbeat":${JSON.stringify({ intervalMs: this.#heartbeatIntervalMs, timeoutMs: this.#heartbeatTimeoutMs })}},"timestamp":`,
    ];
    const [a, b, c] = this.#connectedTemplate;
    return encodeTextFrame(
      `${a}${JSON.stringify(clientId)}${b}${JSON.stringify(subscribed)}${c}${JSON.stringify(this.isoNow())}}`,
    );
  }

  /**
   * A history entry as a replayed frame (`recovered: true`), made once per entry: clients resuming the same range
   * (a reconnect wave after a deploy) share the frame and so its compressed form. A broker that builds new entries
   * per lookup (Redis) simply gets a new frame each time.
   */
  recoveredFrame(entry: LogEntry): Buffer {
    let frame = this.#recoveredFrames.get(entry);
    if (frame === undefined) {
      frame = encodeTextFrame(markRecovered(entry.json, true));
      this.#recoveredFrames.set(entry, frame);
    }
    return frame;
  }

  /** The clock as ISO-8601, formatted once per millisecond. */
  isoNow(): string {
    const now = this.#now();
    if (now !== this.#isoAt) {
      this.#isoAt = now;
      this.#iso = new Date(now).toISOString();
    }
    return this.#iso;
  }

  /** A reply frame `{type, data, timestamp}` made for one session. */
  frame(type: ServerMessageType, data: unknown): Buffer {
    return encodeTextFrame(encodeEnvelope({ type, data, timestamp: this.isoNow() }));
  }
}

/** The state of `topic` in a provider's snapshot, or null. */
function topicStateOf(snapshot: unknown, topic: string): unknown {
  if (typeof snapshot !== 'object' || snapshot === null) return null;
  return (snapshot as Record<string, unknown>)[topic] ?? null;
}

/** The epoch a topic state says it belongs to, if any. */
function epochOf(state: unknown): string | undefined {
  if (typeof state !== 'object' || state === null) return undefined;
  const epoch = (state as { epoch?: unknown }).epoch;
  return typeof epoch === 'string' ? epoch : undefined;
}

/** The `seq` a topic state carries, when it is a safe integer. */
function ownSeq(state: unknown): number | null {
  if (typeof state !== 'object' || state === null) return null;
  const seq = (state as { seq?: unknown }).seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) ? seq : null;
}

/**
 * The seq a topic's snapshot stands for: the later of its own `seq` and the topic's position when the provider was
 * called. Frames between the two changed no state (raw publishes, ALERTs) and were sent before the client asked,
 * so the client starts after them and sees no gap. A state from another epoch keeps its own `seq`.
 */
export function seqOf(snapshot: unknown, topic: string, callTimeSeqs: Map<string, StreamPosition>): number {
  const state = topicStateOf(snapshot, topic);
  const own = ownSeq(state);
  const atCall = callTimeSeqs.get(topic);
  if (atCall === undefined) return own ?? 0;
  if (own === null) return atCall.seq;
  const stateEpoch = epochOf(state);
  return stateEpoch !== undefined && stateEpoch !== atCall.epoch ? own : Math.max(own, atCall.seq);
}
