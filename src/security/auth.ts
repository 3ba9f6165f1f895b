/**
 * Who a token says a connection is: JWT verification (`createAuthenticator`) and token-expiry watching. Where the
 * token comes from is `tokens.ts`; admission of an upgrade is `upgrade-gate.ts`.
 *
 * Verification uses `jose`: HS256 with a shared secret, RS256/ES256 against a JWKS file (`createLocalJWKSet`) or URL
 * (`createRemoteJWKSet`, cached, refetched on an unknown `kid`). Both may be configured at once; the token's `alg`
 * picks. `exp` is required by default, `exp`/`nbf` are checked with a clock tolerance, `aud`/`iss` when configured.
 * The `topics` claim becomes the connection's {@link TopicPermission}.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWSAlgorithm, JWSHeaderParameters, FlattenedJWSInput, JWTPayload } from 'jose';
import { ALLOW_ALL, DENY_ALL, compileTopicPermission, topicPermissionFromClaim } from './access.js';
import type { TopicPermission } from './access.js';
import { MAX_TOKEN_LENGTH, extractToken } from './tokens.js';

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

/** A refused {@link AuthResult} with `reason` and `message`. */
export function failure(reason: AuthFailureReason, message: string): AuthResult {
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
