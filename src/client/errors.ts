/**
 * Errors the client reports through its `error` event. Each has a stable `code`.
 *
 * @module
 */
import type { ErrorCode } from '../protocol/messages.js';

/** Codes of {@link ClientError}. */
export enum ClientErrorCode {
  /** The WebSocket reported an error (connection refused, reset, ...). The client retries on its own. */
  Transport = 'TRANSPORT_ERROR',
  /** No `CONNECTED` frame arrived within `connectTimeoutMs`; the attempt was dropped and will be retried. */
  ConnectTimeout = 'CONNECT_TIMEOUT',
  /** Nothing arrived for longer than the heartbeat timeout; the link was treated as dead and is being replaced. */
  HeartbeatTimeout = 'HEARTBEAT_TIMEOUT',
  /** The server sent a frame that is not valid protocol; it was ignored. */
  BadFrame = 'BAD_FRAME',
  /** The server answered a request with an `ERROR` frame (`serverCode` tells which). The connection stays open. */
  Server = 'SERVER_ERROR',
  /** The server closed with a code that must not be retried (`closeCode`); the client is now `closed`. */
  Fatal = 'FATAL_CLOSE',
  /** `maxRetries` consecutive attempts failed; the client is now `closed`. */
  RetriesExhausted = 'RETRIES_EXHAUSTED',
  /** `getToken()` threw or rejected; the attempt counts as failed and is retried. */
  Token = 'TOKEN_ERROR',
  /** A topic's sequence had a gap (or a new epoch); the client asked the server to recover it. */
  Gap = 'SEQUENCE_GAP',
  /** A listener or subscription handler threw. */
  Handler = 'HANDLER_ERROR',
  /** The WebSocket constructor threw (bad URL, ...); the client is now `closed`. */
  Config = 'CONFIG_ERROR',
}

/** Details of a {@link ClientError}. */
export interface ClientErrorDetails {
  readonly closeCode?: number;
  readonly closeReason?: string;
  readonly serverCode?: ErrorCode;
  readonly topic?: string;
  readonly topics?: readonly string[];
  readonly cause?: unknown;
}

/** An error reported by the client. */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly code: ClientErrorCode;
  readonly closeCode: number | undefined;
  readonly closeReason: string | undefined;
  readonly serverCode: ErrorCode | undefined;
  readonly topic: string | undefined;
  readonly topics: readonly string[] | undefined;

  constructor(code: ClientErrorCode, message: string, details: ClientErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.closeCode = details.closeCode;
    this.closeReason = details.closeReason;
    this.serverCode = details.serverCode;
    this.topic = details.topic;
    this.topics = details.topics;
  }
}
