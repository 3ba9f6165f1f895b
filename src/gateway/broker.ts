/**
 * The seam between a node's `WebSocketService` and the rest of the cluster. A broker assigns each UPDATE/ALERT its
 * topic's `seq`, keeps the topic's history for resume, and hands every sequenced frame to the local service
 * (`BrokerHost.deliver`) exactly once and in `seq` order — whichever node published it.
 *
 * Two implementations: {@link InMemoryBroker} (the default, one process, no I/O, synchronous) and `RedisBroker`
 * (several processes sharing seqs, history and state through Redis; asynchronous).
 *
 * @module
 */
import type { StreamPosition } from '../protocol/messages.js';
import { encodeEnvelope } from '../protocol/payloads.js';
import type { TopicRegistry } from '../protocol/topic-registry.js';
import type { HistoryLookup } from './topic-log.js';

/** A value now, or later. The in-memory broker always answers now (no Promise on the fast path). */
export type MaybePromise<T> = T | Promise<T>;

/** What a broker sequences: an UPDATE or ALERT on a topic. */
export interface SequencedMessage {
  readonly type: 'UPDATE' | 'ALERT';
  readonly data: unknown;
  /** ISO-8601. */
  readonly timestamp: string;
}

/** What a broker calls back into the node it serves (the `WebSocketService`). */
export interface BrokerHost {
  /**
   * Fans an encoded UPDATE/ALERT frame out to this node's subscribers of `topic`. Called once per `seq`, in `seq`
   * order within an epoch.
   */
  deliver(topic: string, seq: number, json: string): void;
  /** Number of this node's clients subscribed to `topic`. */
  subscribers(topic: string): number;
  /**
   * The topic's stream restarted (new epoch) or lost frames no history can fill: every local subscriber of `topic`
   * needs a fresh snapshot.
   */
  resync(topic: string): void;
  /**
   * The topic's stream restarted at seq 0 of `epoch` with an empty state (the cluster store lost its data), and
   * every frame of that epoch follows through `deliver`, from seq 1: each local subscriber gets an empty SNAPSHOT
   * at seq 0 of `epoch` (`recovered: false`), so it sees every frame of the new epoch, ALERTs included.
   */
  restart(topic: string, epoch: string): void;
  /**
   * The cluster store answers again after being down or stalled: snapshots and resumes that failed meanwhile
   * (`SNAPSHOT_UNAVAILABLE`) can be retried now.
   */
  available(): void;
  /** Sends a frame broadcast by another node to every local client. */
  broadcast(json: string): void;
  /**
   * The node's topic registry: a broker that checks the UPDATEs published to it (the Redis broker) uses it, unless
   * it was given one of its own.
   */
  readonly registry?: TopicRegistry;
}

/** Sequencing, history and fan-out across the nodes of a deployment. */
export interface Broker {
  /** Identifies this node (in logs, stats and the frames it publishes). */
  readonly nodeId: string;
  /** Binds the broker to its node's service. Called once, by the service's constructor. */
  attach(host: BrokerHost): void;
  /**
   * Gives `message` the topic's next `seq`, keeps it in history and delivers it to every node's subscribers (this
   * node's through `BrokerHost.deliver`). Resolves to the position it took.
   */
  publish(topic: string, message: SequencedMessage): MaybePromise<StreamPosition>;
  /** The topic's latest position as this node knows it (may lag the cluster's by the frames in flight). */
  position(topic: string): StreamPosition;
  /**
   * The frames after `position`, oldest first, when history still holds every one of them. Frames published after
   * the lookup are delivered live (the node listens to the topic before it reads history).
   */
  since(topic: string, position: StreamPosition): MaybePromise<HistoryLookup>;
  /**
   * Sends an encoded to-everyone frame (no topic, no seq) to the clients of every *other* node; the caller has
   * delivered it locally. Best effort (not kept in history). Absent on a single-process broker.
   */
  broadcast?(json: string): void;
  /**
   * Whether the store answers now (a snapshot or resume may succeed). Absent on a broker that is always available.
   */
  isAvailable?(): boolean;
  /** Stops every timer and connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * The JSON of a sequenced frame, as every subscriber receives it (and as history keeps it). Also used for a
 * SNAPSHOT published on a topic, which carries the topic's current position.
 */
export function encodeSequenced(
  topic: string,
  message: { readonly type: string; readonly data: unknown; readonly timestamp: string },
  seq: number,
  epoch: string,
): string {
  return encodeEnvelope({
    type: message.type,
    topic,
    data: message.data,
    timestamp: message.timestamp,
    seq,
    epoch,
  });
}
