/**
 * Who may connect: JWT authentication of WebSocket upgrades, the origin check, connection admission (origin,
 * connection limits, token, in that order, under a deadline), token-expiry watching, and constant-time comparison
 * of publish API keys.
 *
 * Tokens (JWS compact) are taken from, in this order:
 * 1. `Authorization: Bearer <token>` (non-browser clients);
 * 2. `Sec-WebSocket-Protocol`: an offered subprotocol `citypulse.bearer.<token>` (browsers cannot set headers on a
 *    WebSocket, but they can offer subprotocols). The client must offer {@link SUBPROTOCOL} (`citypulse.v1`) too,
 *    and the server echoes **only** `citypulse.v1` (see {@link selectSubprotocol}): never the bearer entry, which
 *    would copy the token into the response;
 * 3. the `?token=` query parameter (simplest, but URLs end up in proxy logs: prefer 1 or 2; log URLs through
 *    {@link redactToken}).
 *
 * Verification uses `jose`: HS256 with a shared secret, RS256/ES256 against a JWKS file (`createLocalJWKSet`) or URL
 * (`createRemoteJWKSet`, cached, refetched on an unknown `kid`). Both may be configured at once; the token's `alg`
 * picks. `exp` is required by default, `exp`/`nbf` are checked with a clock tolerance, `aud`/`iss` when configured.
 * The `topics` claim becomes the connection's {@link TopicPermission}.
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWSAlgorithm, JWSHeaderParameters, FlattenedJWSInput, JWTPayload } from 'jose';
import { ALLOW_ALL, DENY_ALL, compileTopicPermission, topicPermissionFromClaim } from './access.js';
import type { TopicPermission } from './access.js';
import { DEADLINE_EXCEEDED, DEFAULT_LIMITS, clientIp, withDeadline } from './limits.js';
import type { ConnectionLimiter } from './limits.js';

// ---------------------------------------------------------------------------------------------------------------
// Subprotocols and token extraction
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------------------------

/** The identity and rights of a connection. */
export interface Principal {
  /** The token's `sub`, when it has one. */
  readonly subject?: string;
  /** What the connection may subscribe to (from the `topics` claim). */
  readonly topics: TopicPermission;
  /** When the token expires, ms since the epoch (`exp` * 1000); absent for tokens without `exp`. */
  readonly expiresAt?: number;
  /** Every verified claim, for application use. */
  readonly claims?: Readonly<JWTPayload>;
}

/** The principal of every connection when auth is off: anonymous, every topic, never expires. */
export const ANONYMOUS: Principal = Object.freeze({ topics: ALLOW_ALL });

/**
 * Why a token was refused. Stable strings: they label the `citypulse_auth_failures_total` metric and appear in
 * logs, never in the HTTP response body beyond this word.
 */
export type AuthFailureReason =
  /** No token in the request. */
  | 'missing'
  /** Not a JWS compact token, too long, or not JSON inside. */
  | 'malformed'
  /** `exp` is in the past (beyond the clock tolerance). */
  | 'expired'
  /** `nbf` is in the future (beyond the clock tolerance). */
  | 'not-yet-valid'
  /** The signature does not verify. */
  | 'bad-signature'
  /** The `alg` is not one the configuration accepts (e.g. HS256 with only a JWKS configured, or `none`). */
  | 'bad-algorithm'
  /** No key of the JWKS matches the token's `kid`/`alg`. */
  | 'unknown-key'
  /** `aud`/`iss` mismatch, or a required claim (`exp`) missing. */
  | 'bad-claims'
  /** The `topics` claim is not a list of valid patterns. */
  | 'bad-topics'
  /** The remote JWKS could not be fetched (a server-side problem; still answered 401). */
  | 'key-unavailable';

/** Result of {@link Authenticator.authenticate} and {@link Authenticator.verifyToken}. */
export type AuthResult =
  | { readonly ok: true; readonly principal: Principal }
  | {
      readonly ok: false;
      readonly status: 401;
      readonly reason: AuthFailureReason;
      readonly message: string;
    };

