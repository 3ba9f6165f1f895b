import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALLOW_ALL,
  DENY_ALL,
  InvalidTopicPatternError,
  allowedTopics,
  compileTopicPermission,
  forbiddenTopics,
  topicPermissionFromClaim,
} from '../../src/security/access.js';

describe('compileTopicPermission', () => {
  const cases: { patterns: string[]; allowed: string[]; denied: string[] }[] = [
    { patterns: ['*'], allowed: ['weather', 'airQuality', 'x'], denied: [] },
    { patterns: ['weather'], allowed: ['weather'], denied: ['weather2', 'Weather', 'weathe', 'airQuality'] },
    { patterns: ['air*'], allowed: ['air', 'airQuality', 'air.north'], denied: ['ai', 'Air', 'weather'] },
    { patterns: ['weather', 'air*'], allowed: ['weather', 'airQuality'], denied: ['cameras', 'accidents'] },
    { patterns: [], allowed: [], denied: ['weather', ''] },
    {
      patterns: ['city.*', 'cameras'],
      allowed: ['city.a', 'city.', 'cameras'],
      denied: ['city', 'cameras.x'],
    },
  ];
  for (const { patterns, allowed, denied } of cases) {
    it(`${JSON.stringify(patterns)} allows ${JSON.stringify(allowed)}, not ${JSON.stringify(denied)}`, () => {
      const permission = compileTopicPermission(patterns);
      for (const topic of allowed) assert.equal(permission.allows(topic), true, topic);
      for (const topic of denied) assert.equal(permission.allows(topic), false, topic);
    });
  }

  it('a * among other patterns allows everything', () => {
    const permission = compileTopicPermission(['weather', '*']);
    assert.equal(permission, ALLOW_ALL);
    assert.equal(permission.allowsAll, true);
    assert.deepEqual(permission.patterns, ['*']);
  });

  it('an empty list is DENY_ALL', () => {
    assert.equal(compileTopicPermission([]), DENY_ALL);
    assert.equal(DENY_ALL.allows('weather'), false);
  });

  it('normalises: duplicates once, prefixes and names covered by a shorter prefix dropped', () => {
    const permission = compileTopicPermission(['air*', 'airQuality', 'airQ*', 'weather', 'weather']);
    assert.deepEqual([...permission.patterns].sort(), ['air*', 'weather']);
    assert.equal(permission.allows('airQuality'), true);
  });

  for (const bad of ['a*b', '**', '*a', 'has space', 'über', '', 'x'.repeat(65), 'a/b', 'a*b*']) {
    it(`refuses the pattern ${JSON.stringify(bad)}`, () => {
      assert.throws(() => compileTopicPermission([bad]), InvalidTopicPatternError);
    });
  }

  it('refuses an invalid pattern even after a *', () => {
    assert.throws(() => compileTopicPermission(['*', 'a*b']), InvalidTopicPatternError);
  });

  it('refuses non-string patterns', () => {
    assert.throws(() => compileTopicPermission([42 as unknown as string]), InvalidTopicPatternError);
  });

  it('permissions are frozen', () => {
    const permission = compileTopicPermission(['weather']);
    assert.equal(Object.isFrozen(permission), true);
    assert.equal(Object.isFrozen(permission.patterns), true);
  });
});

describe('topicPermissionFromClaim', () => {
  it('absent claim gives the fallback', () => {
    assert.equal(topicPermissionFromClaim(undefined, DENY_ALL), DENY_ALL);
    assert.equal(topicPermissionFromClaim(undefined, ALLOW_ALL), ALLOW_ALL);
  });
  it('accepts an array of patterns', () => {
    const permission = topicPermissionFromClaim(['weather', 'air*'], DENY_ALL);
    assert.ok(permission);
    assert.deepEqual(allowedTopics(permission, ['weather', 'airQuality', 'cameras']), [
      'weather',
      'airQuality',
    ]);
  });
  it('accepts a space- or comma-separated string', () => {
    const permission = topicPermissionFromClaim('weather, air*  cameras', DENY_ALL);
    assert.ok(permission);
    assert.deepEqual(forbiddenTopics(permission, ['weather', 'airQuality', 'cameras', 'accidents']), [
      'accidents',
    ]);
  });
  for (const bad of [42, null, { weather: true }, ['weather', 1], ['a*b'], Array(257).fill('weather')]) {
    it(`returns null for the malformed claim ${JSON.stringify(bad).slice(0, 40)}`, () => {
      assert.equal(topicPermissionFromClaim(bad, ALLOW_ALL), null);
    });
  }
  it('an empty array denies everything (not the fallback)', () => {
    assert.equal(topicPermissionFromClaim([], ALLOW_ALL), DENY_ALL);
  });
});
