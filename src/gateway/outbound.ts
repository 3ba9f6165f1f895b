/**
 * The outbound path: a bounded queue per client and a scheduler that coalesces every frame due to a socket within
 * one event-loop turn into a single write. On loopback most of a WebSocket server's CPU is kernel time per write, so
 * a burst of N messages to a client costs one syscall, not N.
 *
 * @module
 */
import type { Transport } from './transport.js';

/** Called with a client's outbox at a turning point of its backlog; the owner decides what to do. */
export type OutboxHandler<T extends Outbox> = (outbox: T) => void;

/** A client's pending frames. Owned by one {@link OutboundScheduler}; extended by the service's client session. */
export class Outbox {
  /** Frames not yet written, oldest first. */
  frames: Buffer[] = [];
  /** Sum of `frames` lengths. */
  bytes = 0;
  /** In the scheduler's dirty list. */
  scheduled = false;
  /** Waiting for the transport's 'drain'. */
  waitingForDrain = false;
  /** Set once the client is gone; queued frames are dropped. */
  closed = false;
  /** Queue size at which the backlog handler runs next. */
  backlogCheckAt = 0;
  /** permessage-deflate window (bits) this client agreed to, or 0: it takes plain frames only (see `deflate.ts`). */
  windowBits = 0;

  constructor(readonly transport: Transport) {}
}

/** Options of {@link OutboundScheduler}. */
export interface OutboundSchedulerOptions<T extends Outbox> {
  /** Above this many bytes in the transport's own buffer, stop writing and wait for 'drain'. Default 64 KiB. */
  highWaterBytes?: number;
  /**
   * While a client is behind (its transport above `highWaterBytes`), our queue for it passing this many bytes calls
   * `onBacklog` (which may drop what can be rebuilt); it runs again only once the queue has doubled. Default 32 KiB.
   */
  backlogBytes?: number;
  /** Bound of a client's queue (ours plus the transport's). Passing it calls `onOverflow`. Default 8 MiB. */
  maxQueuedBytes?: number;
  /** The client passed `maxQueuedBytes`. */
  onOverflow: OutboxHandler<T>;
  /** The client passed `backlogBytes` while behind. */
  onBacklog?: OutboxHandler<T>;
  /** The transport of a client that was behind has drained. */
  onDrained?: OutboxHandler<T>;
}

/** A joined run of frames, kept for the rest of one flush. */
interface JoinedRun {
  readonly frames: readonly Buffer[];
  readonly joined: Buffer;
}

/** Most distinct runs starting with the same frame kept per flush (clients with their own extra frames). */
const MAX_RUNS_PER_FIRST_FRAME = 16;

/**
 * Coalesces frames per client and writes them once per event-loop turn. Clients due the same run of frames in a
 * turn (the subscribers of one topic, typically) share one joined buffer: the join is done once per flush, not
 * once per client.
 */
export class OutboundScheduler<T extends Outbox = Outbox> {
  readonly #dirty: T[] = [];
  /** Joined runs of the current flush, by their first frame. */
  #joined = new Map<Buffer, JoinedRun[]>();
  #immediate: NodeJS.Immediate | null = null;
  readonly #highWater: number;
  readonly #maxQueued: number;
  readonly #backlogBytes: number;
  readonly #onOverflow: OutboxHandler<T>;
  readonly #onBacklog: OutboxHandler<T> | undefined;
  readonly #onDrained: OutboxHandler<T> | undefined;
  /** Frames handed to transports. */
  framesWritten = 0;
  /** Bytes handed to transports. */
  bytesWritten = 0;
  /** Writes (syscall candidates) made. */
  writes = 0;

  constructor(options: OutboundSchedulerOptions<T>) {
    this.#highWater = options.highWaterBytes ?? 64 * 1024;
    this.#maxQueued = options.maxQueuedBytes ?? 8 * 1024 * 1024;
    this.#backlogBytes = options.backlogBytes ?? 32 * 1024;
    this.#onOverflow = options.onOverflow;
    this.#onBacklog = options.onBacklog;
    this.#onDrained = options.onDrained;
  }

