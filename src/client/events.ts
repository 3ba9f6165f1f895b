/**
 * The client's public event types: the connection states, the typed event map of `client.on()` and the events a
 * subscription handler receives.
 *
 * @module
 */
import type {
  AlertMessage,
  ConnectedMessage,
  ServerMessage,
  SnapshotMessage,
  UpdateMessage,
} from '../protocol/messages.js';
import type { AlertView } from '../protocol/payloads.js';
import type { EntityBase, EntityChange, TopicEntityMap } from '../protocol/topics.js';
import type { ClientError } from './errors.js';

/** States of the connection. `closed` is final. */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** Payload of the `state` event. */
export interface StateChange {
  readonly newState: ConnectionState;
  readonly oldState: ConnectionState;
}

/** The entity type of a topic: the city topics' own types, `EntityBase` for any other topic. */
export type EntityOf<T extends string> = T extends keyof TopicEntityMap ? TopicEntityMap[T] : EntityBase;

/** What the server said in `CONNECTED`. */
export type ServerInfo = ConnectedMessage['data'];

/** Payload of the `snapshot` event: a topic's state was replaced by a snapshot. */
export interface SnapshotEvent<E extends EntityBase = EntityBase> {
  readonly topic: string;
  /** The frame: a per-topic SNAPSHOT, or the full SNAPSHOT this topic was part of. */
  readonly message: SnapshotMessage;
  readonly entities: ReadonlyMap<string, E>;
}

/** Payload of the `update` event: an UPDATE was folded into its topic (or was broadcast without a topic). */
export interface UpdateEvent<E extends EntityBase = EntityBase> {
  readonly topic: string | undefined;
  readonly message: UpdateMessage;
  /** The entity change it carried, or `null` when its `data` is not one. */
  readonly change: EntityChange<E> | null;
}

/** Payload of the `alert` event. */
export interface AlertEvent {
  readonly topic: string | undefined;
  readonly message: AlertMessage;
  /** The alert's data read by the protocol (`readAlert`): one typed view of rule and published alerts. */
  readonly alert: AlertView;
}

/** Events of the client, by name. */
export interface ClientEvents {
  /** The connection state changed. */
  state: StateChange;
  /** A connection was established (after the state became `connected`). */
  connected: ServerInfo;
  snapshot: SnapshotEvent;
  update: UpdateEvent;
  alert: AlertEvent;
  /** Every valid frame, after the client processed it. */
  message: ServerMessage;
  error: ClientError;
}

/** What a subscription handler receives: every snapshot, update and alert of its topic, in order. */
export type TopicEvent<E extends EntityBase = EntityBase> =
  | {
      readonly type: 'snapshot';
      readonly topic: string;
      readonly message: SnapshotMessage;
      readonly entities: ReadonlyMap<string, E>;
    }
  | {
      readonly type: 'update';
      readonly topic: string;
      readonly message: UpdateMessage;
      readonly change: EntityChange<E> | null;
      readonly entities: ReadonlyMap<string, E>;
    }
  | {
      readonly type: 'alert';
      readonly topic: string;
      readonly message: AlertMessage;
      /** The alert's data read by the protocol (`readAlert`). */
      readonly alert: AlertView;
      readonly entities: ReadonlyMap<string, E>;
    };

/** A subscription handler. */
export type TopicHandler<E extends EntityBase = EntityBase> = (event: TopicEvent<E>) => void;
