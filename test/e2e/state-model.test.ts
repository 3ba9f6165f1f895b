/**
 * End to end, one state model: after each batch of writes (raw `POST /api/publish` UPDATEs, valid and invalid,
 * `/api/ingest`, duplicates, an upsert and a remove of one id, unknown removes), an SDK client that was connected
 * all along, a client that joins now (its SNAPSHOT) and `GET /api/snapshot` hold the same entities. An invalid
 * UPDATE is answered 400 `BAD_UPDATE` with the field, and takes no seq. On a single node, and on two nodes over
 * Redis (writes to one node, readers on the other).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { createClient } from '../../src/client/index.js';
import { createServer, type CityPulseServer } from '../../src/app/create-server.js';
import { KEY, redisUp, startNode, testPrefix } from '../cluster/helpers.js';
import { waitFor } from '../client/fixtures/wait.js';
import { postJson } from '../helpers/servers.js';

const TOPIC = 'accidents';
// Alert rules off: only the writes below take seqs, so each batch's last seq is known.

function accident(id: string, severity: number): Record<string, unknown> {
  return {
    id,
    location: { lat: 52.37, lon: 4.89 },
    severity,
    description: `accident ${id}`,
    kind: 'collision',
    reportedAt: '2026-03-01T11:59:00.000Z',
    updatedAt: '2026-03-01T12:00:00.000Z',
    source: 'e2e',
  };
}

type Write =
  | { readonly path: '/api/publish'; readonly data: unknown; readonly refused?: string }
  | { readonly path: '/api/ingest'; readonly entities: unknown[]; readonly removes?: string[] }
  // The design's `broadcastToTopic` on the writer node: the same rule, the same state change, in every mode.
  | { readonly path: 'library'; readonly data: unknown; readonly refused?: string };

const BATCHES: readonly (readonly Write[])[] = [
  [
    { path: '/api/publish', data: { upserts: [accident('a', 1), accident('b', 2)], removes: [] } },
    { path: '/api/ingest', entities: [accident('c', 3)] },
  ],
  [
    // duplicate ids (the last wins), an upsert and a remove of one id (removed), an unknown remove
    {
      path: '/api/publish',
      data: { upserts: [accident('a', 4), accident('a', 5), accident('d', 1)], removes: ['d', 'zz'] },
    },
    { path: '/api/publish', data: { upserts: [{ id: 'bare' }] }, refused: 'data.upserts[0].updatedAt' },
  ],
  [
    // partly invalid: refused whole, nothing of it applied
    {
      path: '/api/publish',
      data: { upserts: [accident('e', 1), accident('f', 9)] },
      refused: 'data.upserts[1].severity',
    },
    { path: '/api/publish', data: accident('g', 2), refused: 'data' }, // a bare entity as data is not a change
    { path: '/api/publish', data: { removes: ['b'] } },
  ],
  [
    { path: '/api/ingest', entities: [accident('a', 2)], removes: ['c'] },
    { path: '/api/publish', data: { removes: [42] }, refused: 'data.removes[0]' },
    { path: '/api/publish', data: { upserts: [accident('h', 3)], removes: [] } },
  ],
  [
    { path: 'library', data: { upserts: [accident('i', 4)], removes: ['h'] } },
    { path: 'library', data: { upserts: [accident('j', 11)] }, refused: 'upserts[0].severity' },
    { path: 'library', data: { upserts: [accident('h', 3)] } },
    { path: 'library', data: { removes: ['i'] } },
  ],
];

function post(
  server: CityPulseServer,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return postJson(server, path, body, KEY);
}

function canonical(entities: Iterable<unknown>): string[] {
  return [...entities].map((e) => JSON.stringify(e)).sort();
}

/** A client that joins now: the entities and seq of its first SNAPSHOT of the topic. */
async function lateJoiner(server: CityPulseServer): Promise<{ entities: unknown[]; seq: number }> {
  const ws = new WebSocket(`${server.wsUrl}?topics=${TOPIC}`);
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SNAPSHOT within 5 s')), 5000);
      ws.on('error', reject);
      ws.on('message', (raw) => {
        const frame = JSON.parse(String(raw)) as {
          type: string;
          data: Record<string, { entities: unknown[]; seq: number }>;
        };
        const state = frame.type === 'SNAPSHOT' ? frame.data[TOPIC] : undefined;
        if (state === undefined) return;
        clearTimeout(timer);
        resolve(state);
      });
    });
  } finally {
    ws.terminate();
  }
}

