/**
 * The connect path after its storm trim: the CONNECTED frame made from a cached template is byte-for-byte the JSON
 * of its object, and the query is read without a URL parse with the same results (a table of request targets over
 * a raw socket, plus a fuzz loop of topic lists through a real `ws` client); the server serves afterwards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { encodeTextFrame } from '../../src/gateway/frame.js';
import { startServer } from '../helpers/servers.js';
import { RawClient } from './compression-wire.js';

interface Connected {
  type: string;
  data: {
    clientId: string;
    protocol: number;
    topics: string[];
    subscribed: string[];
    heartbeat: { intervalMs: number; timeoutMs: number };
  };
  timestamp: string;
}

/** The CONNECTED text re-encoded from its parsed object, in the documented key order. */
function canonical(m: Connected): string {
  const { clientId, protocol, topics, subscribed, heartbeat } = m.data;
  return JSON.stringify({
    type: m.type,
    data: { clientId, protocol, topics, subscribed, heartbeat },
    timestamp: m.timestamp,
  });
}

test('CONNECTED and the query over raw sockets: a table of request targets', async (t) => {
  const server = await startServer(t, { heartbeatIntervalMs: 1234, heartbeatTimeoutMs: 5678 });
  const cases: [string, string[] | 'error'][] = [
    ['/ws', []],
    ['/ws?', []],
    ['/ws?topics=weather', ['weather']],
    ['/ws?topics=weather,cameras', ['weather', 'cameras']],
    ['/ws?topics=weather%2Ccameras', ['weather', 'cameras']],
    ['/ws?topics=weather#cameras', ['weather']],
    ['/ws?foo=1&topics=cameras&topics=weather', ['cameras']],
    ['/ws?topics=,,weather,,', ['weather']],
    ['/ws?topics=nope', 'error'],
    ['/ws?topics=%E0%A4%A', 'error'],
    ['/ws?resume=bad', 'error'],
  ];
  for (const [target, expected] of cases) {
    const client = await RawClient.open(server.port, target);
    t.after(() => client.destroy());
    assert.equal(client.status, 101, target);
    await client.until(() => client.messages().length >= 2, `${target}: CONNECTED + SNAPSHOT`);
    const raw = (client.frames[0]?.payload ?? Buffer.alloc(0)).toString();
    const connected = JSON.parse(raw) as Connected;
    assert.equal(connected.type, 'CONNECTED');
    assert.equal(raw, canonical(connected), `${target}: the template matches JSON.stringify`);
    assert.deepEqual(connected.data.heartbeat, { intervalMs: 1234, timeoutMs: 5678 });
    assert.ok(!Number.isNaN(Date.parse(connected.timestamp)));
    if (expected === 'error') {
      assert.deepEqual(connected.data.subscribed, [], target);
      await client.until(
        () => client.messages().some((m) => (m as { type: string }).type === 'ERROR'),
        target,
      );
    } else {
      assert.deepEqual(connected.data.subscribed, expected, target);
    }
  }
  const after = await RawClient.open(server.port, '/ws?topics=weather');
  t.after(() => after.destroy());
  await after.until(() => after.messages().length >= 2, 'still serving');
});

test('CONNECTED for fuzzed topic lists equals the JSON of its object', async (t) => {
  const server = await startServer(t);
  const topics = server.service.topics;
  await fc.assert(
    fc.asyncProperty(fc.subarray([...topics]), async (chosen) => {
      const ws = new WebSocket(`${server.wsUrl}?topics=${chosen.join(',')}`, { perMessageDeflate: false });
      ws.on('error', () => {});
      try {
        const raw = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no CONNECTED within 5 s')), 5000);
          ws.once('message', (data) => {
            clearTimeout(timer);
            resolve(data.toString());
          });
        });
        const connected = JSON.parse(raw) as Connected;
        assert.equal(raw, canonical(connected));
        assert.deepEqual(connected.data.subscribed, chosen);
        assert.deepEqual(connected.data.topics, topics);
      } finally {
        ws.terminate();
      }
    }),
    { numRuns: 30 },
  );
});

test('encodeTextFrame: the same bytes as a header + Buffer.from(text), for any string and every length class', () => {
  const reference = (text: string): Buffer => {
    const body = Buffer.from(text, 'utf8');
    const n = body.length;
    const head =
      n < 126
        ? Buffer.from([0x81, n])
        : n < 65536
          ? Buffer.from([0x81, 126, n >> 8, n & 0xff])
          : Buffer.concat([
              Buffer.from([0x81, 127, 0, 0, 0, 0]),
              Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]),
            ]);
    return Buffer.concat([head, body]);
  };
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
      assert.deepEqual(encodeTextFrame(text), reference(text));
      assert.deepEqual(encodeTextFrame(Buffer.from(text)), reference(text));
    }),
    { numRuns: 500 },
  );
  for (const n of [0, 125, 126, 127, 65535, 65536, 70000]) {
    const text = 'é'.repeat(Math.floor(n / 2)) + 'x'.repeat(n % 2); // two bytes a character
    assert.deepEqual(encodeTextFrame(text), reference(text), `length ${n}`);
  }
});
