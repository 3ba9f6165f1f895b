/**
 * The citypulse wire protocol, version 1: the one source of truth imported by the server, the client SDK and the
 * dashboard. `docs/protocol.md` is its prose; keep the two in step.
 *
 * Transport: WebSocket at `ws://HOST:PORT/ws`, JSON text frames, one message per frame.
 *
 * @module
 */

import { DEFAULT_JSON_BOUNDS, checkJsonBounds, type JsonBounds } from './json-bounds.js';
import { isRecord } from './json-value.js';
export { assertNever } from './assert-never.js';

export {
  DEFAULT_JSON_BOUNDS,
  JsonBoundsError,
  assertJsonBounds,
  checkJsonBounds,
  resolveJsonBounds,
  type JsonBounds,
  type JsonBoundsCode,
  type JsonBoundsViolation,
} from './json-bounds.js';

/** Bumped on any incompatible change of the frames below. Sent in `CONNECTED.data.protocol`. */
export const PROTOCOL_VERSION = 1;

/** Path of the WebSocket endpoint on the HTTP server. */
export const WS_PATH = '/ws';

/** The topics a default citypulse server knows. Servers may be configured with others. */
export const DEFAULT_TOPICS = ['cameras', 'weather', 'accidents', 'airQuality'] as const;

/** A topic name of the default registry. */
export type CityTopic = (typeof DEFAULT_TOPICS)[number];

/** Topic names are 1-64 characters of letters, digits and `_ . : -`. */
export const TOPIC_NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

// ---------------------------------------------------------------------------------------------------------------
// Server -> client
// ---------------------------------------------------------------------------------------------------------------

/** Types of the frames the server sends. Direction of every one: server -> client. */
export enum ServerMessageType {
  /** First frame of every connection: who you are, what exists, the heartbeat contract. */
  Connected = 'CONNECTED',
  /** Current state: of all subscribed topics (second frame) or of one topic (`topic` set, after subscribe). */
  Snapshot = 'SNAPSHOT',
  /** A change on a topic; carries the topic's `seq`. */
  Update = 'UPDATE',
  /** An alert on a topic (or to everyone when broadcast); carries the topic's `seq` when on a topic. */
  Alert = 'ALERT',
  /** Answer to a client `ping`, echoing its `id`. */
  Pong = 'PONG',
  /** Acknowledges a `subscribe`; precedes the per-topic snapshots. */
  Subscribed = 'SUBSCRIBED',
  /** Acknowledges an `unsubscribe`. */
  Unsubscribed = 'UNSUBSCRIBED',
  /** A request could not be served; the connection stays open. */
  Error = 'ERROR',
}

/**
 * The message shape of the design document, kept for compatibility: what `WebSocketService.broadcast()` and
 * `broadcastToTopic()` take. `data` is whatever the publisher wants delivered; it must be JSON-serialisable.
 */
export interface WebSocketMessage<TData = unknown> {
  type: 'UPDATE' | 'ALERT' | 'SNAPSHOT' | 'PONG';
  topic?: string;
  data: TData;
  /** ISO-8601. */
  timestamp: string;
}

/** Fields every server frame has. */
interface ServerEnvelope<TType extends ServerMessageType, TData> {
  readonly type: TType;
  readonly data: TData;
  /** ISO-8601 time the server produced (or received) the message. */
  readonly timestamp: string;
}

/** Heartbeat contract the server advertises in `CONNECTED`. */
export interface HeartbeatInfo {
  /** The server sends a protocol ping this often. */
  readonly intervalMs: number;
  /** A client silent (no pong, no frame) for this long is dropped. Clients may use it as their own watchdog. */
  readonly timeoutMs: number;
}

/** `CONNECTED`: always the first frame. */
export interface ConnectedMessage extends ServerEnvelope<
  ServerMessageType.Connected,
  {
    readonly clientId: string;
    readonly protocol: number;
    /** Every topic name the server serves. */
    readonly topics: readonly string[];
    /** Topics this connection is subscribed to (from `?topics=`), possibly empty. */
    readonly subscribed: readonly string[];
    readonly heartbeat: HeartbeatInfo;
  }
> {}

/** The snapshot of one topic, as held under its name in a full SNAPSHOT or as `data` of a per-topic one. */
export type TopicSnapshot = unknown;

/** `SNAPSHOT`. Without `topic`: `data` maps topic name -> that topic's state. With `topic`: `data` is its state. */
export interface SnapshotMessage extends ServerEnvelope<ServerMessageType.Snapshot, unknown> {
  readonly topic?: string;
  /** Per-topic snapshot: the `seq` of the last UPDATE/ALERT this state reflects (0 if none yet). */
  readonly seq?: number;
  /** Per-topic snapshot: the epoch the `seq` belongs to. */
  readonly epoch?: string;
  /**
   * Present (always `false`) when this snapshot replaces the client's state: a resume history could not cover, a
   * stream restart or unrecoverable gap, or conflated UPDATEs of a slow consumer.
   */
  readonly recovered?: false;
}

