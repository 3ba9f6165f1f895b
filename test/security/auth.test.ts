import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnsecuredJWT, type JSONWebKeySet } from 'jose';
import {
  BEARER_PROTOCOL_PREFIX,
  SUBPROTOCOL,
  bearerToken,
  extractToken,
  redactToken,
  selectSubprotocol,
} from '../../src/security/tokens.js';
import { checkOrigin } from '../../src/security/origin.js';
import { createAuthenticator, watchExpiry, type AuthResult } from '../../src/security/auth.js';
import { safeEqualKey } from '../../src/security/api-keys.js';
import { SECRET, fakeRequest, jwksOf, makeKey, mint, type TestKey } from './tokens.js';

function assertFailure(result: AuthResult, reason: string): void {
  assert.equal(result.ok, false, `expected failure ${reason}, got ok`);
  if (!result.ok) {
    assert.equal(result.status, 401);
    assert.equal(result.reason, reason);
  }
}

describe('token extraction', () => {
  it('reads a bearer header (scheme case-insensitive)', () => {
    assert.equal(bearerToken('Bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(bearerToken('bearer   abc '), 'abc');
    assert.equal(bearerToken('Basic abc'), undefined);
    assert.equal(bearerToken('Bearer'), undefined);
    assert.equal(bearerToken('Bearer a b'), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });

  it('prefers the header, then the subprotocol, then the query', () => {
    const all = fakeRequest({
      url: '/ws?token=q',
      headers: {
        authorization: 'Bearer h',
        'sec-websocket-protocol': `${SUBPROTOCOL}, ${BEARER_PROTOCOL_PREFIX}p`,
      },
    });
    assert.deepEqual(extractToken(all), { token: 'h', source: 'header' });
    const noHeader = fakeRequest({
      url: '/ws?token=q',
      headers: { 'sec-websocket-protocol': `${SUBPROTOCOL}, ${BEARER_PROTOCOL_PREFIX}p` },
    });
    assert.deepEqual(extractToken(noHeader), { token: 'p', source: 'subprotocol' });
    assert.deepEqual(extractToken(fakeRequest({ url: '/ws?topics=a&token=q%2E1' })), {
      token: 'q.1',
      source: 'query',
    });
    assert.equal(extractToken(fakeRequest({ url: '/ws?token=' })), null);
    assert.equal(
      extractToken(fakeRequest({ headers: { 'sec-websocket-protocol': BEARER_PROTOCOL_PREFIX } })),
      null,
    );
    assert.equal(extractToken(fakeRequest({})), null);
  });

  it('echoes only citypulse.v1, never the bearer subprotocol', () => {
    assert.equal(selectSubprotocol(new Set([`${BEARER_PROTOCOL_PREFIX}xyz`, SUBPROTOCOL])), SUBPROTOCOL);
    assert.equal(selectSubprotocol(new Set([`${BEARER_PROTOCOL_PREFIX}xyz`])), false);
    assert.equal(selectSubprotocol(new Set()), false);
  });

  it('redacts tokens in URLs for logs', () => {
    assert.equal(redactToken('/ws?token=abc.def&topics=a'), '/ws?token=REDACTED&topics=a');
    assert.equal(redactToken('/ws?topics=a&TOKEN=abc#x'), '/ws?topics=a&TOKEN=REDACTED#x');
    assert.equal(redactToken('/ws?mytoken=abc'), '/ws?mytoken=abc');
  });
});

describe('HS256 authenticator', () => {
  const auth = createAuthenticator({ secret: SECRET });

  it('accepts a valid token from each place and builds the principal', async () => {
    const expiresAt = Date.now() + 60_000;
    const token = await mint(
      { topics: ['weather', 'air*'] },
      { secret: SECRET },
      { subject: 'alice', expiresAt },
    );
    const requests = [
      fakeRequest({ headers: { authorization: `Bearer ${token}` } }),
      fakeRequest({
        headers: { 'sec-websocket-protocol': `${SUBPROTOCOL}, ${BEARER_PROTOCOL_PREFIX}${token}` },
      }),
      fakeRequest({ url: `/ws?token=${token}` }),
    ];
    for (const req of requests) {
      const result = await auth.authenticate(req);
      assert.equal(result.ok, true);
      if (!result.ok) continue;
      assert.equal(result.principal.subject, 'alice');
      assert.equal(result.principal.expiresAt, Math.floor(expiresAt / 1000) * 1000);
      assert.equal(result.principal.topics.allows('weather'), true);
      assert.equal(result.principal.topics.allows('airQuality'), true);
      assert.equal(result.principal.topics.allows('cameras'), false);
    }
  });

  it('refuses a request without a token', async () => {
    assertFailure(await auth.authenticate(fakeRequest({})), 'missing');
  });

  it('refuses a token signed with another secret', async () => {
    const token = await mint({ topics: ['*'] }, { secret: SECRET.replace('test', 'evil') });
    assertFailure(await auth.verifyToken(token), 'bad-signature');
  });

  it('refuses a token whose payload was altered', async () => {
    const token = await mint({ topics: ['weather'] }, { secret: SECRET });
    const [h, , s] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ topics: ['*'], exp: 9_999_999_999 })).toString('base64url');
    assertFailure(await auth.verifyToken(`${h}.${forged}.${s}`), 'bad-signature');
  });

  it('refuses garbage and oversize tokens as malformed', async () => {
    for (const token of ['', 'abc', 'a.b.c', '...', 'x'.repeat(9000)]) {
      assertFailure(await auth.verifyToken(token), 'malformed');
    }
  });

  it('refuses alg "none" and asymmetric tokens when only a secret is configured', async () => {
    const none = new UnsecuredJWT({ topics: ['*'], exp: Math.floor(Date.now() / 1000) + 60 }).encode();
    assertFailure(await auth.verifyToken(none), 'bad-algorithm');
    const key = await makeKey('ES256', 'k');
    assertFailure(await auth.verifyToken(await mint({}, { key })), 'bad-algorithm');
  });

  it('refuses a token without exp unless requireExp is false', async () => {
    const token = await mint({ topics: ['*'] }, { secret: SECRET }, { expiresAt: null });
    assertFailure(await auth.verifyToken(token), 'bad-claims');
    const lenient = createAuthenticator({ secret: SECRET, requireExp: false });
    const result = await lenient.verifyToken(token);
    assert.equal(result.ok, true);
    if (result.ok) assert.equal(result.principal.expiresAt, undefined);
  });

  it('honours exp with the clock tolerance', async () => {
    const exp = Math.floor(Date.now() / 1000) * 1000 + 10_000;
    const token = await mint({}, { secret: SECRET }, { expiresAt: exp });
    const at = (ms: number) => createAuthenticator({ secret: SECRET, clockToleranceSec: 5, now: () => ms });
    assert.equal((await at(exp - 1000).verifyToken(token)).ok, true);
    assert.equal((await at(exp + 4000).verifyToken(token)).ok, true, 'within tolerance');
    assertFailure(await at(exp + 6000).verifyToken(token), 'expired');
    assertFailure(
      await createAuthenticator({ secret: SECRET, clockToleranceSec: 0, now: () => exp + 1000 }).verifyToken(
        token,
      ),
      'expired',
    );
  });

  it('honours nbf with the clock tolerance', async () => {
    const nbf = Math.floor(Date.now() / 1000) * 1000 + 30_000;
    const token = await mint({}, { secret: SECRET }, { notBefore: nbf, expiresAt: nbf + 60_000 });
    const at = (ms: number) => createAuthenticator({ secret: SECRET, clockToleranceSec: 5, now: () => ms });
    assertFailure(await at(nbf - 6000).verifyToken(token), 'not-yet-valid');
    assert.equal((await at(nbf - 4000).verifyToken(token)).ok, true, 'within tolerance');
    assert.equal((await at(nbf + 1000).verifyToken(token)).ok, true);
  });

  it('checks audience and issuer when configured', async () => {
    const strict = createAuthenticator({
      secret: SECRET,
      audience: 'citypulse',
      issuer: ['https://idp.example'],
    });
    const good = await mint({}, { secret: SECRET }, { audience: 'citypulse', issuer: 'https://idp.example' });
    assert.equal((await strict.verifyToken(good)).ok, true);
    const wrongAud = await mint({}, { secret: SECRET }, { audience: 'other', issuer: 'https://idp.example' });
    assertFailure(await strict.verifyToken(wrongAud), 'bad-claims');
    const noIss = await mint({}, { secret: SECRET }, { audience: 'citypulse' });
    assertFailure(await strict.verifyToken(noIss), 'bad-claims');
  });

  it('reads the topics claim: string form, absent (default none / defaultTopics), malformed', async () => {
    const fromString = await auth.verifyToken(await mint({ topics: 'weather cameras' }, { secret: SECRET }));
    assert.ok(fromString.ok);
    assert.deepEqual([...fromString.principal.topics.patterns].sort(), ['cameras', 'weather']);

    const absent = await mint({}, { secret: SECRET });
    const denied = await auth.verifyToken(absent);
    assert.ok(denied.ok);
    assert.equal(denied.principal.topics.allows('weather'), false);

    const withDefault = await createAuthenticator({ secret: SECRET, defaultTopics: ['weather'] }).verifyToken(
      absent,
    );
    assert.ok(withDefault.ok);
    assert.equal(withDefault.principal.topics.allows('weather'), true);
    assert.equal(withDefault.principal.topics.allows('cameras'), false);

    const customClaim = createAuthenticator({ secret: SECRET, topicsClaim: 'scope' });
    const scoped = await customClaim.verifyToken(await mint({ scope: 'cameras' }, { secret: SECRET }));
    assert.ok(scoped.ok);
    assert.equal(scoped.principal.topics.allows('cameras'), true);

    for (const bad of [['a*b'], 42, [1, 2], { '*': true }]) {
      assertFailure(await auth.verifyToken(await mint({ topics: bad }, { secret: SECRET })), 'bad-topics');
    }
  });

  it('refuses bad configurations at creation', () => {
    assert.throws(() => createAuthenticator({}), /secret .* or a JWKS/);
    assert.throws(() => createAuthenticator({ secret: 'short' }), /at least 32 bytes/);
    assert.throws(
      () => createAuthenticator({ secret: SECRET, defaultTopics: ['a*b'] }),
      /invalid topic pattern/,
    );
    assert.throws(() => createAuthenticator({ jwksUrl: 'ftp://x/jwks' }), /http/);
    assert.throws(() => createAuthenticator({ jwksFile: '/nonexistent/jwks.json' }), /cannot read JWKS file/);
    assert.throws(
      () => createAuthenticator({ jwks: { keys: [] }, jwksUrl: 'http://127.0.0.1/' }),
      /at most one/,
    );
    assert.throws(() => createAuthenticator({ secret: SECRET, clockToleranceSec: -1 }), RangeError);
  });
});

