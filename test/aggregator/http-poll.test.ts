import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import type { Timers } from '../../src/aggregator/backoff.js';
import { backoffDelay } from '../../src/aggregator/backoff.js';
import { createOpenMeteoWeatherParser } from '../../src/aggregator/parsers/open-meteo-weather.js';
import { createHttpPollSource } from '../../src/aggregator/sources/http-poll.js';
import { startFixtureServer, waitFor } from './fixture-server.js';
import { ManualClock, RecordingPublisher } from './helpers.js';

/** Real timers that also record every delay the poller asks for. */
function recordingTimers(): Timers & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    setTimeout(callback, ms) {
      delays.push(ms);
      return setTimeout(callback, ms);
    },
    clearTimeout(handle) {
      clearTimeout(handle as ReturnType<typeof setTimeout>);
    },
  };
}

const TIMEOUT_MS = 4000;

test('backoffDelay grows exponentially, is capped, and jitters within the upper half', () => {
  const opts = { initialMs: 100, maxMs: 1000, factor: 2 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, opts, () => 0.999999)),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.deepEqual(
    [1, 2, 3].map((n) => backoffDelay(n, opts, () => 0)),
    [50, 100, 200],
  );
});

test('http-poll fetches, then revalidates with If-None-Match and gets a 304 without republishing', async (t) => {
  const server = await startFixtureServer();
  const timers = recordingTimers();
  const source = createHttpPollSource({
    name: 'om',
    url: `${server.url}/open-meteo-forecast.json`,
    parser: createOpenMeteoWeatherParser(),
    intervalMs: 20,
    timeoutMs: TIMEOUT_MS,
    timers,
  });
  const aggregator = new DataAggregator({ sources: [source], alerts: false, now: new ManualClock().now });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  t.after(async () => {
    await aggregator.stop();
    await server.close();
  });
  await aggregator.start();
  await waitFor(() => server.requests.length >= 3, 'three requests');
  await aggregator.stop();

  const [first, second, third] = server.requests;
  assert.equal(first?.status, 200);
  assert.equal(first?.headers['if-none-match'], undefined);
  assert.equal(second?.status, 304);
  assert.match(String(second?.headers['if-none-match']), /^"[0-9a-f]{16}"$/);
  assert.equal(second?.headers['if-modified-since'], 'Sun, 01 Mar 2026 11:55:00 GMT');
  assert.equal(third?.status, 304);
  assert.match(String(first?.headers['user-agent']), /^citypulse\//);
  assert.equal(publisher.of('weather', 'UPDATE').length, 1, 'a 304 publishes nothing');
  assert.equal(aggregator.getTopicSnapshot('weather').entities.length, 2);
  const status = aggregator.sourceStatus()[0];
  assert.equal(status?.lastError, null);
  assert.equal(status?.readings, 2);
  assert.deepEqual(timers.delays.filter((d) => d !== TIMEOUT_MS).slice(0, 3), [0, 20, 20]);
});

test('http-poll backs off exponentially on 500s, reports failing, then recovers', async (t) => {
  const server = await startFixtureServer();
  server.failNext(500, 500, 503);
  const timers = recordingTimers();
  const source = createHttpPollSource({
    name: 'om',
    url: `${server.url}/open-meteo-forecast.json`,
    parser: createOpenMeteoWeatherParser(),
    intervalMs: 60_000,
    timeoutMs: TIMEOUT_MS,
    backoff: { initialMs: 10, maxMs: 1000, factor: 3 },
    random: () => 0.999999,
    timers,
  });
  const aggregator = new DataAggregator({ sources: [source], alerts: false });
  t.after(async () => {
    await aggregator.stop();
    await server.close();
  });
  await aggregator.start();
  await waitFor(() => aggregator.sourceStatus()[0]?.state === 'failing', 'failing state');
  assert.equal(aggregator.sourceStatus()[0]?.lastError, 'HTTP 500');
  await waitFor(() => aggregator.getTopicSnapshot('weather').entities.length === 2, 'recovery');

  assert.deepEqual(
    server.requests.map((r) => r.status),
    [500, 500, 503, 200],
  );
  // initial poll, then 10, 30, 90 ms of backoff, then the regular interval.
  assert.deepEqual(
    timers.delays.filter((d) => d !== TIMEOUT_MS),
    [0, 10, 30, 90, 60_000],
  );
  const status = aggregator.sourceStatus()[0];
  assert.equal(status?.state, 'running');
  assert.equal(status?.lastError, 'HTTP 503', 'the last error stays visible after recovery');
  assert.notEqual(status?.lastSuccessAt, null);
});

test('http-poll aborts a request that exceeds its timeout and retries', async (t) => {
  const server = await startFixtureServer();
  server.hang('/open-meteo-forecast.json');
  const source = createHttpPollSource({
    name: 'slow',
    url: `${server.url}/open-meteo-forecast.json`,
    parser: createOpenMeteoWeatherParser(),
    timeoutMs: 30,
    backoff: { initialMs: 10, maxMs: 20 },
  });
  const aggregator = new DataAggregator({ sources: [source], alerts: false });
  t.after(async () => {
    await aggregator.stop();
    await server.close();
  });
  await aggregator.start();
  await waitFor(() => server.requests.length >= 2, 'a retry after the timeout');
  assert.equal(aggregator.sourceStatus()[0]?.state, 'failing');
  assert.equal(aggregator.sourceStatus()[0]?.lastError, 'timed out after 30 ms');
});

test('a 404, a body that is not JSON and a body in another format are source errors, not crashes', async (t) => {
  const server = await startFixtureServer();
  const textServer = await startFixtureServer();
  textServer.failNext(200); // a 200 whose body is plain text
  const make = (name: string, url: string) =>
    createHttpPollSource({
      name,
      url,
      parser: createOpenMeteoWeatherParser(),
      backoff: { initialMs: 10_000 },
    });
  const aggregator = new DataAggregator({
    sources: [
      make('missing', `${server.url}/missing.json`),
      make('text', `${textServer.url}/open-meteo-forecast.json`),
      make('wrong-format', `${server.url}/open511-events.json`),
    ],
    alerts: false,
  });
  t.after(async () => {
    await aggregator.stop();
    await server.close();
    await textServer.close();
  });
  await aggregator.start();
  await waitFor(() => aggregator.sourceStatus().every((s) => s.state === 'failing'), 'all failing');
  assert.deepEqual(
    aggregator.sourceStatus().map((s) => s.lastError),
    ['HTTP 404', 'response is not valid JSON', 'not an Open-Meteo response: no latitude/longitude'],
  );
  assert.equal(aggregator.isReady(), true);
});