/** `UPDATE` on a topic. */
export interface UpdateMessage extends ServerEnvelope<ServerMessageType.Update, unknown> {
  readonly topic?: string;
  /** Per-topic sequence number, 1, 2, 3, ... within an `epoch`. Absent on frames broadcast to everyone. */
  readonly seq?: number;
  /** Identifies the life of the topic's sequence; a `seq` from another epoch is meaningless. */
  readonly epoch?: string;
  /** `true` on frames replayed from history after a resume. */
  readonly recovered?: true;
}

/** `ALERT` on a topic, or to everyone. */
export interface AlertMessage extends ServerEnvelope<ServerMessageType.Alert, unknown> {
  readonly topic?: string;
  readonly seq?: number;
  readonly epoch?: string;
  readonly recovered?: true;
}

/** `PONG`: answer to a client `ping`. */
export interface PongMessage extends ServerEnvelope<
  ServerMessageType.Pong,
  { readonly id?: string | number }
> {}

/** `SUBSCRIBED`: the topics a `subscribe` added (already-subscribed ones included, listed once). */
export interface SubscribedMessage extends ServerEnvelope<
  ServerMessageType.Subscribed,
  { readonly topics: readonly string[] }
> {}

/** `UNSUBSCRIBED`: the topics an `unsubscribe` removed. */
export interface UnsubscribedMessage extends ServerEnvelope<
  ServerMessageType.Unsubscribed,
  { readonly topics: readonly string[] }
> {}

/** Error codes carried by `ERROR` frames. The connection stays open after every one. */
export enum ErrorCode {
  /** The frame was not valid JSON. */
  BadJson = 'BAD_JSON',
  /** JSON, but not a valid message: not an object, no string `type`, bad fields, or a binary frame. */
  BadMessage = 'BAD_MESSAGE',
  /** `type` is not one the server knows. */
  UnknownType = 'UNKNOWN_TYPE',
  /** A subscribe/unsubscribe/resume named a topic the server does not serve; none of the request was applied. */
  UnknownTopic = 'UNKNOWN_TOPIC',
  /** The subscribe would exceed the per-client subscription limit; none of it was applied. */
  TooManySubscriptions = 'TOO_MANY_SUBSCRIPTIONS',
  /** The snapshot provider failed; the subscription itself stands and live messages flow. */
  SnapshotUnavailable = 'SNAPSHOT_UNAVAILABLE',
  /** The connection's credentials do not allow that topic. */
  Forbidden = 'FORBIDDEN',
  /** Too many frames too fast; this one was dropped. */
  RateLimited = 'RATE_LIMITED',
  /** A `refresh` carried a token that failed verification. */
  BadToken = 'BAD_TOKEN',
  /** The frame's JSON is nested deeper than the server's bound (64 by default); see `docs/protocol.md`. */
  TooDeep = 'TOO_DEEP',
  /** The frame's JSON has more values, or a longer string or key, than the server's bounds allow. */
  TooLarge = 'TOO_LARGE',
  /** The server failed to handle the request. */
  Internal = 'INTERNAL',
}

/** `ERROR`. */
export interface ErrorMessage extends ServerEnvelope<
  ServerMessageType.Error,
  {
    readonly code: ErrorCode;
    readonly message: string;
    /** The topics the error concerns, when it concerns topics. */
    readonly topics?: readonly string[];
  }
> {}

/** Every frame the server sends. */
export type ServerMessage =
  | ConnectedMessage
  | SnapshotMessage
  | UpdateMessage
  | AlertMessage
  | PongMessage
  | SubscribedMessage
  | UnsubscribedMessage
  | ErrorMessage;

/**
 * WebSocket close codes citypulse uses. 1xxx are RFC 6455's; 4xxx are ours and mirror HTTP statuses.
 * The client SDK decides from these whether to reconnect (see {@link isRetryableClose}).
 */
