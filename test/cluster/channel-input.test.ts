/**
 * What a node reads from Redis is input too. A topic's channel: anyone who can reach the Redis can PUBLISH on it. Malformed frames (no
 * fields, a seq that is not a positive integer, an empty or huge epoch, a payload that is not the script's JSON
 * envelope, a huge message) are dropped by `parseChannelFrame` before they can move a node's position or reach a
 * client; the real frames around them are delivered in order, none missing. A topic's state hash: values that do
 * not parse, are not entities, or are nested past the JSON bounds are left out of snapshots instead of failing every
 * later reader.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChannelFrame } from '../../src/cluster/redis-topic-channel.js';
import {
  RecordingClient,
  assertRange,
  redisClient,
  redisUp,
  startNode,
  testPrefix,
  waitFor,
} from './helpers.js';

const TOPIC = 'accidents';
const ENVELOPE = '{"type":"ALERT","topic":"accidents","data":{},"timestamp":"t","seq":2,"epoch":"e"}';

/** Malformed channel messages, each with the reason it must be dropped. */
const MALFORMED: readonly (readonly [string, string])[] = [
  ['', 'empty'],
  ['garbage', 'no fields'],
  ['2 e n', 'no payload'],
  [`abc e n ${ENVELOPE}`, 'seq not a number'],
  [`NaN e n ${ENVELOPE}`, 'seq NaN'],
  [`-1 e n ${ENVELOPE}`, 'negative seq'],
  [`0 e n ${ENVELOPE}`, 'seq 0'],
  [`2.5 e n ${ENVELOPE}`, 'fractional seq'],
  [`1e3 e n ${ENVELOPE}`, 'exponent seq'],
  [`99999999999999999999 e n ${ENVELOPE}`, 'seq past 2^53'],
  [`2  n ${ENVELOPE}`, 'empty epoch'],
  [`2 ${'e'.repeat(65)} n ${ENVELOPE}`, 'epoch too long'],
  ['2 e  ' + ENVELOPE, 'empty node id'],
  ['2 e n not json', 'payload not an envelope'],
  ['2 e n [1,2]', 'payload an array'],
  ['2 e n {"type":"ALERT"', 'payload cut short'],
];

test('parseChannelFrame: the table of malformed channel messages is refused; the script shape parses', () => {
  for (const [message, why] of MALFORMED) assert.equal(parseChannelFrame(message), null, why);
  assert.deepEqual(parseChannelFrame(`2 e n ${ENVELOPE}`), { seq: 2, epoch: 'e', json: ENVELOPE });
});

const up = await redisUp();

test(
  'malformed frames published on a topic channel are dropped; the real ones around them arrive in order',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 60_000 },
  async (t) => {
    const prefix = testPrefix(t);
    const redis = redisClient(t);
    const node = await startNode(t, { redisKeyPrefix: prefix, nodeId: 'only' });
    const client = new RecordingClient([TOPIC]);
    t.after(() => client.close());
    await client.connect(node.wsUrl);
    await waitFor('subscribed', () => node.service.getTopicSubscribers(TOPIC) === 1);
    const alert = { type: 'ALERT' as const, data: { message: 'real' }, timestamp: new Date().toISOString() };
    const first = await node.service.publish(TOPIC, alert);
    await waitFor('the first real frame', () => client.seqOf(TOPIC) >= first.seq);
    const channel = `${prefix}{${TOPIC}}:live`;
    for (const [message] of MALFORMED) {
      // The same shapes with the live epoch, so only the broken part can be what refuses them.
      await redis.publish(channel, message.replace(' e ', ` ${first.epoch} `));
    }
    const last = await node.service.publish(TOPIC, alert);
    await waitFor('the real frame after the garbage', () => client.seqOf(TOPIC) >= last.seq);
    assert.deepEqual(client.errors, [], 'no gap, duplicate or foreign frame');
    const seqs = (client.seqs.get(TOPIC) ?? []).filter((seq) => seq >= first.seq && seq <= last.seq);
    assertRange(seqs, first.seq, last.seq, TOPIC);
    assert.ok(node.service.position(TOPIC).seq >= last.seq, 'the node delivered the real frames');
    const res = await fetch(`${node.url}/healthz`);
    assert.equal(res.status, 200);
  },
);

test(
  'corrupt values in a topic state hash are left out of snapshots; joiners and GET /api/snapshot still get the rest',
  { skip: !up && 'no Redis on 127.0.0.1:6379', timeout: 60_000 },
  async (t) => {
    const prefix = testPrefix(t);
    const redis = redisClient(t);
    const node = await startNode(t, { redisKeyPrefix: prefix, nodeId: 'only' });
    const entity = {
      id: 'good',
      location: { lat: 52.37, lon: 4.89 },
      severity: 2,
      description: 'kept',
      kind: 'collision',
      reportedAt: '2026-03-01T11:59:00.000Z',
      updatedAt: '2026-03-01T12:00:00.000Z',
      source: 'test',
    };
    const first = await node.service.publish(TOPIC, {
      type: 'UPDATE',
      data: { upserts: [entity], removes: [] },
      timestamp: new Date().toISOString(),
    });
    assert.ok(first.seq >= 1);
    const corrupt: Record<string, string> = {
      'not-json': '{"id":',
      'not-an-object': '42',
      'no-id': '{"name":"x"}',
      'too-deep': `{"id":"too-deep","x":${'['.repeat(5000)}${']'.repeat(5000)}}`,
    };
    await redis.hset(`${prefix}{${TOPIC}}:state`, corrupt);
    const joiner = new RecordingClient([TOPIC]);
    t.after(() => joiner.close());
    await joiner.connect(node.wsUrl);
    const snapshot = joiner.frames.find((f) => f.type === 'SNAPSHOT' && f.topic === undefined);
    const ids = (
      (snapshot?.data as Record<string, { entities: { id: string }[] }>)[TOPIC]?.entities ?? []
    ).map((e) => e.id);
    assert.deepEqual(ids, ['good'], 'only the stored entity that is one');
    const res = await fetch(`${node.url}/api/snapshot`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, { entities: { id: string }[] }>;
    assert.deepEqual(
      body[TOPIC]?.entities.map((e) => e.id),
      ['good'],
    );
  },
);