describe('JWKS file authenticator (RS256, ES256)', () => {
  let dir: string;
  let rsa: TestKey;
  let ec: TestKey;
  let stranger: TestKey;
  let jwksPath: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citypulse-jwks-'));
    rsa = await makeKey('RS256', 'rsa-1');
    ec = await makeKey('ES256', 'ec-1');
    stranger = await makeKey('RS256', 'rsa-1'); // same kid, different key
    jwksPath = join(dir, 'jwks.json');
    await writeFile(jwksPath, JSON.stringify(jwksOf(rsa, ec)));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts RS256 and ES256 tokens signed by keys of the set', async () => {
    const auth = createAuthenticator({ jwksFile: jwksPath });
    for (const key of [rsa, ec]) {
      const result = await auth.verifyToken(await mint({ topics: ['*'] }, { key }, { subject: key.kid }));
      assert.ok(result.ok, key.alg);
      assert.equal(result.principal.subject, key.kid);
      assert.equal(result.principal.topics.allowsAll, true);
    }
  });

  it('refuses a token signed by a key outside the set', async () => {
    const auth = createAuthenticator({ jwksFile: jwksPath });
    assertFailure(await auth.verifyToken(await mint({}, { key: stranger })), 'bad-signature');
    const unknownKid = await makeKey('ES256', 'ec-404');
    assertFailure(await auth.verifyToken(await mint({}, { key: unknownKid })), 'unknown-key');
  });

  it('refuses HS256 when only a JWKS is configured (no algorithm confusion)', async () => {
    const auth = createAuthenticator({ jwksFile: jwksPath });
    // The classic attack: HMAC with the public key's text as the secret.
    const token = await mint({ topics: ['*'] }, { secret: JSON.stringify(rsa.jwk) });
    assertFailure(await auth.verifyToken(token), 'bad-algorithm');
  });

  it('limits the accepted asymmetric algorithms when asked', async () => {
    const auth = createAuthenticator({ jwksFile: jwksPath, jwksAlgorithms: ['ES256'] });
    assert.equal((await auth.verifyToken(await mint({}, { key: ec }))).ok, true);
    assertFailure(await auth.verifyToken(await mint({}, { key: rsa })), 'bad-algorithm');
  });

  it('accepts a secret and a JWKS together, each for its own algorithm', async () => {
    const auth = createAuthenticator({ secret: SECRET, jwks: jwksOf(rsa) });
    assert.equal((await auth.verifyToken(await mint({}, { secret: SECRET }))).ok, true);
    assert.equal((await auth.verifyToken(await mint({}, { key: rsa }))).ok, true);
    assertFailure(await auth.verifyToken(await mint({}, { key: stranger })), 'bad-signature');
  });

  it('refuses a file that is not a JWKS', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{not json');
    assert.throws(() => createAuthenticator({ jwksFile: bad }), /cannot read JWKS file/);
    await writeFile(bad, '{"nokeys": true}');
    assert.throws(() => createAuthenticator({ jwksFile: bad }));
  });
});

