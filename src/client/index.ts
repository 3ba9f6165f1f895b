/**
 * `citypulse/client`: the browser and Node client of a citypulse server.
 *
 * ```ts
 * import { createClient } from 'citypulse/client';
 * const client = createClient({ url: 'wss://city.example/ws', topics: ['accidents'] });
 * client.subscribe('accidents', () => render([...client.state('accidents').values()]));
 * ```
 *
 * @module
 */
export { CityPulseClient, createClient } from './client.js';
export type {
  AlertEvent,
  ClientEvents,
  ClientOptions,
  ConnectionState,
  EntityOf,
  ServerInfo,
  SnapshotEvent,
  StateChange,
  TopicEvent,
  TopicHandler,
  UpdateEvent,
} from './client.js';
export { DEFAULT_BACKOFF, backoffCeiling, backoffDelay, resolveBackoff } from '../shared/backoff.js';
export type { BackoffOptions } from '../shared/backoff.js';
export { ClientError, ClientErrorCode } from './errors.js';
export type { ClientErrorDetails } from './errors.js';
export { MAX_HELD_FRAMES, TopicStore, toEntityChange, toSnapshotContent } from './topic-store.js';
export type { FoldResult, SequencedFrame, SnapshotContent } from './topic-store.js';
export { buildConnectUrl } from './transport.js';
export type {
  ConnectUrlParts,
  SocketCloseEvent,
  SocketMessageEvent,
  WebSocketConstructorLike,
  WebSocketLike,
} from './transport.js';
export { CloseCode, ErrorCode, ServerMessageType, isRetryableClose } from '../protocol/messages.js';
export type {
  AlertMessage,
  ConnectedMessage,
  HeartbeatInfo,
  ServerMessage,
  SnapshotMessage,
  StreamPosition,
  UpdateMessage,
} from '../protocol/messages.js';
export { aqiCategory } from '../protocol/topics.js';
export { MAX_ACTIVE_ALERTS, applyAlert } from '../protocol/alert-state.js';
export { readAlert } from '../protocol/payloads.js';
export type { AlertPayload, AlertView } from '../protocol/payloads.js';
export type {
  Accident,
  AirQualityStation,
  AqiCategory,
  Camera,
  CityAlert,
  EntityBase,
  EntityChange,
  GeoPoint,
  TopicEntityMap,
  WeatherReading,
} from '../protocol/topics.js';
