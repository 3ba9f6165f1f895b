import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import {
  ConnectionLimiter,
  DEADLINE_EXCEEDED,
  RateLimiter,
  clientIp,
  withDeadline,
} from '../../src/security/limits.js';

function clock(start = 1_000_000): {
  now: () => number;
  advance: (ms: number) => void;
  set: (ms: number) => void;
} {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms), set: (ms) => (t = ms) };
}

describe('RateLimiter', () => {
  it('lets a full burst through, then rejects', () => {
    const c = clock();
    const limiter = new RateLimiter({ ratePerSec: 10, burst: 5, now: c.now });
    for (let i = 0; i < 5; i++) assert.equal(limiter.take(), true, `frame ${i}`);
    assert.equal(limiter.take(), false);
    assert.equal(limiter.rejected, 1);
  });

  it('refills at the rate, never above the burst', () => {
    const c = clock();
    const limiter = new RateLimiter({ ratePerSec: 10, burst: 5, now: c.now });
    for (let i = 0; i < 5; i++) limiter.take();
    c.advance(100); // one token
    assert.equal(limiter.take(), true);
    assert.equal(limiter.take(), false);
    c.advance(60_000); // would be 600 tokens; capped at 5
    let passed = 0;
    for (let i = 0; i < 20; i++) if (limiter.take()) passed++;
    assert.equal(passed, 5);
  });

  it('sustains exactly the configured rate over a long run', () => {
    const c = clock();
    const limiter = new RateLimiter({ ratePerSec: 50, burst: 1, abuseRejections: Infinity, now: c.now });
    let passed = 0;
    // 10 s of 1000 frames per second.
    for (let i = 0; i < 10_000; i++) {
      c.advance(1);
      if (limiter.take()) passed++;
    }
    assert.ok(passed >= 499 && passed <= 501, `passed ${passed}`);
    assert.equal(limiter.shouldClose, false);
  });

  it('a clock going backwards adds no tokens', () => {
    const c = clock();
    const limiter = new RateLimiter({ ratePerSec: 10, burst: 2, now: c.now });
    limiter.take();
    limiter.take();
    c.advance(-10_000);
    assert.equal(limiter.take(), false);
    c.advance(10_000); // back where it was: still nothing elapsed since the last refill
    assert.equal(limiter.take(), false);
    c.advance(100);
    assert.equal(limiter.take(), true);
  });

  it('takes a cost larger than one', () => {
    const c = clock();
    const limiter = new RateLimiter({ ratePerSec: 1, burst: 10, now: c.now });
    assert.equal(limiter.take(7), true);
    assert.equal(limiter.take(4), false);
    assert.equal(limiter.take(3), true);
  });

  it('flags sustained abuse: N rejections within the window', () => {
    const c = clock();
    const limiter = new RateLimiter({
      ratePerSec: 1,
      burst: 1,
      abuseRejections: 5,
      abuseWindowMs: 1000,
      now: c.now,
    });
    limiter.take();
    for (let i = 0; i < 4; i++) {
      assert.equal(limiter.take(), false);
      assert.equal(limiter.shouldClose, false, `after ${i + 1} rejections`);
    }
    assert.equal(limiter.take(), false);
    assert.equal(limiter.shouldClose, true);
    c.advance(60_000);
    assert.equal(limiter.take(), true);
    assert.equal(limiter.shouldClose, true, 'sticky');
  });

  it('rejections spread over several windows do not add up', () => {
    const c = clock();
    const limiter = new RateLimiter({
      ratePerSec: 1,
      burst: 1,
      abuseRejections: 5,
      abuseWindowMs: 1000,
      now: c.now,
    });
    // 4 rejections per window, 10 windows.
    for (let w = 0; w < 10; w++) {
      for (let i = 0; i < 5; i++) limiter.take(); // 1 passes, 4 rejected
      c.advance(1000);
    }
    assert.equal(limiter.rejected, 40);
    assert.equal(limiter.shouldClose, false);
  });

  for (const bad of [
    { ratePerSec: 0 },
    { ratePerSec: -1 },
    { ratePerSec: Number.NaN },
    { ratePerSec: Infinity },
    { burst: 0 },
    { abuseRejections: 0 },
    { abuseWindowMs: 0 },
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => new RateLimiter(bad), RangeError);
    });
  }
});