export enum CloseCode {
  /** Normal closure, asked for by the client. */
  Normal = 1000,
  /** The server is shutting down or draining; reconnect (elsewhere) after a short, jittered delay. */
  GoingAway = 1001,
  /** The client broke a policy (e.g. the origin or handshake rules). Do not retry unchanged. */
  PolicyViolation = 1008,
  /** A frame exceeded `maxPayloadBytes`. */
  MessageTooBig = 1009,
  /** The server hit an unexpected condition. Retry. */
  InternalError = 1011,
  /** The connection's token expired without a `refresh`. Reconnect with a fresh token. */
  TokenExpired = 4401,
  /** The credentials are not good for this endpoint. Do not retry with the same credentials. */
  Forbidden = 4403,
  /** The client sustained a frame rate above its limit. Retry after a delay. */
  RateLimited = 4429,
  /** The client could not keep up with its topics; it should reconnect and resume. */
  SlowConsumer = 4503,
}

/** Whether a client should reconnect after a close with `code`. Normal and policy closes are final. */
export function isRetryableClose(code: number): boolean {
  switch (code) {
    case CloseCode.Normal:
    case CloseCode.PolicyViolation:
    case CloseCode.MessageTooBig:
    case CloseCode.Forbidden:
      return false;
    default:
      return true;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Client -> server
// ---------------------------------------------------------------------------------------------------------------

/** Types of the frames a client sends (matched case-insensitively). Direction of every one: client -> server. */
export enum ClientMessageType {
  /** Add topics to the subscription. Answered by SUBSCRIBED, then one SNAPSHOT per newly subscribed topic. */
  Subscribe = 'subscribe',
  /** Remove topics. Answered by UNSUBSCRIBED. */
  Unsubscribe = 'unsubscribe',
  /** Application-level ping (browsers cannot send protocol pings). Answered by PONG with the same `id`. */
  Ping = 'ping',
  /** Continue topics from a known position: the server replays what was missed or sends a fresh snapshot. */
  Resume = 'resume',
  /** Replace the connection's token before it expires. */
  Refresh = 'refresh',
}

/** `{type:'subscribe', topics:[...]}`. */
export interface SubscribeRequest {
  readonly type: ClientMessageType.Subscribe;
  readonly topics: readonly string[];
}

/** `{type:'unsubscribe', topics:[...]}`. */
export interface UnsubscribeRequest {
  readonly type: ClientMessageType.Unsubscribe;
  readonly topics: readonly string[];
}

/** `{type:'ping', id?}`. */
export interface PingRequest {
  readonly type: ClientMessageType.Ping;
  readonly id?: string | number;
}

/** A position in a topic's stream: the last `seq` seen within `epoch`. */
export interface StreamPosition {
  readonly epoch: string;
  readonly seq: number;
}

/** `{type:'resume', topics:{ <topic>: {epoch, seq} }}`; subscribes to those topics too. */
export interface ResumeRequest {
  readonly type: ClientMessageType.Resume;
  readonly topics: Readonly<Record<string, StreamPosition>>;
}

/** `{type:'refresh', token}`. */
export interface RefreshRequest {
  readonly type: ClientMessageType.Refresh;
  readonly token: string;
}

/** Every frame a client may send. */
export type ClientMessage =
  SubscribeRequest | UnsubscribeRequest | PingRequest | ResumeRequest | RefreshRequest;

/** The error a frame failed validation with: what the server puts in its `ERROR` frame. */
export interface ProtocolError {
  readonly code: ErrorCode;
  readonly message: string;
}

/** Result of {@link parseClientMessage}. */
export type ParseResult =
  | { readonly ok: true; readonly message: ClientMessage }
  | { readonly ok: false; readonly error: ProtocolError };

/** Longest `ping` id (as a string) the server echoes. */
export const MAX_PING_ID_LENGTH = 128;

function fail(code: ErrorCode, message: string): ParseResult {
  return { ok: false, error: { code, message } };
}

/** Sets `record[key]` as an own property, so a key like `__proto__` is data, never the prototype. */
function defineEntry<V>(record: Record<string, V>, key: string, value: V): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

function parseTopicList(value: unknown, type: string): readonly string[] | ProtocolError {
  if (!Array.isArray(value)) {
    return { code: ErrorCode.BadMessage, message: `${type}: "topics" must be an array of strings` };
  }
  for (const topic of value) {
    if (typeof topic !== 'string') {
      return { code: ErrorCode.BadMessage, message: `${type}: "topics" must be an array of strings` };
    }
  }
  return value as string[];
}

function parsePosition(value: unknown): StreamPosition | null {
  if (!isRecord(value)) return null;
  const { epoch, seq } = value;
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 64) return null;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return null;
  return { epoch, seq };
}

/**
 * Validates one text frame from a client. `raw` is `unknown` on purpose: nothing a client sends is trusted.
 * Pass the frame's text; anything that is not a string (a binary frame) is a `BAD_MESSAGE`. The decoded value
 * must be within `bounds` (`TOO_DEEP` / `TOO_LARGE` otherwise) before its fields are looked at.
 */
export function parseClientMessage(raw: unknown, bounds: JsonBounds = DEFAULT_JSON_BOUNDS): ParseResult {
  if (typeof raw !== 'string') return fail(ErrorCode.BadMessage, 'frames must be JSON text, not binary');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return fail(ErrorCode.BadJson, 'frame is not valid JSON');
  }
  const violation = checkJsonBounds(value, bounds);
  if (violation !== null) {
    return fail(
      violation.code === 'TOO_DEEP'
        ? ErrorCode.TooDeep
        : violation.code === 'TOO_LARGE'
          ? ErrorCode.TooLarge
          : ErrorCode.BadMessage,
      `frame refused: ${violation.message}`,
    );
  }
  return validateClientMessage(value);
}

