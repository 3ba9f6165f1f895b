import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, eventually } from '../helpers/test-client.js';
import { startServer } from '../helpers/servers.js';

const KEY = 'test-publish-key-1';

async function post(
  url: string,
  body: unknown,
  auth: string | null = `Bearer ${KEY}`,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth === null ? {} : { authorization: auth }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('health, readiness, snapshot and stats', async (t) => {
  const server = await startServer(t, { source: 'simulator', simulatorIntervalMs: 50 });
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  const ready = await fetch(`${server.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal(((await ready.json()) as { ready: boolean }).ready, true);
  const snapshot = (await (await fetch(`${server.url}/api/snapshot`)).json()) as Record<
    string,
    { entities: unknown[] }
  >;
  assert.deepEqual(Object.keys(snapshot).sort(), ['accidents', 'airQuality', 'cameras', 'weather']);
  assert.ok((snapshot.cameras?.entities.length ?? 0) > 0, 'the simulator fills the cameras topic');

  const a = await connect(server.wsUrl, 'topics=weather');
  const b = await connect(server.wsUrl, 'topics=weather,cameras');
  const stats = async (): Promise<{ clients: number; topics: Record<string, number>; uptimeSec: number }> =>
    (await (await fetch(`${server.url}/api/stats`)).json()) as {
      clients: number;
      topics: Record<string, number>;
      uptimeSec: number;
    };
  assert.deepEqual((await stats()).topics, { cameras: 1, weather: 2, accidents: 0, airQuality: 0 });
  assert.equal((await stats()).clients, 2);
  a.client.ws.close();
  b.client.ws.terminate();
  await eventually(async () => (await stats()).clients === 0, 3000, 'stats after close and drop');
  assert.deepEqual((await stats()).topics, { cameras: 0, weather: 0, accidents: 0, airQuality: 0 });
  assert.equal((await fetch(`${server.url}/nope`)).status, 404);
  assert.equal((await fetch(`${server.url}/api/stats`, { method: 'DELETE' })).status, 405);
});

test("POST /api/publish delivers to that topic's subscribers with a seq", async (t) => {
  const server = await startServer(t, { publishKeys: ['other-key-000', KEY] });
  const weather = await connect(server.wsUrl, 'topics=weather');
  const cameras = await connect(server.wsUrl, 'topics=cameras');
  t.after(() => {
    weather.client.close();
    cameras.client.close();
  });
  const res = await post(`${server.url}/api/publish`, {
    topic: 'weather',
    type: 'ALERT',
    data: { storm: true },
  });
  assert.equal(res.status, 202);
  assert.equal(res.body.seq, 1);
  const m = await weather.client.next();
  assert.deepEqual(
    [m.type, (m as { topic?: string }).topic, m.data, (m as { seq?: number }).seq],
    ['ALERT', 'weather', { storm: true }, 1],
  );
  // The cameras subscriber got nothing: its next frame is the broadcast below.
  const b = await post(`${server.url}/api/broadcast`, { type: 'UPDATE', data: { hello: 'all' } });
  assert.equal(b.status, 202);
  assert.deepEqual((await cameras.client.next()).data, { hello: 'all' });
  assert.deepEqual((await weather.client.next()).data, { hello: 'all' });
});

test('the publish API refuses missing, wrong and non-Bearer credentials with 401', async (t) => {
  const server = await startServer(t, { publishKeys: [KEY] });
  const body = { topic: 'weather', type: 'UPDATE', data: 1 };
  for (const auth of [
    null,
    'Bearer wrong-key-123',
    `Basic ${Buffer.from(`u:${KEY}`).toString('base64')}`,
    `Bearer ${KEY}x`,
    `Bearer${KEY}`,
    `Bearer ${KEY} extra`,
    KEY,
  ]) {
    const res = await post(`${server.url}/api/publish`, body, auth);
    assert.equal(res.status, 401, String(auth));
  }
  assert.equal(server.service.counters().published, 0);
});

test('auth schemes are case-insensitive: the publish API takes bearer, BEARER, BeArEr (RFC 9110 §11.1)', async (t) => {
  const server = await startServer(t, { publishKeys: [KEY] });
  const body = { topic: 'weather', type: 'ALERT', data: 1 };
  const schemes = ['Bearer', 'bearer', 'BEARER', 'BeArEr', 'bEARER'];
  for (const [i, scheme] of schemes.entries()) {
    for (const gap of [' ', '  ']) {
      const res = await post(`${server.url}/api/publish`, body, `${scheme}${gap}${KEY}`);
      assert.equal(res.status, 202, `${scheme}${gap}<key>`);
      assert.equal(res.body.seq, 2 * i + (gap === ' ' ? 1 : 2));
    }
  }
});

test('publishing is off without a configured key', async (t) => {
  const server = await startServer(t);
  const res = await post(`${server.url}/api/publish`, { topic: 'weather', type: 'UPDATE', data: 1 });
  assert.equal(res.status, 403);
  assert.equal((res.body.error as { code: string }).code, 'PUBLISHING_DISABLED');
});

test('the publish API validates bodies: 400 with a JSON error, 413 over the limit', async (t) => {
  const server = await startServer(t, { publishKeys: [KEY], maxBodyBytes: 2048 });
  const cases: [unknown, string, string | undefined][] = [
    ['{not json', 'BAD_JSON', undefined],
    [[1, 2], 'BAD_BODY', undefined],
    [{ type: 'UPDATE', data: 1 }, 'BAD_FIELD', 'topic'],
    [{ topic: 'moon', type: 'UPDATE', data: 1 }, 'UNKNOWN_TOPIC', 'topic'],
    [{ topic: 'weather', type: 'DELETE', data: 1 }, 'BAD_FIELD', 'type'],
    [{ topic: 'weather', type: 'UPDATE' }, 'BAD_FIELD', 'data'],
  ];
  for (const [body, code, field] of cases) {
    const res = await post(`${server.url}/api/publish`, body);
    assert.equal(res.status, 400, JSON.stringify(body));
    const error = res.body.error as { code: string; message: string; field?: string };
    assert.equal(error.code, code);
    assert.equal(typeof error.message, 'string');
    assert.equal(error.field, field);
  }
  const big = await post(`${server.url}/api/publish`, {
    topic: 'weather',
    type: 'UPDATE',
    data: 'x'.repeat(4096),
  });
  assert.equal(big.status, 413);
  assert.equal(server.service.counters().published, 0);
});
