/**
 * The heartbeat of the gateway: every `intervalMs` each session is pinged (a protocol ping), and a session silent
 * for `timeoutMs` or longer (no pong, no frame) is handed to `onExpired`, which terminates it (`terminate()`, not
 * `close()`: a dead peer would never finish a closing handshake). The timer is unref'd; `stop()` is idempotent.
 *
 * @module
 */

/** What the heartbeat needs of one session. */
export interface HeartbeatPeer {
  /** When the peer last sent anything (a pong or a frame), ms since the epoch. */
  readonly lastSeenAt: number;
}

/** Options of {@link Heartbeat}. Durations in ms. */
export interface HeartbeatOptions<P extends HeartbeatPeer> {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Clock, ms since the epoch. */
  readonly now: () => number;
  /** The sessions to watch, read on every beat. */
  readonly peers: () => Iterable<P>;
  /** Sends `peer` a protocol ping. */
  readonly ping: (peer: P) => void;
  /** A peer silent for `timeoutMs` or longer: terminate it and tear it down. */
  readonly onExpired: (peer: P, silentMs: number) => void;
}

/** Pings every peer on an interval and reports the silent ones; see the module comment. */
export class Heartbeat<P extends HeartbeatPeer> {
  readonly #options: HeartbeatOptions<P>;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: HeartbeatOptions<P>) {
    this.#options = options;
  }

  /** Starts beating (no-op when already started). */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.beat(), this.#options.intervalMs);
    this.#timer.unref();
  }

  /** Stops beating. Idempotent. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One beat: expires the silent peers, pings the others. */
  beat(): void {
    const now = this.#options.now();
    for (const peer of this.#options.peers()) {
      const silentMs = now - peer.lastSeenAt;
      if (silentMs >= this.#options.timeoutMs) this.#options.onExpired(peer, silentMs);
      else this.#options.ping(peer);
    }
  }
}