describe('JWKS URL authenticator', () => {
  let server: Server;
  let url: string;
  let jwks: JSONWebKeySet;
  let mode: 'ok' | 'error' | 'hang' = 'ok';
  let requests = 0;
  let k1: TestKey;
  let k2: TestKey;

  before(async () => {
    k1 = await makeKey('RS256', 'k1');
    k2 = await makeKey('ES256', 'k2');
    jwks = jwksOf(k1);
    server = createServer((req, res) => {
      requests++;
      if (mode === 'hang') return; // never answers; closed by closeAllConnections
      if (mode === 'error') {
        res.writeHead(500).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('fetches the set once and verifies from the cache', async () => {
    mode = 'ok';
    requests = 0;
    const auth = createAuthenticator({ jwksUrl: url, jwksCooldownMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      const result = await auth.verifyToken(
        await mint({ topics: ['weather'] }, { key: k1 }, { subject: `u${i}` }),
      );
      assert.ok(result.ok);
      assert.equal(result.principal.subject, `u${i}`);
    }
    assert.equal(requests, 1);
  });

  it('refetches on an unknown kid (key rotation)', async () => {
    mode = 'ok';
    jwks = jwksOf(k1);
    const auth = createAuthenticator({ jwksUrl: url, jwksCooldownMs: 0 });
    assert.equal((await auth.verifyToken(await mint({}, { key: k1 }))).ok, true);
    jwks = jwksOf(k1, k2); // the IdP publishes a new key
    assert.equal((await auth.verifyToken(await mint({}, { key: k2 }))).ok, true);
  });

  it('answers key-unavailable when the endpoint fails', async () => {
    mode = 'error';
    const auth = createAuthenticator({ jwksUrl: url });
    assertFailure(await auth.verifyToken(await mint({}, { key: k1 })), 'key-unavailable');
    mode = 'ok';
  });

  it('answers key-unavailable when the endpoint hangs past the timeout', async () => {
    mode = 'hang';
    const auth = createAuthenticator({ jwksUrl: url, jwksTimeoutMs: 50 });
    assertFailure(await auth.verifyToken(await mint({}, { key: k1 })), 'key-unavailable');
    mode = 'ok';
    server.closeAllConnections();
  });
});

describe('watchExpiry', () => {
  const waitFor = async (check: () => boolean, ms = 2000): Promise<void> => {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('fires once after expiry plus grace', async () => {
    let fired = 0;
    const watch = watchExpiry(Date.now() + 20, () => fired++, { graceMs: 10 });
    try {
      await waitFor(() => fired > 0);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(fired, 1);
    } finally {
      watch.cancel();
    }
  });

  it('fires at once for a token already expired', async () => {
    let fired = 0;
    const watch = watchExpiry(Date.now() - 1000, () => fired++);
    try {
      await waitFor(() => fired > 0);
    } finally {
      watch.cancel();
    }
  });

  it('does not fire after cancel, nor for undefined', async () => {
    let fired = 0;
    const a = watchExpiry(Date.now() + 10, () => fired++);
    a.cancel();
    a.cancel();
    const b = watchExpiry(undefined, () => fired++);
    await new Promise((r) => setTimeout(r, 40));
    b.cancel();
    assert.equal(fired, 0);
  });

  it('reschedule (a refresh) moves the deadline', async () => {
    let fired = 0;
    const watch = watchExpiry(Date.now() + 15, () => fired++);
    try {
      watch.reschedule(Date.now() + 60_000);
      await new Promise((r) => setTimeout(r, 40));
      assert.equal(fired, 0);
      watch.reschedule(Date.now() + 5);
      await waitFor(() => fired === 1);
    } finally {
      watch.cancel();
    }
  });

  it('does not fire early for expiries beyond the range of setTimeout', async () => {
    let fired = 0;
    const watch = watchExpiry(Date.now() + 40 * 24 * 3600 * 1000, () => fired++);
    await new Promise((r) => setTimeout(r, 30));
    watch.cancel();
    assert.equal(fired, 0);
  });

  it('re-checks the injected clock when the timer fires early', async () => {
    let fired = 0;
    let t = 0;
    // The clock says only 0 ms passed when the timer fires: it must re-arm, not fire.
    const watch = watchExpiry(10, () => fired++, { now: () => t });
    try {
      await new Promise((r) => setTimeout(r, 40));
      assert.equal(fired, 0);
      t = 10;
      await waitFor(() => fired === 1);
    } finally {
      watch.cancel();
    }
  });
});

describe('checkOrigin', () => {
  const req = (origin?: string) => fakeRequest({ headers: origin === undefined ? {} : { origin } });
  const list = ['https://city.example', 'http://localhost:8080', 'https://*.maps.example'];

  it('an empty list or * allows everything', () => {
    assert.equal(checkOrigin(req('https://evil.example'), []), true);
    assert.equal(checkOrigin(req('https://evil.example'), ['*']), true);
  });
  it('allows listed origins, normalised', () => {
    assert.equal(checkOrigin(req('https://city.example'), list), true);
    assert.equal(checkOrigin(req('HTTPS://CITY.EXAMPLE:443'), list), true);
    assert.equal(checkOrigin(req('http://localhost:8080'), list), true);
  });
  it('refuses others: scheme, port, host and lookalikes', () => {
    for (const origin of [
      'http://city.example',
      'https://city.example:8443',
      'https://city.example.evil.com',
      'https://evilcity.example',
      'http://localhost:8081',
      'null',
      'not a url',
    ]) {
      assert.equal(checkOrigin(req(origin), list), false, origin);
    }
  });
  it('subdomain wildcards match subdomains only', () => {
    assert.equal(checkOrigin(req('https://a.maps.example'), list), true);
    assert.equal(checkOrigin(req('https://a.b.maps.example'), list), true);
    assert.equal(checkOrigin(req('https://maps.example'), list), false);
    assert.equal(checkOrigin(req('https://evilmaps.example'), list), false);
    assert.equal(checkOrigin(req('http://a.maps.example'), list), false);
  });
  it('a missing Origin passes by default (non-browser clients), not with allowMissing false', () => {
    assert.equal(checkOrigin(req(), list), true);
    assert.equal(checkOrigin(req(), list, { allowMissing: false }), false);
  });
  it('null passes only when listed', () => {
    assert.equal(checkOrigin(req('null'), ['null']), true);
  });
  it('refuses an invalid list entry', () => {
    assert.throws(() => checkOrigin(req('https://a'), ['city.example']), /invalid allowed origin/);
  });
});

describe('safeEqualKey', () => {
  it('matches any of several keys', () => {
    assert.equal(safeEqualKey('key-one', ['key-one', 'key-two']), true);
    assert.equal(safeEqualKey('key-two', ['key-one', 'key-two']), true);
  });
  it('refuses near misses, prefixes and different lengths', () => {
    for (const given of ['key-on', 'key-one ', 'KEY-ONE', 'key-onf', 'key-one-and-more']) {
      assert.equal(safeEqualKey(given, ['key-one', 'key-two']), false, given);
    }
  });
  it('never matches empty input or an empty list, and ignores empty keys', () => {
    assert.equal(safeEqualKey('', ['']), false);
    assert.equal(safeEqualKey(undefined, ['a']), false);
    assert.equal(safeEqualKey('a', []), false);
    assert.equal(safeEqualKey('a', ['', 'a']), true);
  });
  it('handles non-ASCII keys', () => {
    assert.equal(safeEqualKey('clé-ü', ['clé-ü']), true);
    assert.equal(safeEqualKey('clé-u', ['clé-ü']), false);
  });
});