/** Options of {@link createAuthenticator}. At least one of `secret`, `jwksFile`, `jwksUrl`, `jwks` is required. */
export interface AuthenticatorOptions {
  /** Shared secret for HS256, at least 32 bytes (e.g. `openssl rand -hex 32`). */
  secret?: string;
  /** Path of a JWKS JSON file (`{"keys":[...]}`), read once now, for RS256/ES256. */
  jwksFile?: string;
  /** URL of a JWKS (`http:` or `https:`), fetched on demand and cached, for RS256/ES256. */
  jwksUrl?: string;
  /** An in-memory JWKS (instead of `jwksFile`), for embedding and tests. */
  jwks?: JSONWebKeySet;
  /** Asymmetric algorithms accepted with a JWKS. Default `['RS256', 'ES256']`. */
  jwksAlgorithms?: readonly JWSAlgorithm[];
  /** Seconds of clock skew tolerated on `exp`/`nbf`. Default 5. */
  clockToleranceSec?: number;
  /** Required `aud` (one of). */
  audience?: string | readonly string[];
  /** Required `iss` (one of). */
  issuer?: string | readonly string[];
  /** Refuse tokens without `exp` (default `true`: a token must not be good forever). */
  requireExp?: boolean;
  /** The claim holding the topic patterns. Default `topics`. */
  topicsClaim?: string;
  /** Patterns granted when the token has no topics claim. Default none (every subscribe is `FORBIDDEN`). */
  defaultTopics?: readonly string[];
  /** Remote JWKS: fetch timeout, ms (default 5000), and minimum ms between refetches (default 30000). */
  jwksTimeoutMs?: number;
  jwksCooldownMs?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
}

/** Verifies tokens. Stateless apart from the remote JWKS cache; safe to share among connections. */
export interface Authenticator {
  /** Finds the request's token (see {@link extractToken}) and verifies it. Never rejects. */
  authenticate(req: IncomingMessage): Promise<AuthResult>;
  /** Verifies one token (e.g. from a `refresh` frame). Never rejects. */
  verifyToken(token: string): Promise<AuthResult>;
  /** The configured clock tolerance in ms: use it as the grace of {@link watchExpiry}. */
  readonly clockToleranceMs: number;
}

/** Shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: a key at least as long as the hash). */
export const MIN_SECRET_BYTES = 32;

function failure(reason: AuthFailureReason, message: string): AuthResult {
  return { ok: false, status: 401, reason, message };
}

/** Maps a `jose` (or fetch) error to a reason. */
function classify(error: unknown): AuthResult {
  if (error instanceof errors.JWTExpired) return failure('expired', 'token expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return failure('not-yet-valid', 'token not yet valid');
    return failure(
      'bad-claims',
      `claim "${error.claim}" ${error.reason === 'missing' ? 'missing' : 'rejected'}`,
    );
  }
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return failure('bad-signature', 'bad signature');
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return failure('bad-algorithm', 'algorithm not accepted');
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return failure('unknown-key', 'no matching key');
  }
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) {
    return failure('key-unavailable', 'key set unavailable');
  }
  if (
    error instanceof errors.JWSInvalid ||
    error instanceof errors.JWTInvalid ||
    error instanceof errors.JWKInvalid
  ) {
    return failure('malformed', 'malformed token');
  }
  // What is left: the remote JWKS fetch failed (network error, non-200 answer: a generic JOSEError) or something
  // unexpected on our side. Either way not the client's fault.
  return failure('key-unavailable', 'key set unavailable');
}

