/**
 * The options of `WebSocketService` (with their defaults), its counters, and the small types its modules share.
 *
 * @module
 */
import type { TopicRegistry } from '../protocol/topic-registry.js';
import type { JsonBounds } from '../protocol/json-bounds.js';
import type { Authenticator } from '../security/auth.js';
import type { RateLimiterOptions } from '../security/limits.js';
import type { Logger } from '../shared/logger.js';
import type { Broker } from './broker.js';
import type { FrameCompressorOptions } from './deflate.js';
import type { Metrics } from './metrics.js';
/** Where an input refused by the JSON bounds came in (the `path` label of `citypulse_inputs_rejected_total`). */
export type InputPath = 'http' | 'ws' | 'library';

/**
 * Returns the current state of every topic (an object keyed by topic name), synchronously or as a Promise.
 * It is told which topics the caller needs (a provider may ignore it and return all of them).
 */
export type SnapshotProvider = (topics: readonly string[]) => unknown;

/** Options of {@link WebSocketService}. Durations in milliseconds. */
export interface WebSocketServiceOptions {
  /** How often protocol pings go out. Default 10000. */
  heartbeatIntervalMs?: number;
  /** A client silent (no pong, no frame) this long is terminated. Default 30000. */
  heartbeatTimeoutMs?: number;
  /**
   * The topics clients may subscribe to, with the schema every published UPDATE's entities must pass
   * (`src/protocol/topic-registry.ts`). Default: a registry of `topics`.
   */
  registry?: TopicRegistry;
  /**
   * Topic names, when no `registry` is given: catalog topics by name, other names with the base schema only.
   * Default `cameras`, `weather`, `accidents`, `airQuality`.
   */
  topics?: readonly string[];
  /**
   * Largest client frame accepted; a larger one closes the connection with 1009. Default 64 KiB. Also pass it as the
   * `WebSocketServer`'s `maxPayload` (as `createServer` does) so oversized frames are refused while being read.
   */
  maxPayloadBytes?: number;
  /** Most topics one client may be subscribed to. Default: the number of topics in the registry. */
  maxSubscriptionsPerClient?: number;
  /** Per-topic history kept for resume: entries. Default 1000. */
  historySize?: number;
  /** Per-topic history kept for resume: age. Default 300000 (5 min). */
  historyTtlMs?: number;
  /** Stop writing to a socket whose own buffer holds more than this, until it drains. Default 64 KiB. */
  highWaterBytes?: number;
  /**
   * A client that is behind (socket above `highWaterBytes`) with more than this queued by us has its queued UPDATEs
   * conflated: dropped, and replaced by one fresh per-topic SNAPSHOT once its socket drains. Default 32 KiB.
   */
  backlogBytes?: number;
  /** A client with more than this queued (ours plus its socket's) is closed with 4503 (slow consumer). Default 8 MiB. */
  maxQueuedBytes?: number;
  /** How long `close()` waits for clients to finish the closing handshake before terminating them. Default 2000. */
  closeTimeoutMs?: number;
  /**
   * A subscription whose snapshot failed (`SNAPSHOT_UNAVAILABLE`, the cluster store unreachable) is retried when the
   * broker says the store is back, and every this often while the broker reports it available. Default 1000.
   */
  snapshotRetryMs?: number;
  /**
   * Verifies `refresh` tokens. Connections get their principal from the upgrade handler (the third argument of the
   * `'connection'` event); without one they are anonymous (every topic).
   */
  authenticator?: Authenticator;
  /** Per-connection frame-rate limit (token bucket); `false` turns it off. Default 20/s, bursts of 100. */
  rateLimit?: RateLimiterOptions | false;
  /** Prometheus metrics to keep up to date. Default: none. */
  metrics?: Metrics;
  /** Structured logger (pino-compatible). Default: silent. */
  logger?: Logger;
  /** Clock, ms since the epoch. Default `Date.now`. */
  now?: () => number;
  /**
   * Bounds every input is checked against before it is stored or sequenced: `publish` / `broadcast` data, client
   * frames, and (through {@link WebSocketService.checkInput}) the HTTP API's bodies. Default
   * `DEFAULT_JSON_BOUNDS` (depth 64, 100,000 values, strings of 1 Mi characters, keys of 1024, 4 Mi in total).
   */
  jsonBounds?: Partial<JsonBounds>;
  /**
   * Encoded connect-time snapshot frames kept for the current snapshot (keyed by the canonical topic set and the
   * seqs; least recently used dropped first). Default 32.
   */
  snapshotCacheSize?: number;
  /** Fixed epoch for topic sequences (tests). Default: random per service. */
  epoch?: string;
  /**
   * permessage-deflate (RFC 7692) for clients that offer it: each outgoing message is compressed once, on its first
   * recipient that agreed, and the same bytes go to every such recipient; others get the plain frame. `true` or
   * options (threshold, level) turn it on, `false` off. Needs the `WebSocketServer`'s own `perMessageDeflate` off
   * (its default). Default: on (see docs/operations.md).
   */
  compression?: boolean | FrameCompressorOptions;
  /**
   * Where seqs, history and cross-node fan-out come from. Default: an `InMemoryBroker` (one process)
   * built from `historySize`, `historyTtlMs`, `now` and `epoch`.
   */
  broker?: Broker;
}

/** Counters the service keeps (for `/api/stats` and metrics). */
export interface ServiceCounters {
  /** Messages accepted by `publish`/`broadcastToTopic`/`broadcast`. */
  readonly published: number;
  /** Frames queued to clients (one per recipient). */
  readonly framesOut: number;
  /** Bytes handed to sockets. */
  readonly bytesOut: number;
  /** Socket writes made (each carries one or more frames). */
  readonly writes: number;
  /** Client frames received. */
  readonly framesIn: number;
  /** ERROR frames sent. */
  readonly errors: number;
  /** Connections terminated by the heartbeat. */
  readonly heartbeatTerminations: number;
  /** Connections closed for falling too far behind. */
  readonly slowConsumerCloses: number;
  /** Queued UPDATE frames dropped for clients that fell behind (replaced by fresh snapshots). */
  readonly conflatedFrames: number;
  /** Bytes queued by us for all clients right now (not yet handed to sockets). */
  readonly queuedBytes: number;
  /** Connections accepted since start. */
  readonly connectionsTotal: number;
  /** Inputs refused by the JSON bounds (library calls, client frames, HTTP bodies); none took a `seq`. */
  readonly rejected: number;
  /** Encoded snapshot frames cached right now (bounded by `snapshotCacheSize`). */
  readonly snapshotCacheEntries: number;
  /** Outgoing frames compressed (once per message and window size, however many recipients took the form). */
  readonly compressions: number;
}

/** The service's life: serving, draining its clients, done. */
export type ServiceState = 'running' | 'closing' | 'closed';

/** Defaults of {@link WebSocketServiceOptions} (ms, bytes). */
export const DEFAULTS = {
  heartbeatIntervalMs: 10_000,
  heartbeatTimeoutMs: 30_000,
  maxPayloadBytes: 64 * 1024,
  closeTimeoutMs: 2000,
  snapshotCacheSize: 32,
  compression: true as boolean | FrameCompressorOptions,
  snapshotRetryMs: 1000,
};