  /** Queues `frame` for `outbox`; it leaves in this turn's flush. */
  enqueue(outbox: T, frame: Buffer): void {
    if (outbox.closed) return;
    outbox.frames.push(frame);
    outbox.bytes += frame.length;
    if (outbox.waitingForDrain && outbox.bytes > Math.max(this.#backlogBytes, outbox.backlogCheckAt)) {
      this.#onBacklog?.(outbox);
      outbox.backlogCheckAt = outbox.bytes * 2;
    }
    if (outbox.bytes + outbox.transport.bufferedBytes > this.#maxQueued) {
      this.#onOverflow(outbox);
      return;
    }
    this.#markDirty(outbox);
  }

  /** Keeps only the queued frames `keep` accepts (the backlog handler's tool). Returns how many were dropped. */
  retain(outbox: T, keep: (frame: Buffer) => boolean): number {
    const kept = outbox.frames.filter(keep);
    const dropped = outbox.frames.length - kept.length;
    outbox.frames = kept;
    outbox.bytes = kept.reduce((n, frame) => n + frame.length, 0);
    return dropped;
  }

  /** Writes everything queued for `outbox` now (before a close frame, say). */
  flushNow(outbox: T): void {
    this.#write(outbox, true);
    if (this.#immediate === null && this.#joined.size > 0) this.#joined = new Map();
  }

  /** Drops everything queued for `outbox` and forgets it. */
  discard(outbox: Outbox): void {
    outbox.closed = true;
    outbox.frames = [];
    outbox.bytes = 0;
  }

  /** Cancels the pending flush (service shutdown). */
  dispose(): void {
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    this.#immediate = null;
    this.#dirty.length = 0;
  }

  #markDirty(outbox: T): void {
    if (outbox.scheduled || outbox.waitingForDrain) return;
    outbox.scheduled = true;
    this.#dirty.push(outbox);
    if (this.#immediate === null) this.#immediate = setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#immediate = null;
    const dirty = this.#dirty.splice(0, this.#dirty.length);
    for (const outbox of dirty) {
      outbox.scheduled = false;
      this.#write(outbox, false);
    }
    if (this.#joined.size > 0) this.#joined = new Map();
  };

  /** The frames as one buffer, shared with every other client due the very same frames in this flush. */
  #join(frames: readonly Buffer[], bytes: number): Buffer {
    const first = frames[0] as Buffer;
    if (frames.length === 1) return first;
    let runs = this.#joined.get(first);
    if (runs === undefined) {
      runs = [];
      this.#joined.set(first, runs);
    } else {
      for (const run of runs) if (sameFrames(run.frames, frames)) return run.joined;
    }
    const joined = Buffer.concat(frames, bytes);
    if (runs.length < MAX_RUNS_PER_FIRST_FRAME) runs.push({ frames, joined });
    return joined;
  }

  #write(outbox: T, force: boolean): void {
    if (outbox.closed || outbox.frames.length === 0) return;
    const transport = outbox.transport;
    if (!transport.isOpen) {
      this.discard(outbox);
      return;
    }
    if (!force && transport.bufferedBytes > this.#highWater) {
      if (!outbox.waitingForDrain) {
        outbox.waitingForDrain = true;
        transport.onceDrained(() => {
          outbox.waitingForDrain = false;
          outbox.backlogCheckAt = 0;
          if (outbox.closed) return;
          this.#onDrained?.(outbox);
          if (outbox.frames.length > 0) this.#markDirty(outbox);
        });
      }
      return;
    }
    const frames = outbox.frames;
    const bytes = outbox.bytes;
    outbox.frames = [];
    outbox.bytes = 0;
    transport.write(this.#join(frames, bytes));
    this.framesWritten += frames.length;
    this.bytesWritten += bytes;
    this.writes++;
  }
}

function sameFrames(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
