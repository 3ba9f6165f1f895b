/**
 * The few members of a WebSocket the client uses, so the browser's native `WebSocket` and Node's `ws` both fit,
 * and the URL the client connects to.
 *
 * @module
 */
import { formatResumeQuery } from '../protocol/messages.js';
import type { StreamPosition } from '../protocol/messages.js';

/** `readyState` of an open socket (same value in the WHATWG API and in `ws`). */
export const SOCKET_OPEN = 1;

/** What the client reads from a message event. */
export interface SocketMessageEvent {
  readonly data: unknown;
}

/** What the client reads from a close event. */
export interface SocketCloseEvent {
  readonly code: number;
  readonly reason: string;
}

/**
 * The subset of the WHATWG `WebSocket` the client needs. The browser's `WebSocket` and `ws`'s `WebSocket` both
 * satisfy it. Handlers are declared as methods so either library's event types are accepted.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` in Node. */
export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

/** Inputs of {@link buildConnectUrl}. */
export interface ConnectUrlParts {
  /** Base endpoint, e.g. `ws://host:8080/ws`. `http(s):` is turned into `ws(s):`. */
  readonly url: string;
  readonly topics: readonly string[];
  /** Positions to resume from (topics whose epoch is known). */
  readonly resume: Readonly<Record<string, StreamPosition>>;
  readonly token?: string | null | undefined;
}

/**
 * The URL of one connection attempt: the base endpoint plus `?topics=` (every wanted topic), `?resume=` (every
 * topic with a known position) and `?token=` when a token is given. Other query parameters of `url` are kept.
 */
export function buildConnectUrl(parts: ConnectUrlParts): string {
  const url = new URL(parts.url);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  url.searchParams.delete('topics');
  url.searchParams.delete('resume');
  url.searchParams.delete('token');
  if (parts.topics.length > 0) url.searchParams.set('topics', parts.topics.join(','));
  const resume = formatResumeQuery(parts.resume);
  if (resume !== '') url.searchParams.set('resume', resume);
  if (parts.token) url.searchParams.set('token', parts.token);
  return url.toString();
}
