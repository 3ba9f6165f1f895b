import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_BACKOFF, backoffCeiling, backoffDelay, resolveBackoff } from '../../src/shared/backoff.js';

const options = { initialMs: 100, maxMs: 1000, factor: 2 };

test('the delay window grows by factor and is capped at maxMs', () => {
  const ceilings = [0, 1, 2, 3, 4, 5, 50, 5000].map((n) => backoffCeiling(n, options));
  assert.deepEqual(ceilings, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
});

test('full jitter: delay = floor(random * ceiling), the extremes included', () => {
  assert.equal(
    backoffDelay(0, options, () => 0),
    0,
  );
  assert.equal(
    backoffDelay(2, options, () => 0.5),
    200,
  );
  assert.equal(
    backoffDelay(10, options, () => 0.999),
    999,
  );
  // Out-of-range randomness is clamped rather than trusted.
  assert.equal(
    backoffDelay(1, options, () => 7),
    200,
  );
  assert.equal(
    backoffDelay(1, options, () => -1),
    0,
  );
});

test('every delay is within [0, min(maxMs, initialMs * factor^n)]', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 1, max: 100_000 }),
      fc.double({ min: 1, max: 10, noNaN: true }),
      fc.integer({ min: 0, max: 200 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (initialMs, extra, factor, attempt, r) => {
        const o = { initialMs, maxMs: initialMs + extra, factor };
        const delay = backoffDelay(attempt, o, () => r);
        assert.ok(delay >= 0 && Number.isInteger(delay));
        assert.ok(delay <= o.maxMs);
        assert.ok(delay <= initialMs * Math.pow(factor, attempt));
      },
    ),
  );
});

test('resolveBackoff fills defaults and rejects nonsense', () => {
  assert.deepEqual(resolveBackoff(undefined), DEFAULT_BACKOFF);
  assert.deepEqual(resolveBackoff({ initialMs: 10 }), { ...DEFAULT_BACKOFF, initialMs: 10 });
  for (const bad of [
    { initialMs: -1 },
    { maxMs: 10, initialMs: 20 },
    { factor: 0.5 },
    { initialMs: Number.NaN },
  ]) {
    assert.throws(() => resolveBackoff(bad), RangeError, JSON.stringify(bad));
  }
});