/** Validates an already-decoded value as a client message (see {@link parseClientMessage}). */
export function validateClientMessage(value: unknown): ParseResult {
  if (!isRecord(value)) return fail(ErrorCode.BadMessage, 'a message must be a JSON object');
  if (typeof value.type !== 'string') return fail(ErrorCode.BadMessage, 'a message needs a string "type"');
  const type = value.type.toLowerCase();
  switch (type) {
    case ClientMessageType.Subscribe:
    case ClientMessageType.Unsubscribe: {
      const topics = parseTopicList(value.topics, type);
      if (!Array.isArray(topics)) return { ok: false, error: topics as ProtocolError };
      return { ok: true, message: { type, topics } };
    }
    case ClientMessageType.Ping: {
      const { id } = value;
      if (id === undefined) return { ok: true, message: { type } };
      const valid =
        (typeof id === 'string' && id.length <= MAX_PING_ID_LENGTH) ||
        (typeof id === 'number' && Number.isFinite(id));
      if (!valid)
        return fail(
          ErrorCode.BadMessage,
          `ping: "id" must be a string (<= ${MAX_PING_ID_LENGTH}) or a number`,
        );
      return { ok: true, message: { type, id } };
    }
    case ClientMessageType.Resume: {
      if (!isRecord(value.topics)) {
        return fail(ErrorCode.BadMessage, 'resume: "topics" must be an object of topic -> {epoch, seq}');
      }
      const topics: Record<string, StreamPosition> = {};
      for (const [topic, raw] of Object.entries(value.topics)) {
        const position = parsePosition(raw);
        if (position === null) {
          return fail(
            ErrorCode.BadMessage,
            `resume: "topics.${topic.slice(0, 64)}" must be {epoch: string, seq: integer >= 0}`,
          );
        }
        defineEntry(topics, topic, position);
      }
      return { ok: true, message: { type, topics } };
    }
    case ClientMessageType.Refresh: {
      if (typeof value.token !== 'string' || value.token.length === 0) {
        return fail(ErrorCode.BadMessage, 'refresh: "token" must be a non-empty string');
      }
      return { ok: true, message: { type, token: value.token } };
    }
    default:
      return fail(ErrorCode.UnknownType, `unknown message type "${value.type.slice(0, 64)}"`);
  }
}

/**
 * Parses the `?resume=` query value: `<topic>:<epoch>:<seq>` items separated by commas.
 * Returns `null` when any item is malformed.
 */
export function parseResumeQuery(value: string): Record<string, StreamPosition> | null {
  const out: Record<string, StreamPosition> = {};
  for (const item of value.split(',')) {
    if (item === '') continue;
    const last = item.lastIndexOf(':');
    const middle = item.lastIndexOf(':', last - 1);
    if (middle <= 0 || last <= middle + 1) return null;
    const position = parsePosition({
      epoch: item.slice(middle + 1, last),
      seq: Number(item.slice(last + 1)),
    });
    if (position === null || item.slice(last + 1) === '') return null;
    defineEntry(out, item.slice(0, middle), position);
  }
  return out;
}

/** Formats positions for the `?resume=` query (inverse of {@link parseResumeQuery}). */
export function formatResumeQuery(positions: Readonly<Record<string, StreamPosition>>): string {
  return Object.entries(positions)
    .map(([topic, p]) => `${topic}:${p.epoch}:${p.seq}`)
    .join(',');
}

/** Validates one server frame (used by the client SDK; a server never needs it). */
export function parseServerMessage(raw: string): ServerMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isRecord(value) || typeof value.type !== 'string' || typeof value.timestamp !== 'string') return null;
  if (!(Object.values(ServerMessageType) as string[]).includes(value.type)) return null;
  if ('topic' in value && value.topic !== undefined && typeof value.topic !== 'string') return null;
  if ('seq' in value && value.seq !== undefined && typeof value.seq !== 'number') return null;
  return value as unknown as ServerMessage;
}
