import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloseCode, ErrorCode, ServerMessageType, type ServerMessage } from '../../src/protocol/messages.js';
import { connect, eventually } from '../helpers/test-client.js';
import { isoNow, startService } from '../helpers/servers.js';

function errorCode(m: ServerMessage): string | undefined {
  return m.type === ServerMessageType.Error ? (m.data as { code: string }).code : undefined;
}

const CASES: { name: string; frame: string | Buffer; code: ErrorCode }[] = [
  { name: 'not JSON', frame: '{nope', code: ErrorCode.BadJson },
  { name: 'empty frame', frame: '', code: ErrorCode.BadJson },
  { name: 'JSON array', frame: '[1,2]', code: ErrorCode.BadMessage },
  { name: 'JSON string', frame: '"subscribe"', code: ErrorCode.BadMessage },
  { name: 'JSON null', frame: 'null', code: ErrorCode.BadMessage },
  { name: 'no type', frame: '{"topics":["weather"]}', code: ErrorCode.BadMessage },
  { name: 'numeric type', frame: '{"type":5}', code: ErrorCode.BadMessage },
  {
    name: 'topics not an array',
    frame: '{"type":"subscribe","topics":"weather"}',
    code: ErrorCode.BadMessage,
  },
  {
    name: 'topics with a number',
    frame: '{"type":"subscribe","topics":["weather",3]}',
    code: ErrorCode.BadMessage,
  },
  { name: 'unsubscribe without topics', frame: '{"type":"unsubscribe"}', code: ErrorCode.BadMessage },
  { name: 'ping with object id', frame: '{"type":"ping","id":{}}', code: ErrorCode.BadMessage },
  { name: 'binary frame', frame: Buffer.from('{"type":"ping"}'), code: ErrorCode.BadMessage },
  { name: 'unknown type', frame: '{"type":"teleport"}', code: ErrorCode.UnknownType },
  {
    name: 'unknown topic',
    frame: '{"type":"subscribe","topics":["weather","moon"]}',
    code: ErrorCode.UnknownTopic,
  },
  {
    name: 'resume with bad position',
    frame: '{"type":"resume","topics":{"weather":{"seq":-1}}}',
    code: ErrorCode.BadMessage,
  },
];

test('each bad frame gets its ERROR code and the connection stays open', async (t) => {
  const { service, url } = await startService(t, { rateLimit: false });
  const { client } = await connect(url);
  t.after(() => client.close());
  for (const { name, frame, code } of CASES) {
    client.send(frame);
    const reply = await client.next();
    assert.equal(errorCode(reply), code, name);
    assert.equal(typeof (reply.data as { message: unknown }).message, 'string', name);
  }
  // A subscribe naming an unknown topic subscribed to none of them.
  assert.equal(service.getTopicSubscribers('weather'), 0);
  client.send({ type: 'ping', id: 'still-open' });
  assert.deepEqual((await client.next()).data, { id: 'still-open' });
});

test('TOO_MANY_SUBSCRIPTIONS applies none of the request', async (t) => {
  const { service, url } = await startService(t, { maxSubscriptionsPerClient: 2 });
  const { client } = await connect(url, 'topics=weather');
  t.after(() => client.close());
  client.send({ type: 'subscribe', topics: ['cameras', 'accidents'] });
  const reply = await client.next();
  assert.equal(errorCode(reply), ErrorCode.TooManySubscriptions);
  assert.equal(service.getTopicSubscribers('cameras'), 0);
  assert.equal(service.getTopicSubscribers('accidents'), 0);
  client.send({ type: 'subscribe', topics: ['cameras', 'weather'] });
  assert.equal((await client.next()).type, ServerMessageType.Subscribed);
  assert.equal(service.getTopicSubscribers('cameras'), 1);
});

test('a provider that throws or rejects yields SNAPSHOT_UNAVAILABLE, and the subscription still delivers', async (t) => {
  const { service, url } = await startService(t);
  let mode: 'throw' | 'reject' = 'throw';
  service.setSnapshotProvider(() => {
    if (mode === 'throw') throw new Error('boom');
    return Promise.reject(new Error('async boom'));
  });
  const { client, snapshot } = await connect(url, 'topics=weather');
  t.after(() => client.close());
  assert.equal(snapshot.type, ServerMessageType.Snapshot, 'the second frame is still a SNAPSHOT');
  assert.equal(errorCode(await client.next()), ErrorCode.SnapshotUnavailable);
  mode = 'reject';
  client.send({ type: 'subscribe', topics: ['cameras'] });
  assert.equal((await client.next()).type, ServerMessageType.Subscribed);
  const failure = await client.next();
  assert.equal(errorCode(failure), ErrorCode.SnapshotUnavailable);
  assert.deepEqual((failure.data as { topics: string[] }).topics, ['cameras']);
  service.publish('cameras', { type: 'UPDATE', data: 'live', timestamp: isoNow() });
  assert.equal((await client.next()).data, 'live');
});

test('a frame over maxPayloadBytes closes that connection with 1009', async (t) => {
  const { url } = await startService(t, { maxPayloadBytes: 1024 }, 1024);
  const { client } = await connect(url);
  client.send(JSON.stringify({ type: 'ping', id: 'x'.repeat(2000) }));
  const { code } = await client.waitForClose();
  assert.equal(code, CloseCode.MessageTooBig);
});

test('the service enforces maxPayloadBytes even when the WebSocketServer allows more', async (t) => {
  const { url } = await startService(t, { maxPayloadBytes: 512 });
  const { client } = await connect(url);
  client.send(JSON.stringify({ type: 'ping', id: 'y'.repeat(100), pad: 'z'.repeat(1000) }));
  assert.equal((await client.waitForClose()).code, CloseCode.MessageTooBig);
});

for (const limited of [false, true]) {
  test(`1000 garbage frames from one client leave another receiving normally (rate limit ${limited ? 'on' : 'off'})`, async (t) => {
    const { service, url } = await startService(t, { rateLimit: limited ? {} : false });
    const bad = await connect(url);
    const good = await connect(url, 'topics=weather');
    t.after(() => {
      bad.client.close();
      good.client.close();
    });
    const garbage = [
      '{',
      'null',
      '[]',
      '{"type":1}',
      '{"type":"x"}',
      '\u0000\uffff',
      '{"type":"subscribe","topics":{}}',
    ];
    for (let i = 0; i < 1000; i++) {
      if (bad.client.ws.readyState !== bad.client.ws.OPEN) break;
      bad.client.send(garbage[i % garbage.length] as string);
    }
    for (let i = 1; i <= 50; i++)
      service.publish('weather', { type: 'UPDATE', data: i, timestamp: isoNow() });
    for (let i = 1; i <= 50; i++) assert.equal((await good.client.next()).data, i);
    if (limited) {
      // The default limit lets a burst through, answers the rest RATE_LIMITED, then closes the flood with 4429.
      assert.equal((await bad.client.waitForClose()).code, CloseCode.RateLimited);
      const codes = bad.client.received.filter((m) => m.type === ServerMessageType.Error).map(errorCode);
      assert.ok(codes.includes(ErrorCode.RateLimited));
      assert.ok(codes.includes(ErrorCode.BadJson));
      await eventually(() => service.getClientCount() === 1, 2000, 'the flooding client removed');
    } else {
      for (let errors = 0; errors < 1000; errors++)
        assert.equal((await bad.client.next()).type, ServerMessageType.Error);
      assert.equal(service.getClientCount(), 2);
    }
  });
}