describe('ConnectionLimiter', () => {
  it('bounds connections per IP (429 case) and frees them on release', () => {
    const limiter = new ConnectionLimiter({ maxTotal: 100, maxPerIp: 2 });
    const a = limiter.tryAcquire('10.0.0.1');
    const b = limiter.tryAcquire('10.0.0.1');
    assert.equal(a.status, 'ok');
    assert.equal(b.status, 'ok');
    assert.equal(limiter.tryAcquire('10.0.0.1').status, 'per-ip');
    assert.equal(limiter.tryAcquire('10.0.0.2').status, 'ok');
    assert.equal(limiter.countFor('10.0.0.1'), 2);
    if (a.status === 'ok') a.release();
    assert.equal(limiter.tryAcquire('10.0.0.1').status, 'ok');
  });

  it('bounds connections in total (503 case)', () => {
    const limiter = new ConnectionLimiter({ maxTotal: 3, maxPerIp: 10 });
    for (let i = 0; i < 3; i++) assert.equal(limiter.tryAcquire(`10.0.0.${i}`).status, 'ok');
    assert.equal(limiter.tryAcquire('10.0.0.9').status, 'total');
    assert.equal(limiter.total, 3);
  });

  it('release is idempotent per connection and cleans the per-IP map', () => {
    const limiter = new ConnectionLimiter({ maxTotal: 10, maxPerIp: 10 });
    const a = limiter.tryAcquire('ip');
    const b = limiter.tryAcquire('ip');
    assert.ok(a.status === 'ok' && b.status === 'ok');
    a.release();
    a.release();
    a.release();
    assert.equal(limiter.countFor('ip'), 1, 'a repeated release must not free b');
    assert.equal(limiter.total, 1);
    b.release();
    assert.equal(limiter.total, 0);
    assert.equal(limiter.addresses, 0);
  });

  it('a refused acquire counts nothing', () => {
    const limiter = new ConnectionLimiter({ maxTotal: 1, maxPerIp: 1 });
    limiter.tryAcquire('a');
    limiter.tryAcquire('a');
    limiter.tryAcquire('b');
    assert.equal(limiter.total, 1);
    assert.equal(limiter.addresses, 1);
  });

  it('Infinity disables a bound', () => {
    const limiter = new ConnectionLimiter({ maxTotal: Infinity, maxPerIp: Infinity });
    for (let i = 0; i < 1000; i++) assert.equal(limiter.tryAcquire('one').status, 'ok');
  });

  it('refuses zero or negative bounds', () => {
    assert.throws(() => new ConnectionLimiter({ maxTotal: 0 }), RangeError);
    assert.throws(() => new ConnectionLimiter({ maxPerIp: -1 }), RangeError);
  });
});

describe('clientIp', () => {
  const req = (remoteAddress: string | undefined, xff?: string | string[]): IncomingMessage =>
    ({
      socket: { remoteAddress },
      headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
    }) as unknown as IncomingMessage;

  it('uses the socket address and unmaps IPv4-mapped IPv6', () => {
    assert.equal(clientIp(req('::ffff:192.0.2.7')), '192.0.2.7');
    assert.equal(clientIp(req('2001:db8::1')), '2001:db8::1');
    assert.equal(clientIp(req(undefined)), 'unknown');
  });
  it('ignores X-Forwarded-For unless proxies are trusted', () => {
    assert.equal(clientIp(req('10.0.0.1', '203.0.113.5')), '10.0.0.1');
  });
  it('takes the entry as many places from the right as there are trusted proxies', () => {
    assert.equal(clientIp(req('10.0.0.1', 'spoofed, 203.0.113.5'), 1), '203.0.113.5');
    assert.equal(clientIp(req('10.0.0.1', 'spoofed, 203.0.113.5, 10.0.0.9'), 2), '203.0.113.5');
    assert.equal(clientIp(req('10.0.0.1', ['a, 198.51.100.1', '::ffff:203.0.113.8']), 1), '203.0.113.8');
  });
  it('falls back to the socket when the header is missing or shorter than the proxy chain', () => {
    assert.equal(clientIp(req('10.0.0.1'), 1), '10.0.0.1');
    assert.equal(clientIp(req('10.0.0.1', '203.0.113.5'), 2), '10.0.0.1');
    assert.equal(clientIp(req('10.0.0.1', ''), 1), '10.0.0.1');
  });
});

describe('withDeadline', () => {
  it('passes a value that comes in time', async () => {
    assert.equal(await withDeadline(Promise.resolve(7), 1000), 7);
  });
  it('gives DEADLINE_EXCEEDED when the promise is too slow', async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const slow = new Promise<number>((resolve) => (timer = setTimeout(resolve, 5_000, 1)));
    try {
      assert.equal(await withDeadline(slow, 10), DEADLINE_EXCEEDED);
    } finally {
      clearTimeout(timer);
    }
  });
  it('passes a rejection through', async () => {
    await assert.rejects(withDeadline(Promise.reject(new Error('boom')), 1000), /boom/);
  });
});
