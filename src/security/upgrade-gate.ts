/**
 * Connection admission of a WebSocket upgrade: origin, connection limits, token, in that order, under a deadline;
 * and the raw HTTP answer that refuses an upgrade.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { DEADLINE_EXCEEDED, DEFAULT_LIMITS, clientIp, withDeadline } from './limits.js';
import type { ConnectionLimiter } from './limits.js';
import { assertNever } from '../protocol/messages.js';
import type { AuthFailureReason, AuthResult, Authenticator, Principal } from './auth.js';
import { ANONYMOUS, failure } from './auth.js';
import { compileOriginCheck } from './origin.js';

/** Which check refused an upgrade. */
export type AdmissionStage = 'origin' | 'limit' | 'auth';

/** Why an upgrade was refused: an {@link AuthFailureReason} at stage `auth`, else one of these. */
export type AdmissionRejectReason =
  AuthFailureReason | 'origin' | 'max-connections' | 'max-connections-per-ip' | 'handshake-timeout';

/** Result of {@link UpgradeGate.admit}. */
export type Admission =
  | {
      readonly ok: true;
      readonly principal: Principal;
      readonly ip: string;
      /** Releases the connection slot; idempotent. Call it from the socket's close (or if the upgrade fails). */
      readonly release: () => void;
    }
  | {
      readonly ok: false;
      /** HTTP status to answer with: 401 auth, 403 origin, 429 per-IP, 503 total or timeout. */
      readonly status: 401 | 403 | 429 | 503;
      readonly stage: AdmissionStage;
      readonly reason: AdmissionRejectReason;
      readonly ip: string;
    };

/** Options of {@link createUpgradeGate}. */
export interface UpgradeGateOptions {
  /** Verifies tokens; absent means auth off (every connection is {@link ANONYMOUS}). */
  authenticator?: Authenticator;
  /** Origin allow-list (see {@link compileOriginCheck}); empty or absent: any origin. */
  allowedOrigins?: readonly string[];
  /** Counts connections; absent: no connection limits. */
  connectionLimiter?: ConnectionLimiter;
  /** Proxies in front that append to `X-Forwarded-For` (see `clientIp` in limits.ts). Default 0. */
  trustedProxies?: number;
  /** Bound on token verification (a slow JWKS endpoint), ms. Default {@link DEFAULT_LIMITS.handshakeTimeoutMs}. */
  handshakeTimeoutMs?: number;
}

/** Decides whether an HTTP upgrade request becomes a WebSocket connection. */
export interface UpgradeGate {
  /** Runs origin, connection-limit and token checks, in that order. Never rejects. */
  admit(req: IncomingMessage): Promise<Admission>;
}

/**
 * Creates the admission check of the `upgrade` handler. The connection slot is taken before the (asynchronous)
 * token check so that pending handshakes count, and given back if the token fails or times out.
 */
export function createUpgradeGate(options: UpgradeGateOptions = {}): UpgradeGate {
  const originOk = compileOriginCheck(options.allowedOrigins ?? []);
  const limiter = options.connectionLimiter;
  const authenticator = options.authenticator;
  const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_LIMITS.handshakeTimeoutMs;
  const trustedProxies = options.trustedProxies ?? 0;

  return {
    async admit(req) {
      const ip = clientIp(req, trustedProxies);
      if (!originOk(req)) return { ok: false, status: 403, stage: 'origin', reason: 'origin', ip };
      let release: () => void = () => {};
      if (limiter !== undefined) {
        const lease = limiter.tryAcquire(ip);
        switch (lease.status) {
          case 'ok':
            release = lease.release;
            break;
          case 'total':
            return { ok: false, status: 503, stage: 'limit', reason: 'max-connections', ip };
          case 'per-ip':
            return { ok: false, status: 429, stage: 'limit', reason: 'max-connections-per-ip', ip };
          default:
            return assertNever(lease);
        }
      }
      if (authenticator === undefined) return { ok: true, principal: ANONYMOUS, ip, release };
      let result: AuthResult | typeof DEADLINE_EXCEEDED;
      try {
        result = await withDeadline(authenticator.authenticate(req), timeoutMs);
      } catch {
        result = failure('key-unavailable', 'key set unavailable');
      }
      if (result === DEADLINE_EXCEEDED) {
        release();
        return { ok: false, status: 503, stage: 'auth', reason: 'handshake-timeout', ip };
      }
      if (!result.ok) {
        release();
        return { ok: false, status: 401, stage: 'auth', reason: result.reason, ip };
      }
      return { ok: true, principal: result.principal, ip, release };
    },
  };
}

/**
 * Answers an upgrade request with a plain HTTP error and closes the socket (what to do when
 * {@link UpgradeGate.admit} says no). The body is `message` (keep it free of secrets); 401 adds
 * `WWW-Authenticate: Bearer`, 429/503 add `Retry-After`.
 */
export function rejectUpgrade(socket: Duplex, status: number, message: string, retryAfterSec = 5): void {
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const body = `${message}\n`;
  const headers = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  if (status === 401) headers.push('WWW-Authenticate: Bearer realm="citypulse"');
  if (status === 429 || status === 503) headers.push(`Retry-After: ${retryAfterSec}`);
  // A peer that resets meanwhile must not crash the process: the upgrade socket has no other error listener.
  socket.on('error', () => socket.destroy());
  socket.once('finish', () => socket.destroy());
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}