async function scenario(t: TestContext, writer: CityPulseServer, reader: CityPulseServer): Promise<void> {
  const client = createClient({ url: reader.wsUrl, WebSocket, topics: [TOPIC] });
  t.after(() => client.close());
  await waitFor(() => client.connectionState === 'connected', 'connected');
  let seq = 0;
  for (const [b, batch] of BATCHES.entries()) {
    for (const write of batch) {
      if (write.path === '/api/ingest') {
        const res = await post(writer, write.path, {
          topic: TOPIC,
          entities: write.entities,
          removes: write.removes ?? [],
        });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        seq += 1; // each ingest here changes the state: one UPDATE (its answer's seq lags in cluster mode)
        continue;
      }
      if (write.path === 'library') {
        const message = { type: 'UPDATE' as const, data: write.data, timestamp: new Date().toISOString() };
        if (write.refused !== undefined) {
          assert.throws(
            () => writer.service.broadcastToTopic(TOPIC, message),
            (error: Error & { code?: string; field?: string }) =>
              error.code === 'BAD_UPDATE' && error.field === write.refused,
          );
        } else {
          writer.service.broadcastToTopic(TOPIC, message);
          seq += 1;
        }
        continue;
      }
      const res = await post(writer, write.path, { topic: TOPIC, type: 'UPDATE', data: write.data });
      if (write.refused !== undefined) {
        assert.equal(res.status, 400, `batch ${b}: ${JSON.stringify(write.data)}`);
        const error = res.body.error as { code?: string; field?: string };
        assert.equal(error.code, 'BAD_UPDATE');
        assert.equal(error.field, write.refused);
      } else {
        assert.equal(res.status, 202, JSON.stringify(res.body));
        assert.equal(res.body.seq, seq + 1, 'the next seq: a refused UPDATE took none');
        seq = res.body.seq as number;
      }
    }
    await waitFor(() => (client.position(TOPIC)?.seq ?? -1) >= seq, `client at seq ${seq} after batch ${b}`);
    assert.equal(client.position(TOPIC)?.seq, seq, 'nothing but our writes took a seq');
    const early = canonical(client.state(TOPIC).values());
    const joiner = await lateJoiner(reader);
    assert.equal(joiner.seq, seq);
    const res = await fetch(`${reader.url}/api/snapshot`, { signal: AbortSignal.timeout(5000) });
    const snapshot = ((await res.json()) as Record<string, { entities: unknown[]; seq: number }>)[TOPIC];
    assert.equal(snapshot?.seq, seq);
    assert.deepEqual(canonical(joiner.entities), early, `batch ${b}: late joiner = early client`);
    assert.deepEqual(canonical(snapshot?.entities ?? []), early, `batch ${b}: /api/snapshot = early client`);
  }
  // What the batches add up to, by the documented rule.
  const ids = [...client.state(TOPIC).keys()].sort();
  assert.deepEqual(ids, ['a', 'h']);
  // (the last batch, through the library: i upserted then removed, h removed then upserted again)
  assert.equal((client.state(TOPIC).get('a') as { severity?: number } | undefined)?.severity, 2);
}

test('single node: early client, late joiner and /api/snapshot agree after every batch', async (t) => {
  const server = await createServer({
    port: 0,
    host: '127.0.0.1',
    source: 'none',
    publishKeys: [KEY],
    aggregator: { alerts: false },
  });
  t.after(() => server.close());
  await scenario(t, server, server);
});

const up = await redisUp();

test(
  'two nodes over Redis: writes on one, readers on the other agree after every batch',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 60_000 },
  async (t) => {
    const prefix = testPrefix(t);
    const a = await startNode(t, { redisKeyPrefix: prefix, nodeId: 'writer', aggregator: { alerts: false } });
    const b = await startNode(t, { redisKeyPrefix: prefix, nodeId: 'reader', aggregator: { alerts: false } });
    await scenario(t, a, b);
  },
);