/**
 * Creates an {@link Authenticator}.
 *
 * @throws {Error} at creation for a bad configuration: no key source, a secret shorter than
 *   {@link MIN_SECRET_BYTES}, an unreadable or invalid JWKS file, an invalid `jwksUrl` or `defaultTopics`.
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const now = options.now ?? Date.now;
  const clockTolerance = options.clockToleranceSec ?? 5;
  if (!(clockTolerance >= 0)) throw new RangeError('clockToleranceSec must be >= 0');
  const topicsClaim = options.topicsClaim ?? 'topics';
  const fallbackTopics =
    options.defaultTopics === undefined ? DENY_ALL : compileTopicPermission(options.defaultTopics);

  let secretKey: Uint8Array | undefined;
  if (options.secret !== undefined) {
    secretKey = new TextEncoder().encode(options.secret);
    if (secretKey.byteLength < MIN_SECRET_BYTES) {
      throw new Error(`auth secret must be at least ${MIN_SECRET_BYTES} bytes (try: openssl rand -hex 32)`);
    }
  }

  const sources = [options.jwks, options.jwksFile, options.jwksUrl].filter((s) => s !== undefined).length;
  if (sources > 1) throw new Error('configure at most one of jwks, jwksFile, jwksUrl');
  type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;
  let jwks: KeyResolver | undefined;
  if (options.jwks !== undefined) {
    jwks = createLocalJWKSet(options.jwks);
  } else if (options.jwksFile !== undefined) {
    let parsed: JSONWebKeySet;
    try {
      parsed = JSON.parse(readFileSync(options.jwksFile, 'utf8')) as JSONWebKeySet;
    } catch (error) {
      throw new Error(`cannot read JWKS file ${options.jwksFile}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    jwks = createLocalJWKSet(parsed);
  } else if (options.jwksUrl !== undefined) {
    const url = new URL(options.jwksUrl);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('jwksUrl must be http(s)');
    jwks = createRemoteJWKSet(url, {
      timeoutDuration: options.jwksTimeoutMs ?? 5000,
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
    });
  }
  if (secretKey === undefined && jwks === undefined) {
    throw new Error('auth needs a secret (HS256) or a JWKS (jwksFile / jwksUrl)');
  }

  const algorithms: JWSAlgorithm[] = [];
  if (secretKey !== undefined) algorithms.push('HS256');
  if (jwks !== undefined) algorithms.push(...(options.jwksAlgorithms ?? ['RS256', 'ES256']));

  const resolveKey = async (
    header: JWSHeaderParameters,
    token: FlattenedJWSInput,
  ): Promise<CryptoKey | Uint8Array> => {
    if (header.alg === 'HS256' && secretKey !== undefined) return secretKey;
    if (jwks !== undefined && header.alg !== 'HS256') return jwks(header, token);
    throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  };

  const verifyToken = async (token: string): Promise<AuthResult> => {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return failure('malformed', 'malformed token');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, resolveKey, {
        algorithms,
        clockTolerance,
        currentDate: new Date(now()),
        ...(options.audience !== undefined ? { audience: options.audience as string | string[] } : {}),
        ...(options.issuer !== undefined ? { issuer: options.issuer as string | string[] } : {}),
        ...(options.requireExp !== false ? { requiredClaims: ['exp'] } : {}),
      }));
    } catch (error) {
      return classify(error);
    }
    const topics = topicPermissionFromClaim(payload[topicsClaim], fallbackTopics);
    if (topics === null)
      return failure('bad-topics', `claim "${topicsClaim}" is not a list of topic patterns`);
    const principal: Principal = Object.freeze({
      ...(typeof payload.sub === 'string' ? { subject: payload.sub } : {}),
      topics,
      ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp * 1000 } : {}),
      claims: Object.freeze({ ...payload }),
    });
    return { ok: true, principal };
  };

  return {
    clockToleranceMs: clockTolerance * 1000,
    verifyToken,
    async authenticate(req: IncomingMessage): Promise<AuthResult> {
      const found = extractToken(req);
      if (found === null) return failure('missing', 'missing token');
      return verifyToken(found.token);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Token expiry while connected
// ---------------------------------------------------------------------------------------------------------------

/** Longest delay `setTimeout` takes (about 24.8 days); longer ones fire at once, so we re-arm in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Handle of {@link watchExpiry}. */
export interface ExpiryWatch {
  /** Watches a new expiry (after a successful `refresh`); `undefined` stops watching. */
  reschedule(expiresAt: number | undefined): void;
  /** Stops watching. Idempotent; call it from the connection's teardown. */
  cancel(): void;
}

/** Options of {@link watchExpiry}. */
export interface ExpiryWatchOptions {
  /** Extra ms after `expiresAt` before `onExpired` (use {@link Authenticator.clockToleranceMs}). Default 0. */
  graceMs?: number;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
}

/**
 * Calls `onExpired` once `expiresAt + graceMs` has passed (then the connection should close with
 * `CloseCode.TokenExpired`, 4401). Handles expiries beyond `setTimeout`'s range. The timer is unref'd.
 */
export function watchExpiry(
  expiresAt: number | undefined,
  onExpired: () => void,
  options: ExpiryWatchOptions = {},
): ExpiryWatch {
  const now = options.now ?? Date.now;
  const grace = options.graceMs ?? 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let deadline: number | undefined;

  const clear = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  const arm = (): void => {
    clear();
    if (deadline === undefined) return;
    const remaining = deadline - now();
    timer = setTimeout(
      () => {
        timer = undefined;
        if (deadline === undefined) return;
        if (now() >= deadline) {
          deadline = undefined;
          onExpired();
        } else {
          arm();
        }
      },
      Math.max(0, Math.min(remaining, MAX_TIMER_MS)),
    );
    timer.unref();
  };

  const watch: ExpiryWatch = {
    reschedule(next) {
      deadline = next === undefined ? undefined : next + grace;
      arm();
    },
    cancel() {
      deadline = undefined;
      clear();
    },
  };
  watch.reschedule(expiresAt);
  return watch;
}

