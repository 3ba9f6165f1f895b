/**
 * `stop()` leaves nothing running: with the simulator, two HTTP pollers (one of them failing and backing off), a
 * GBFS source (several documents per poll) and an MQTT client running, the process's active timers and sockets return to what they were before start.
 * In a file of its own so no other test's sockets are closing at the same time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { createOpenMeteoWeatherParser } from '../../src/aggregator/parsers/open-meteo-weather.js';
import { createSimulator } from '../../src/aggregator/simulator.js';
import { createHttpPollSource } from '../../src/aggregator/sources/http-poll.js';
import { createMqttSource } from '../../src/aggregator/sources/mqtt.js';
import { createGbfsSource } from '../../src/aggregator/sources/gbfs.js';
import { startFixtureServer, waitFor } from './fixture-server.js';

const WATCHED = ['Timeout', 'TCPSocketWrap', 'TCPWRAP'];

function counts(): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(WATCHED.map((k) => [k, 0]));
  for (const r of process.getActiveResourcesInfo()) if (r in out) out[r] = (out[r] ?? 0) + 1;
  return out;
}

test('stop() clears every timer and closes every socket of every source', async (t) => {
  const server = await startFixtureServer();
  t.after(() => server.close());
  server.failNext(500, 500, 500, 500, 500, 500);
  const before = counts();

  const aggregator = new DataAggregator({
    sources: [
      createSimulator({ seed: 3, intervalMs: 20 }),
      createHttpPollSource({
        name: 'ok',
        url: `${server.url}/open-meteo-forecast.json`,
        parser: createOpenMeteoWeatherParser(),
        intervalMs: 10,
      }),
      createHttpPollSource({
        name: 'flaky',
        url: `${server.url}/open-meteo-forecast-imperial.json`,
        parser: createOpenMeteoWeatherParser(),
        backoff: { initialMs: 5, maxMs: 20 },
      }),
      createGbfsSource({
        name: 'gbfs',
        url: `${server.url}/gbfs/v3.0/gbfs.json`,
        intervalMs: 10,
        backoff: { initialMs: 5, maxMs: 20 },
      }),
      createMqttSource({
        name: 'mqtt',
        url: 'mqtt://127.0.0.1:1883',
        topics: { airQuality: `citypulse-test/${randomBytes(6).toString('hex')}/+` },
      }),
    ],
    topics: ['cameras', 'weather', 'accidents', 'airQuality', 'bikes'],
    ttlMs: { weather: 0 },
    sweepIntervalMs: 10,
  });
  await aggregator.start();
  await waitFor(
    () => server.requests.length >= 10 && aggregator.sourceStatus().every((s) => s.lastSuccessAt !== null),
    'every source to have worked at least once',
  );
  const during = counts();
  assert.ok((during.Timeout ?? 0) > (before.Timeout ?? 0), 'timers are active while running');
  assert.ok(
    (during.TCPSocketWrap ?? 0) + (during.TCPWRAP ?? 0) > (before.TCPSocketWrap ?? 0) + (before.TCPWRAP ?? 0),
    'sockets are open',
  );

  await aggregator.stop();
  // Closed sockets leave the handle list once their close callbacks ran (the server side included).
  await waitFor(
    () => WATCHED.every((k) => (counts()[k] ?? 0) <= (before[k] ?? 0)),
    'handles released',
    2000,
  ).catch(() => {});
  assert.deepEqual(counts(), before);
  assert.ok(aggregator.sourceStatus().every((s) => s.state === 'stopped'));
});
