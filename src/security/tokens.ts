/**
 * Where a connection's token comes from, and the subprotocol answer. Tokens (JWS compact) are taken from, in this
 * order:
 * 1. `Authorization: Bearer <token>` (non-browser clients);
 * 2. `Sec-WebSocket-Protocol`: an offered subprotocol `citypulse.bearer.<token>` (browsers cannot set headers on a
 *    WebSocket, but they can offer subprotocols). The client must offer {@link SUBPROTOCOL} (`citypulse.v1`) too,
 *    and the server echoes **only** `citypulse.v1` (see {@link selectSubprotocol}): never the bearer entry, which
 *    would copy the token into the response;
 * 3. the `?token=` query parameter (simplest, but URLs end up in proxy logs: prefer 1 or 2; log URLs through
 *    {@link redactToken}).
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';

/** The subprotocol of the citypulse protocol, version 1; the one the server echoes when a client offers it. */
export const SUBPROTOCOL = 'citypulse.v1';

/** Prefix of the subprotocol entry that carries a bearer token: `citypulse.bearer.<JWT>`. */
export const BEARER_PROTOCOL_PREFIX = 'citypulse.bearer.';

/** Longest token accepted, in characters; longer ones are rejected (`malformed`) before any crypto. */
export const MAX_TOKEN_LENGTH = 8192;

/** Where a token was found. */
export type TokenSource = 'header' | 'subprotocol' | 'query';

/** The token of a request and where it came from. */
export interface ExtractedToken {
  readonly token: string;
  readonly source: TokenSource;
}

/** The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive), if any. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** The subprotocols a request offers, in order (`Sec-WebSocket-Protocol`, comma-separated, possibly repeated). */
export function offeredSubprotocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  if (header === undefined) return [];
  return header
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/** Finds the request's token (see the module doc for the order), or `null`. */
export function extractToken(req: IncomingMessage): ExtractedToken | null {
  const fromHeader = bearerToken(req.headers.authorization);
  if (fromHeader !== undefined) return { token: fromHeader, source: 'header' };
  for (const protocol of offeredSubprotocols(req)) {
    if (protocol.startsWith(BEARER_PROTOCOL_PREFIX) && protocol.length > BEARER_PROTOCOL_PREFIX.length) {
      return { token: protocol.slice(BEARER_PROTOCOL_PREFIX.length), source: 'subprotocol' };
    }
  }
  const url = req.url ?? '/';
  const queryStart = url.indexOf('?');
  if (queryStart >= 0) {
    const token = new URLSearchParams(url.slice(queryStart + 1)).get('token');
    if (token !== null && token !== '') return { token, source: 'query' };
  }
  return null;
}

/**
 * The `handleProtocols` of the `WebSocketServer`: selects {@link SUBPROTOCOL} when offered, otherwise none
 * (`false`). Never returns a `citypulse.bearer.*` entry, so the token is not echoed.
 */
export function selectSubprotocol(protocols: ReadonlySet<string>): string | false {
  return protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false;
}

/** `url` with the value of every `token` query parameter replaced by `REDACTED`, for logs. */
export function redactToken(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1REDACTED');
}
