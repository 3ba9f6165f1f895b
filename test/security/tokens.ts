/** Test helpers: keys, JWKS and token minting for the security tests. */
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWK, JWTPayload } from 'jose';
import type { IncomingMessage } from 'node:http';

/** A 64-character HS256 secret. */
export const SECRET = 'test-secret-0123456789abcdef0123456789abcdef0123456789abcdef0123';

/** An asymmetric key pair with its public JWK (with `kid` and `alg`). */
export interface TestKey {
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

export async function makeKey(alg: 'RS256' | 'ES256', kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, jwk };
}

export function jwksOf(...keys: TestKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => k.jwk) };
}

/** Seconds since the epoch of a ms clock value. */
export const sec = (ms: number): number => Math.floor(ms / 1000);

export interface MintOptions {
  /** ms since the epoch; default now + 60 s. `null` omits `exp`. */
  expiresAt?: number | null;
  notBefore?: number;
  subject?: string;
  audience?: string;
  issuer?: string;
}

/** Signs `claims` with HS256 and `secret`, or with `key` (RS256/ES256). */
export async function mint(
  claims: JWTPayload,
  signer: { secret: string } | { key: TestKey },
  options: MintOptions = {},
): Promise<string> {
  const header = 'secret' in signer ? { alg: 'HS256' } : { alg: signer.key.alg, kid: signer.key.kid };
  const jwt = new SignJWT(claims).setProtectedHeader(header).setIssuedAt();
  const expiresAt = options.expiresAt === undefined ? Date.now() + 60_000 : options.expiresAt;
  if (expiresAt !== null) jwt.setExpirationTime(sec(expiresAt));
  if (options.notBefore !== undefined) jwt.setNotBefore(sec(options.notBefore));
  if (options.subject !== undefined) jwt.setSubject(options.subject);
  if (options.audience !== undefined) jwt.setAudience(options.audience);
  if (options.issuer !== undefined) jwt.setIssuer(options.issuer);
  return 'secret' in signer
    ? jwt.sign(new TextEncoder().encode(signer.secret))
    : jwt.sign(signer.key.privateKey);
}

/** A stand-in for an upgrade request: only what the auth code reads. */
export function fakeRequest(options: {
  url?: string;
  headers?: Record<string, string>;
  remoteAddress?: string;
}): IncomingMessage {
  return {
    url: options.url ?? '/ws',
    headers: options.headers ?? {},
    socket: { remoteAddress: options.remoteAddress ?? '127.0.0.1' },
  } as unknown as IncomingMessage;
}
