import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ANONYMOUS, createAuthenticator, type Principal } from '../../src/security/auth.js';
import { ConnectionGuard } from '../../src/security/connection-guard.js';
import { RateLimiter } from '../../src/security/limits.js';
import { SECRET, mint } from './tokens.js';

const auth = createAuthenticator({ secret: SECRET, clockToleranceSec: 0 });

async function principalOf(token: string): Promise<Principal> {
  const result = await auth.verifyToken(token);
  assert.ok(result.ok, 'test token must verify');
  return result.principal;
}

async function waitFor(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ConnectionGuard', () => {
  it('with auth off: every topic, no expiry, refresh answered auth-off', async () => {
    let expired = 0;
    const guard = new ConnectionGuard({ principal: ANONYMOUS, onExpired: () => expired++ });
    try {
      assert.equal(guard.allows('anything'), true);
      assert.equal(guard.admitFrame(), 'ok');
      assert.deepEqual(await guard.refresh('whatever'), { ok: false, reason: 'auth-off' });
      await sleep(20);
      assert.equal(expired, 0);
    } finally {
      guard.dispose();
    }
  });

  it('turns the rate limiter into ok / drop / close', () => {
    let t = 0;
    const rateLimiter = new RateLimiter({ ratePerSec: 1, burst: 2, abuseRejections: 3, now: () => t });
    const guard = new ConnectionGuard({ principal: ANONYMOUS, rateLimiter, onExpired: () => {} });
    try {
      assert.deepEqual(
        Array.from({ length: 5 }, () => guard.admitFrame()),
        ['ok', 'ok', 'drop', 'drop', 'close'],
      );
      t += 60_000;
      assert.equal(guard.admitFrame(), 'close', 'abuse is sticky');
    } finally {
      guard.dispose();
    }
  });

  it('forbids topics outside the token', async () => {
    const principal = await principalOf(await mint({ topics: ['weather', 'air*'] }, { secret: SECRET }));
    const guard = new ConnectionGuard({ principal, authenticator: auth, onExpired: () => {} });
    try {
      assert.equal(guard.allows('airQuality'), true);
      assert.deepEqual(guard.forbidden(['weather', 'cameras', 'airQuality', 'accidents']), [
        'cameras',
        'accidents',
      ]);
    } finally {
      guard.dispose();
    }
  });

  it('closes on expiry without a refresh', async () => {
    let expired = 0;
    const principal = await principalOf(await mint({}, { secret: SECRET }));
    const guard = new ConnectionGuard({
      principal: { ...principal, expiresAt: Date.now() + 30 }, // shortened for the test
      authenticator: auth,
      onExpired: () => expired++,
    });
    try {
      await waitFor(() => expired === 1);
    } finally {
      guard.dispose();
    }
  });

  it('a refresh with a good token moves the expiry and swaps the permission, reporting lost topics', async () => {
    let expired = 0;
    // A clock that stands still until we move it: the old token cannot expire while the refresh is verified.
    let t = Date.now();
    const first = await principalOf(await mint({ topics: ['*'] }, { secret: SECRET }, { subject: 'ann' }));
    const guard = new ConnectionGuard({
      principal: { ...first, expiresAt: t + 30 },
      authenticator: auth,
      onExpired: () => expired++,
      now: () => t,
    });
    try {
      const token = await mint({ topics: ['weather'] }, { secret: SECRET }, { subject: 'ann' });
      const result = await guard.refresh(token, ['weather', 'cameras']);
      assert.ok(result.ok);
      assert.deepEqual(result.lost, ['cameras']);
      assert.equal(guard.principal.topics.allows('cameras'), false);
      t += 1000; // past the old expiry, well before the new one (60 s)
      await sleep(100); // the old 30 ms timer would have fired by now
      assert.equal(expired, 0, 'the refreshed token is still good');
    } finally {
      guard.dispose();
    }
  });

  it('a refresh with a bad token keeps the old one, which still expires', async () => {
    let expired = 0;
    const first = await principalOf(await mint({ topics: ['*'] }, { secret: SECRET }, { subject: 'ann' }));
    const guard = new ConnectionGuard({
      principal: { ...first, expiresAt: Date.now() + 50 },
      authenticator: auth,
      onExpired: () => expired++,
    });
    try {
      const forged = await mint({ topics: ['*'] }, { secret: `${SECRET}!` }, { subject: 'ann' });
      assert.deepEqual(await guard.refresh(forged), { ok: false, reason: 'bad-signature' });
      const stale = await mint({}, { secret: SECRET }, { subject: 'ann', expiresAt: Date.now() - 10_000 });
      assert.deepEqual(await guard.refresh(stale), { ok: false, reason: 'expired' });
      assert.equal(guard.principal.subject, 'ann');
      assert.equal(guard.allows('cameras'), true);
      await waitFor(() => expired === 1);
    } finally {
      guard.dispose();
    }
  });

  it('refuses a refresh that changes the subject, unless allowed', async () => {
    const principal = await principalOf(
      await mint({ topics: ['*'] }, { secret: SECRET }, { subject: 'ann' }),
    );
    const other = await mint({ topics: ['*'] }, { secret: SECRET }, { subject: 'bob' });
    const strict = new ConnectionGuard({ principal, authenticator: auth, onExpired: () => {} });
    const lax = new ConnectionGuard({
      principal,
      authenticator: auth,
      onExpired: () => {},
      allowSubjectChange: true,
    });
    try {
      assert.deepEqual(await strict.refresh(other), { ok: false, reason: 'subject-changed' });
      assert.equal(strict.principal.subject, 'ann');
      const result = await lax.refresh(other);
      assert.ok(result.ok);
      assert.equal(lax.principal.subject, 'bob');
    } finally {
      strict.dispose();
      lax.dispose();
    }
  });

  it('only the latest of overlapping refreshes applies', async () => {
    const principal = await principalOf(
      await mint({ topics: ['*'] }, { secret: SECRET }, { subject: 'ann' }),
    );
    const guard = new ConnectionGuard({ principal, authenticator: auth, onExpired: () => {} });
    try {
      const a = mint({ topics: ['weather'] }, { secret: SECRET }, { subject: 'ann' });
      const b = mint({ topics: ['cameras'] }, { secret: SECRET }, { subject: 'ann' });
      const [ra, rb] = await Promise.all([guard.refresh(await a), guard.refresh(await b)]);
      assert.deepEqual(ra, { ok: false, reason: 'superseded' });
      assert.equal(rb.ok, true);
      assert.equal(guard.allows('cameras'), true);
      assert.equal(guard.allows('weather'), false);
    } finally {
      guard.dispose();
    }
  });

  it('after dispose: no expiry callback, refreshes are superseded', async () => {
    let expired = 0;
    const principal = await principalOf(await mint({}, { secret: SECRET }, { subject: 'ann' }));
    const token = await mint({}, { secret: SECRET }, { subject: 'ann' });
    // Nothing awaits between creating and disposing: the 10 ms timer cannot have fired.
    const guard = new ConnectionGuard({
      principal: { ...principal, expiresAt: Date.now() + 10 },
      authenticator: auth,
      onExpired: () => expired++,
    });
    const pending = guard.refresh(token);
    guard.dispose();
    guard.dispose();
    assert.deepEqual(await pending, { ok: false, reason: 'superseded' });
    await sleep(40);
    assert.equal(expired, 0);
  });
});