// ---------------------------------------------------------------------------------------------------------------
// Origins and API keys
// ---------------------------------------------------------------------------------------------------------------

/** Options of {@link compileOriginCheck}. */
export interface OriginCheckOptions {
  /** Let requests without an `Origin` header through (non-browser clients never send one). Default `true`. */
  allowMissing?: boolean;
}

function normaliseOrigin(value: string): string | null {
  try {
    const url = new URL(value);
    if (url.origin === 'null') return null;
    return url.origin.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * Compiles an allow-list of origins into a check. Entries: `*` (anything), an origin (`https://city.example`,
 * compared scheme + host + port, case-insensitively, default ports folded) or a subdomain wildcard
 * (`https://*.city.example`: any subdomain, not the bare domain). An empty list allows everything (the check is off).
 * A browser's `Origin: null` is refused unless `null` is listed.
 *
 * @throws {Error} for an entry that is none of these.
 */
export function compileOriginCheck(
  allowedOrigins: readonly string[],
  options: OriginCheckOptions = {},
): (req: IncomingMessage) => boolean {
  const allowMissing = options.allowMissing ?? true;
  if (allowedOrigins.length === 0 || allowedOrigins.includes('*')) return () => true;
  const exact = new Set<string>();
  const wildcards: { scheme: string; suffix: string; port: string }[] = [];
  let allowNull = false;
  for (const entry of allowedOrigins) {
    if (entry === 'null') {
      allowNull = true;
      continue;
    }
    const wildcard = /^([a-z][a-z0-9+.-]*):\/\/\*\.([^/:]+)(?::(\d+))?\/?$/i.exec(entry);
    if (wildcard !== null) {
      const [, scheme = '', domain = '', port = ''] = wildcard;
      const probe = normaliseOrigin(`${scheme}://x.${domain}${port === '' ? '' : `:${port}`}`);
      if (probe === null) throw new Error(`invalid allowed origin ${JSON.stringify(entry)}`);
      const probeUrl = new URL(probe);
      wildcards.push({
        scheme: probeUrl.protocol,
        suffix: `.${probeUrl.hostname.slice(2)}`,
        port: probeUrl.port,
      });
      continue;
    }
    const origin = normaliseOrigin(entry);
    if (origin === null) throw new Error(`invalid allowed origin ${JSON.stringify(entry)}`);
    exact.add(origin);
  }
  return (req) => {
    const header = req.headers.origin;
    if (header === undefined || header === '') return allowMissing;
    if (header === 'null') return allowNull;
    const origin = normaliseOrigin(header);
    if (origin === null) return false;
    if (exact.has(origin)) return true;
    if (wildcards.length === 0) return false;
    const url = new URL(origin);
    return wildcards.some(
      (w) => url.protocol === w.scheme && url.port === w.port && url.hostname.endsWith(w.suffix),
    );
  };
}

/** One-shot form of {@link compileOriginCheck}; compile once instead on a hot path. */
export function checkOrigin(
  req: IncomingMessage,
  allowedOrigins: readonly string[],
  options: OriginCheckOptions = {},
): boolean {
  return compileOriginCheck(allowedOrigins, options)(req);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Whether `given` equals one of `keys`, in time independent of where they differ: both sides are hashed to
 * equal-length SHA-256 digests and compared with `crypto.timingSafeEqual`, and every key is compared (no early
 * exit), so neither the content nor the position of a match leaks. Empty `given` or `keys` never match, and
 * empty keys in the list are ignored.
 */
export function safeEqualKey(given: string | undefined, keys: readonly string[]): boolean {
  if (given === undefined || given === '') return false;
  const givenDigest = digest(given);
  let match = false;
  for (const key of keys) {
    if (key === '') continue;
    match = timingSafeEqual(givenDigest, digest(key)) || match;
  }
  return match;
}

// ---------------------------------------------------------------------------------------------------------------
// Upgrade admission
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// Per-connection security state
// ---------------------------------------------------------------------------------------------------------------

/** What {@link ConnectionGuard.admitFrame} decides for one client frame. */
export type FrameVerdict =
  /** Handle the frame. */
  | 'ok'
  /** Drop it and answer `ERROR RATE_LIMITED`. */
  | 'drop'
  /** Drop it and close the connection with `CloseCode.RateLimited` (4429): the client kept flooding. */
  | 'close';

/** Result of {@link ConnectionGuard.refresh}. Failures are answered `ERROR BAD_TOKEN`; the old token stays. */
export type RefreshResult =
  | {
      readonly ok: true;
      readonly principal: Principal;
      /** Subscribed topics the new token no longer allows (when asked, see `refresh`): unsubscribe them. */
      readonly lost: readonly string[];
    }
  | {
      readonly ok: false;
      readonly reason:
        | AuthFailureReason
        /** Auth is off on this server. */
        | 'auth-off'
        /** The new token names another `sub` than the connection's. */
        | 'subject-changed'
        /** A later refresh overtook this one, or the connection closed meanwhile. */
        | 'superseded';
    };

/** Options of {@link ConnectionGuard}. */
export interface ConnectionGuardOptions {
  /** From the upgrade ({@link Admission}); {@link ANONYMOUS} when auth is off. */
  principal: Principal;
  /** Verifies `refresh` tokens; absent when auth is off. */
  authenticator?: Authenticator;
  /** The connection's frame-rate limiter; absent: no rate limit. */
  rateLimiter?: { take(): boolean; readonly shouldClose: boolean };
  /** Called once when the token expires (plus the authenticator's clock tolerance) without a refresh. */
  onExpired: () => void;
  /** Let a refresh change the subject (`sub`). Default `false`: a connection keeps its identity. */
  allowSubjectChange?: boolean;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
}

/**
 * The security state of one connection in one object: who it is, what it may subscribe to, its frame-rate budget,
 * its token's expiry and refresh. Create it when the connection opens, call {@link dispose} from its teardown.
 */
export class ConnectionGuard {
  #principal: Principal;
  readonly #authenticator: Authenticator | undefined;
  readonly #limiter: ConnectionGuardOptions['rateLimiter'];
  readonly #expiry: ExpiryWatch;
  readonly #allowSubjectChange: boolean;
  #generation = 0;
  #disposed = false;

  constructor(options: ConnectionGuardOptions) {
    this.#principal = options.principal;
    this.#authenticator = options.authenticator;
    this.#limiter = options.rateLimiter;
    this.#allowSubjectChange = options.allowSubjectChange ?? false;
    this.#expiry = watchExpiry(
      options.principal.expiresAt,
      () => {
        if (!this.#disposed) options.onExpired();
      },
      { graceMs: options.authenticator?.clockToleranceMs ?? 0, now: options.now ?? Date.now },
    );
  }

  /** The connection's current principal (replaced by a successful refresh). */
  get principal(): Principal {
    return this.#principal;
  }

  /** Call for every client frame, before parsing it. */
  admitFrame(): FrameVerdict {
    if (this.#limiter === undefined) return 'ok';
    if (this.#limiter.shouldClose) return 'close'; // sticky, even if the bucket refilled meanwhile
    if (this.#limiter.take()) return 'ok';
    return this.#limiter.shouldClose ? 'close' : 'drop';
  }

  /** Whether the connection may subscribe to `topic`. */
  allows(topic: string): boolean {
    return this.#principal.topics.allows(topic);
  }

  /** The topics of `topics` the connection may not subscribe to (for `ERROR FORBIDDEN`). */
  forbidden(topics: Iterable<string>): string[] {
    const out: string[] = [];
    for (const topic of topics) if (!this.#principal.topics.allows(topic)) out.push(topic);
    return out;
  }

  /**
   * Handles a `refresh` frame: verifies `token` and, if good, makes it the connection's principal and moves the
   * expiry. `subscribed` (the connection's current topics) is checked against the new permission: the ones it no
   * longer allows come back in `lost`. Never rejects. Only the latest of overlapping refreshes applies.
   */
  async refresh(token: string, subscribed: Iterable<string> = []): Promise<RefreshResult> {
    if (this.#authenticator === undefined) return { ok: false, reason: 'auth-off' };
    const generation = ++this.#generation;
    const result = await this.#authenticator.verifyToken(token);
    if (this.#disposed || generation !== this.#generation) return { ok: false, reason: 'superseded' };
    if (!result.ok) return { ok: false, reason: result.reason };
    const next = result.principal;
    if (!this.#allowSubjectChange && next.subject !== this.#principal.subject) {
      return { ok: false, reason: 'subject-changed' };
    }
    this.#principal = next;
    this.#expiry.reschedule(next.expiresAt);
    const lost: string[] = [];
    for (const topic of subscribed) if (!next.topics.allows(topic)) lost.push(topic);
    return { ok: true, principal: next, lost };
  }

  /** Stops the expiry timer; later refreshes resolve `superseded`. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#expiry.cancel();
  }
}
