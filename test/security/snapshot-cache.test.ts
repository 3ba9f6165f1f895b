/**
 * Issue 10 item 4: the connect-time snapshot cache is keyed by the canonical topic set (registry order, each topic
 * once), never by the raw `?topics=` string, and holds at most `snapshotCacheSize` frames of the current snapshot.
 * Thousands of connects with distinct raw lists (permutations, duplicates, junk names) leave it bounded, and every
 * client still gets the right snapshot.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { startService } from '../helpers/servers.js';
import { connect } from '../helpers/test-client.js';

const TOPICS = ['cameras', 'weather', 'accidents', 'airQuality'] as const;

test('thousands of distinct raw ?topics= lists leave the snapshot cache bounded, and each client gets its topics', async (t) => {
  const CACHE = 8;
  const { service, url } = await startService(t, { snapshotCacheSize: CACHE });
  const state = Object.freeze(
    Object.fromEntries(TOPICS.map((topic) => [topic, { entities: [{ id: `${topic}-1` }], seq: 0 }])),
  );
  service.setSnapshotProvider(() => state); // the state stands still: one snapshot object throughout
  const rawList = fc.array(
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...TOPICS) },
      { weight: 1, arbitrary: fc.stringMatching(/^[a-z]{1,12}$/) }, // junk names
    ),
    { minLength: 1, maxLength: 12 },
  );
  const lists = fc.sample(rawList, { numRuns: 2000, seed: 42 });
  let maxEntries = 0;
  const distinct = new Set<string>();
  for (const list of lists) {
    const raw = list.join(',');
    distinct.add(raw);
    const { client, snapshot } = await connect(url, `topics=${encodeURIComponent(raw)}`);
    client.close();
    // Junk names refuse the whole list: the snapshot then holds every topic, like a connect without a list.
    const known = list.every((name) => (TOPICS as readonly string[]).includes(name));
    const expected = known ? TOPICS.filter((topic) => list.includes(topic)) : [...TOPICS];
    assert.deepEqual(Object.keys(snapshot.data as object), expected, raw);
    const entries = service.counters().snapshotCacheEntries;
    assert.ok(entries <= CACHE, `${entries} cached frames after "${raw}"`);
    maxEntries = Math.max(maxEntries, entries);
  }
  assert.ok(distinct.size > 1000, `${distinct.size} distinct raw lists`);
  // The 15 non-empty canonical sets are more than the cache holds: it filled, and stayed at its bound.
  assert.equal(maxEntries, CACHE);
});

test('the same canonical set is one cache entry, whatever the order or repetition of the raw list', async (t) => {
  const { service, url } = await startService(t);
  const state = Object.freeze({ weather: { entities: [], seq: 0 }, cameras: { entities: [], seq: 0 } });
  service.setSnapshotProvider(() => state);
  const spellings = [
    'weather,cameras',
    'cameras,weather',
    'cameras,cameras,weather',
    'weather,,weather,cameras,',
  ];
  for (const raw of spellings) {
    const { client, snapshot } = await connect(url, `topics=${raw}`);
    client.close();
    assert.deepEqual(Object.keys(snapshot.data as object), ['cameras', 'weather'], raw);
  }
  assert.equal(service.counters().snapshotCacheEntries, 1);
  // A new snapshot object (the state changed) replaces the cached frames of the old one.
  const next = Object.freeze({ weather: { entities: [], seq: 0 }, cameras: { entities: [], seq: 0 } });
  service.setSnapshotProvider(() => next);
  const { client } = await connect(url, 'topics=weather');
  client.close();
  assert.equal(service.counters().snapshotCacheEntries, 1);
});
