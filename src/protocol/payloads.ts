/**
 * Typed wire data: the `data` of UPDATE, ALERT and SNAPSHOT frames per topic, a typed reading of ALERT data for
 * consumers (the dashboard, SDK users), and the one envelope encoder every server frame goes through.
 *
 * The encoder fixes the key order of an envelope (`type`, `topic`, `data`, `timestamp`, `seq`, `epoch`,
 * `recovered`), so no code depends on splicing JSON strings; a frame is still encoded once per publish (and a
 * replayed one once per history entry).
 *
 * @module
 */
import type {
  AlertPayload,
  AlertSeverity,
  EntityBase,
  EntityChange,
  TopicEntityMap,
  TopicState,
} from './topics.js';

export type { AlertPayload, PublishedAlert } from './topics.js';

/** The entity type of topic `T`: the city topics' own, {@link EntityBase} for any other topic. */
export type EntityOf<T extends string> = T extends keyof TopicEntityMap ? TopicEntityMap[T] : EntityBase;

/** `data` of an UPDATE on topic `T`: a change by the state model (`state-model.ts`). */
export type UpdatePayload<T extends string> = EntityChange<EntityOf<T>>;

/** `data` of a per-topic SNAPSHOT of topic `T` (and each value of a full SNAPSHOT). */
export type SnapshotPayload<T extends string> = TopicState<EntityOf<T>>;

/** A sequenced UPDATE frame of topic `T`, as a client receives it. */
export interface TopicUpdateFrame<T extends string = string> {
  readonly type: 'UPDATE';
  readonly topic: T;
  readonly data: UpdatePayload<T>;
  readonly timestamp: string;
  readonly seq: number;
  readonly epoch: string;
  readonly recovered?: boolean;
}

/** A sequenced ALERT frame of topic `T`. */
export interface TopicAlertFrame<T extends string = string> {
  readonly type: 'ALERT';
  readonly topic: T;
  readonly data: AlertPayload;
  readonly timestamp: string;
  readonly seq: number;
  readonly epoch: string;
  readonly recovered?: boolean;
}

/** A per-topic SNAPSHOT frame of topic `T`. */
export interface TopicSnapshotFrame<T extends string = string> {
  readonly type: 'SNAPSHOT';
  readonly topic: T;
  readonly data: SnapshotPayload<T>;
  readonly timestamp: string;
  readonly seq: number;
  readonly epoch?: string;
  readonly recovered?: boolean;
}

/** One typed view of any ALERT's data: what the dashboard shows and SDK users read. */
export interface AlertView {
  /** The alert's id when it has one (rule alerts do; the `resolved` one repeats it). */
  readonly id: string | undefined;
  readonly severity: AlertSeverity;
  readonly message: string;
  /** The topic it concerns (the data's own `topic`, else the frame's). */
  readonly topic: string | undefined;
  readonly state: 'raised' | 'resolved';
  /** When it was raised (rule alerts), else `undefined`. */
  readonly raisedAt: string | undefined;
  /** The rule that raised it (rule alerts). */
  readonly rule: string | undefined;
}

const SEVERITIES: readonly AlertSeverity[] = ['info', 'warning', 'critical'];

/**
 * Reads any ALERT's `data` as an {@link AlertView}: a rule's `CityAlert`, a published `{ message, severity? }`,
 * a bare string, or other JSON (shown as its first 200 characters). Unknown severities read as `warning`.
 */
export function readAlert(data: unknown, topic?: string): AlertView {
  const record =
    typeof data === 'object' && data !== null && !Array.isArray(data)
      ? (data as Record<string, unknown>)
      : {};
  const severity = SEVERITIES.find((s) => s === record.severity) ?? 'warning';
  const message =
    typeof data === 'string'
      ? data
      : typeof record.message === 'string'
        ? record.message
        : typeof record.title === 'string'
          ? record.title
          : (JSON.stringify(data) ?? '').slice(0, 200);
  return {
    id: typeof record.id === 'string' ? record.id : undefined,
    severity,
    message,
    topic: typeof record.topic === 'string' ? record.topic : topic,
    state: record.state === 'resolved' ? 'resolved' : 'raised',
    raisedAt: typeof record.raisedAt === 'string' ? record.raisedAt : undefined,
    rule: typeof record.rule === 'string' ? record.rule : undefined,
  };
}

/** The fields of a server envelope, in the order they are encoded. Absent (`undefined`) fields are left out. */
export interface Envelope {
  readonly type: string;
  readonly topic?: string | undefined;
  readonly data: unknown;
  readonly timestamp: string;
  readonly seq?: number | undefined;
  readonly epoch?: string | undefined;
  readonly recovered?: boolean | undefined;
}

/** Encodes a server frame: the one encoder of every envelope, with a fixed key order (see the module). */
export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify({
    type: envelope.type,
    topic: envelope.topic,
    data: envelope.data,
    timestamp: envelope.timestamp,
    seq: envelope.seq,
    epoch: envelope.epoch,
    recovered: envelope.recovered,
  });
}

/**
 * An encoded sequenced frame again, marked `recovered` (a replay from history): decoded and encoded by
 * {@link encodeEnvelope}, not spliced. Callers cache the result per history entry.
 */
export function markRecovered(json: string, recovered: boolean): string {
  return encodeEnvelope({ ...(JSON.parse(json) as Envelope), recovered });
}
