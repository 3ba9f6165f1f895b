/**
 * The default broker: one process, sequences and history in memory (a {@link TopicLog}), delivery synchronous and
 * inline. This is the single-node fast path: no I/O and no Promise per publish.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { StreamPosition } from '../protocol/messages.js';
import { TopicLog, type HistoryLookup, type TopicLogOptions } from './topic-log.js';
import { encodeSequenced, type Broker, type BrokerHost, type SequencedMessage } from './broker.js';

/** Options of {@link InMemoryBroker}: those of the history it keeps, and a node id. */
export interface InMemoryBrokerOptions extends TopicLogOptions {
  /** Default: a random UUID. */
  nodeId?: string;
}

/** A {@link Broker} for a single process. */
export class InMemoryBroker implements Broker {
  readonly nodeId: string;
  readonly #log: TopicLog;
  #host: BrokerHost | null = null;

  constructor(options: InMemoryBrokerOptions = {}) {
    this.nodeId = options.nodeId ?? randomUUID();
    this.#log = new TopicLog(options);
  }

  attach(host: BrokerHost): void {
    this.#host = host;
  }

  /** Synchronous: the frame has been delivered locally when this returns. */
  publish(topic: string, message: SequencedMessage): StreamPosition {
    const seq = this.#log.next(topic);
    const epoch = this.#log.epoch;
    const json = encodeSequenced(topic, message, seq, epoch);
    this.#log.record(topic, seq, json);
    this.#host?.deliver(topic, seq, json);
    return { epoch, seq };
  }

  position(topic: string): StreamPosition {
    return this.#log.position(topic);
  }

  since(topic: string, position: StreamPosition): HistoryLookup {
    return this.#log.since(topic, position);
  }

  close(): Promise<void> {
    this.#host = null;
    return Promise.resolve();
  }
}
