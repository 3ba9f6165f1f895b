/**
 * Who may read over HTTP: the one rule for every HTTP read of topic data (`/api/snapshot`, `/api/alerts`,
 * `/api/stats`, `/api/stats?scope=cluster`) and for `/metrics` on the main port.
 *
 * - Auth off (no `--auth-secret` / `--auth-jwks`): reads are public, as the WebSocket is.
 * - Auth on: a read needs `Authorization: Bearer <credential>` (scheme case-insensitive, parsed by `bearerToken`,
 *   the parser of the WebSocket upgrade), where the credential is either
 *   - a publish key (`--publish-key`): every topic; or
 *   - a connection JWT, verified by the same authenticator as WebSocket connections: the answer holds only the
 *     topics the token's `topics` claim allows (the `allowedTopics` rule of `access.ts`). A token that allows none
 *     of the server's topics is refused 403.
 *   No credential, a wrong or an expired one is refused 401 with `WWW-Authenticate: Bearer`.
 * - `/metrics` on the main port with auth on needs a publish key (tokens are for topic data, not for operations);
 *   serve it on its own port (`--metrics-port`) to scrape it without one.
 *
 * `/healthz` and `/readyz` stay public in every mode.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ALLOW_ALL, allowedTopics, type TopicPermission } from '../security/access.js';
import { bearerToken } from '../security/tokens.js';
import { safeEqualKey } from '../security/api-keys.js';
import { type AuthFailureReason, type Authenticator } from '../security/auth.js';
import { sendError } from './http-response.js';

/** What a read request may see, or why it is refused. */
export type ReadDecision =
  | {
      readonly ok: true;
      /** The topics the answer may hold. */
      readonly permission: TopicPermission;
      /** `open`: auth is off; `key`: a publish key; `token`: a connection JWT. */
      readonly via: 'open' | 'key' | 'token';
    }
  | {
      readonly ok: false;
      readonly status: 401 | 403;
      /** `missing`, an {@link AuthFailureReason}, `no-topics` (403) or `key-required` (403, `/metrics`). */
      readonly reason: AuthFailureReason | 'no-topics' | 'key-required';
    };

/** Options of {@link createReadAuthorizer}. */
export interface ReadAuthorizerOptions {
  /** The authenticator of WebSocket connections; absent: auth is off and reads are public. */
  readonly authenticator?: Authenticator;
  /** The publish keys; each may read everything. */
  readonly publishKeys: readonly string[];
  /** The server's topics (a token must allow at least one). */
  readonly topics: readonly string[];
}

/** Decides HTTP reads. Both methods never reject. */
export interface ReadAuthorizer {
  /** Whether auth is on (reads need a credential). */
  readonly authOn: boolean;
  /** May this request read topic data, and which topics? */
  topicData(req: IncomingMessage): Promise<ReadDecision>;
  /** May this request read `/metrics` on the main port? (Open with auth off; a publish key with auth on.) */
  operations(req: IncomingMessage): ReadDecision;
}

/** Whether the request's `Authorization: Bearer` credential is one of `keys` (constant time). */
export function hasPublishKey(req: IncomingMessage, keys: readonly string[]): boolean {
  return safeEqualKey(bearerToken(req.headers.authorization), keys);
}

/** Creates the {@link ReadAuthorizer} of a server. */
export function createReadAuthorizer(options: ReadAuthorizerOptions): ReadAuthorizer {
  const { authenticator, publishKeys, topics } = options;
  return {
    authOn: authenticator !== undefined,
    async topicData(req) {
      if (authenticator === undefined) return { ok: true, permission: ALLOW_ALL, via: 'open' };
      const credential = bearerToken(req.headers.authorization);
      if (credential === undefined) return { ok: false, status: 401, reason: 'missing' };
      if (safeEqualKey(credential, publishKeys)) return { ok: true, permission: ALLOW_ALL, via: 'key' };
      let result;
      try {
        result = await authenticator.verifyToken(credential);
      } catch {
        return { ok: false, status: 401, reason: 'key-unavailable' };
      }
      if (!result.ok) return { ok: false, status: 401, reason: result.reason };
      const permission = result.principal.topics;
      if (allowedTopics(permission, topics).length === 0)
        return { ok: false, status: 403, reason: 'no-topics' };
      return { ok: true, permission, via: 'token' };
    },
    operations(req) {
      if (authenticator === undefined) return { ok: true, permission: ALLOW_ALL, via: 'open' };
      if (hasPublishKey(req, publishKeys)) return { ok: true, permission: ALLOW_ALL, via: 'key' };
      return bearerToken(req.headers.authorization) === undefined
        ? { ok: false, status: 401, reason: 'missing' }
        : { ok: false, status: 403, reason: 'key-required' };
    },
  };
}

/** Answers a refused read: 401 (with `WWW-Authenticate: Bearer`) or 403, the reason as the error message. */
export function sendReadRefusal(res: ServerResponse, decision: ReadDecision & { ok: false }): void {
  if (decision.status === 401) {
    sendError(
      res,
      401,
      'UNAUTHORIZED',
      `a valid "Authorization: Bearer <token or key>" is required (${decision.reason})`,
      {
        headers: { 'www-authenticate': 'Bearer realm="citypulse"' },
      },
    );
  } else {
    sendError(
      res,
      403,
      'FORBIDDEN',
      decision.reason === 'key-required'
        ? 'a publish key is required'
        : 'the token allows none of these topics',
    );
  }
}

/**
 * Authorizes a topic-data read and answers a refusal itself: resolves to the permission to filter the answer by,
 * or `null` when the request was refused (and answered). Never rejects.
 */
export type ReadGuard = (req: IncomingMessage, res: ServerResponse) => Promise<TopicPermission | null>;

/** The {@link ReadGuard} of an authorizer. */
export function readGuard(authorizer: ReadAuthorizer): ReadGuard {
  return async (req, res) => {
    const decision = await authorizer.topicData(req);
    if (decision.ok) return decision.permission;
    sendReadRefusal(res, decision);
    return null;
  };
}

/** The entries of a topic-keyed record that `permission` allows (the record itself when it allows all). */
export function pickTopics<T>(
  record: Readonly<Record<string, T>>,
  permission: TopicPermission,
): Readonly<Record<string, T>> {
  if (permission.allowsAll) return record;
  const out: Record<string, T> = {};
  for (const topic of allowedTopics(permission, Object.keys(record))) out[topic] = record[topic] as T;
  return out;
}
