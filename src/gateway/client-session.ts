/**
 * Per-connection state of the service: identity, the outbound queue, liveness, and the frames held back while a
 * snapshot is being prepared (so a client never sees a live frame before the snapshot it follows).
 *
 * @module
 */
import type { RawData } from 'ws';
import { Outbox } from './outbound.js';
import type { Transport } from './transport.js';
import type { ConnectionGuard } from '../security/connection-guard.js';

/**
 * Lifecycle of a connection:
 * `handshaking` (CONNECTED sent, initial SNAPSHOT pending; client frames wait in the inbox) ->
 * `open` -> `closed` (removed from every index; nothing more is sent).
 */
export type SessionState = 'handshaking' | 'open' | 'closed';

/** A live frame held for a topic whose snapshot is pending. */
export interface HeldFrame {
  readonly seq: number;
  readonly frame: Buffer;
}

/** A client frame received while handshaking, handled once the session opens. */
export interface InboxFrame {
  readonly data: RawData;
  readonly isBinary: boolean;
}

/** Most client frames kept while handshaking; more are answered with RATE_LIMITED. */
export const MAX_INBOX_FRAMES = 64;

/** One connected client. */
export class ClientSession extends Outbox {
  state: SessionState = 'handshaking';
  /** Last time anything (a pong or a frame) arrived, from the service clock. */
  lastSeenAt: number;
  /** Topics whose snapshot is pending -> live frames held for them. `null` when none is pending. */
  held: Map<string, HeldFrame[]> | null = null;
  /** Frames to everyone sent while handshaking; they follow the initial snapshot. */
  heldBroadcasts: Buffer[] | null = null;
  /** Client frames that arrived while handshaking. */
  inbox: InboxFrame[] | null = null;
  /**
   * Topics whose queued UPDATEs were dropped because the client fell behind: further UPDATEs for them are skipped
   * until the socket drains, then a fresh per-topic SNAPSHOT replaces them all. ALERTs are never dropped.
   */
  stale: Set<string> | null = null;
  /** The connection's principal, frame-rate verdicts and token expiry. */
  guard: ConnectionGuard | null = null;

  constructor(
    readonly id: string,
    transport: Transport,
    /** Remote address, for logs and per-IP limits. */
    readonly remoteAddress: string,
    readonly connectedAt: number,
  ) {
    super(transport);
    this.lastSeenAt = connectedAt;
  }

  /** Marks `topic` as waiting for its snapshot; live frames for it are held from now on. */
  holdTopic(topic: string): void {
    if (this.held === null) this.held = new Map();
    if (!this.held.has(topic)) this.held.set(topic, []);
  }

  /** Stops holding `topic`; returns what was held. */
  releaseTopic(topic: string): HeldFrame[] {
    const frames = this.held?.get(topic) ?? [];
    this.held?.delete(topic);
    if (this.held !== null && this.held.size === 0) this.held = null;
    return frames;
  }
}
