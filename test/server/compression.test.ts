/**
 * permessage-deflate, compressed once per message: the negotiation matrix against real `ws` clients and raw sockets
 * (with compression on and off), equal decoding for compressed and plain subscribers of one topic, compress-once
 * counters, slow consumers and resume with compression, and compressed client frames with bounded inflation (a zip
 * bomb closes with 1009 while others keep being served).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { randomBytes } from 'node:crypto';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { WebSocketService } from '../../src/gateway/websocket-service.js';
import {
  deflateFrame,
  FrameCompressor,
  negotiateDeflate,
  parseExtensionOffers,
} from '../../src/gateway/deflate.js';
import { encodeTextFrame } from '../../src/gateway/frame.js';
import { parseServeArgs, UsageError } from '../../src/app/cli-args.js';
import type { CityPulseServer, CityPulseServerOptions } from '../../src/app/create-server.js';
import { startServer } from '../helpers/servers.js';
import { eventually } from '../helpers/test-client.js';
import { RawClient, cityUpdate } from './compression-wire.js';

const TOPIC = 'weather';
const BASE = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

// ------------------------------------------------------------------------------------------------------------------
// Negotiation, as a function
// ------------------------------------------------------------------------------------------------------------------

test('negotiateDeflate: a table of offers -> the answer (or a decline)', () => {
  const cases: [string | undefined, string | null][] = [
    [undefined, null],
    ['', null],
    ['permessage-deflate', BASE],
    ['permessage-deflate; client_max_window_bits', BASE],
    ['permessage-deflate; client_max_window_bits=10', BASE],
    ['permessage-deflate; client_max_window_bits="12"', BASE],
    ['permessage-deflate; client_no_context_takeover', BASE],
    ['permessage-deflate; server_no_context_takeover', BASE],
    ['Permessage-Deflate; Server_No_Context_Takeover', BASE],
    ['permessage-deflate; server_max_window_bits=8', null],
    ['permessage-deflate; server_max_window_bits=8, permessage-deflate', BASE],
    [
      'x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=11',
      `${BASE}; server_max_window_bits=11`,
    ],
    ['permessage-deflate; server_max_window_bits', null],
    ['permessage-deflate; server_max_window_bits=16', null],
    ['permessage-deflate; server_max_window_bits=09', null],
    ['permessage-deflate; server_max_window_bits=7', null],
    ['permessage-deflate; client_max_window_bits=abc', null],
    ['permessage-deflate; client_max_window_bits=1; client_max_window_bits', null],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', null],
    ['permessage-deflate; server_no_context_takeover=1', null],
    ['permessage-deflate; unknown_param', null],
    ['permessage-deflate; client_max_window_bits="1 0"', null],
    ['permessage-deflate; client_max_window_bits="10', null],
    ['permessage-deflate;;', null],
    ['permessage-deflate; =10', null],
    ['permessage-deflate,,', BASE],
    ['foo; bar=baz', null],
    [
      'permessage-deflate; server_max_window_bits=10; client_max_window_bits=9',
      `${BASE}; server_max_window_bits=10`,
    ],
  ];
  for (const [offer, expected] of cases) {
    assert.equal(negotiateDeflate(offer)?.response ?? null, expected, `offer ${JSON.stringify(offer)}`);
  }
  for (let bits = 9; bits <= 15; bits++) {
    const agreement = negotiateDeflate(`permessage-deflate; server_max_window_bits=${bits}`);
    assert.deepEqual(agreement, { windowBits: bits, response: `${BASE}; server_max_window_bits=${bits}` });
  }
  assert.equal(negotiateDeflate(['foo', 'permessage-deflate'])?.response, BASE, 'several header lines');
});

test('negotiateDeflate never throws and only answers with what RFC 7692 allows (fuzzed headers)', () => {
  const piece = fc.constantFrom(
    'permessage-deflate',
    'x-webkit-deflate-frame',
    'server_no_context_takeover',
    'client_no_context_takeover',
    'server_max_window_bits',
    'client_max_window_bits',
    ';',
    ',',
    '=',
    '"',
    ' ',
    '8',
    '9',
    '15',
    '16',
    '\\',
    '\u0000',
    'é',
  );
  fc.assert(
    fc.property(
      fc.oneof(
        fc.array(piece, { maxLength: 20 }).map((p) => p.join('')),
        fc.string(),
      ),
      (header) => {
        const agreement = negotiateDeflate(header);
        parseExtensionOffers(header);
        if (agreement === null) return;
        assert.match(
          agreement.response,
          /^permessage-deflate; server_no_context_takeover; client_no_context_takeover(; server_max_window_bits=(9|1[0-5]))?$/,
        );
        assert.ok(agreement.windowBits >= 9 && agreement.windowBits <= 15);
      },
    ),
    { numRuns: 2000 },
  );
});

test('deflateFrame: RSV1 set, opcode kept, payload inflates back for every window 9..15; control frames refused', () => {
  const json = JSON.stringify({ type: 'UPDATE', topic: TOPIC, data: cityUpdate(3, 30) });
  const plain = encodeTextFrame(json);
  for (let bits = 9; bits <= 15; bits++) {
    const frame = deflateFrame(plain, bits);
    assert.ok(frame !== null);
    assert.equal(frame[0], 0xc1, 'FIN + RSV1 + text');
    const len7 = (frame[1] as number) & 0x7f;
    const offset = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
    const inflated = inflateRawSync(
      Buffer.concat([frame.subarray(offset), Buffer.from([0, 0, 0xff, 0xff])]),
      {
        windowBits: bits,
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
      },
    );
    assert.equal(inflated.toString(), json);
    assert.ok(frame.length < plain.length / 2, `window ${bits}: ${frame.length} of ${plain.length}`);
  }
  assert.equal(deflateFrame(Buffer.from([0x89, 0x00]), 15), null, 'a ping is never compressed');
  assert.equal(
    deflateFrame(Buffer.from([0x01, 0x01, 0x61]), 15),
    null,
    'a non-final fragment is not compressed',
  );
});

test('FrameCompressor: once per frame and window, small frames stay plain', () => {
  const compressor = new FrameCompressor({ threshold: 256 });
  const big = encodeTextFrame(JSON.stringify(cityUpdate(1, 10)));
  const small = encodeTextFrame('{"type":"PONG","data":{}}');
  const a = compressor.formFor(big, 15);
  assert.equal(compressor.formFor(big, 15), a, 'the same bytes for every recipient');
  assert.equal(compressor.compressions, 1);
  assert.notEqual(compressor.formFor(big, 10), a, 'another window, another form');
  assert.equal(compressor.compressions, 2);
  assert.equal(compressor.formFor(small, 15), small);
  assert.equal(compressor.compressions, 2, 'below the threshold: not even tried');
  assert.equal(compressor.plainOf(a), big);
  assert.equal(compressor.plainOf(big), big);
  for (const bad of [
    { level: 0 },
    { level: 10 },
    { level: 1.5 },
    { threshold: -1 },
    { threshold: Number.NaN },
  ])
    assert.throws(() => new FrameCompressor(bad), RangeError, JSON.stringify(bad));
  const repetitive = encodeTextFrame(`{"pad":"${'x'.repeat(100)}"}`);
  const all = new FrameCompressor({ level: 1, threshold: 0 });
  assert.equal(all.formFor(repetitive, 15)[0], 0xc1, 'threshold 0: a short frame is compressed too');
  assert.equal(all.formFor(small, 15), small, 'unless deflate would not make it smaller');
});

// ------------------------------------------------------------------------------------------------------------------
// The matrix against a running server
// ------------------------------------------------------------------------------------------------------------------

/** A `ws` client configured with `perMessageDeflate`, recording decoded messages and the bytes read off its socket. */
class WsProbe {
  readonly messages: string[] = [];
  extension: string | undefined;
  socket: Socket | null = null;
  readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(t: TestContext, url: string, perMessageDeflate: boolean | PerMessageDeflateOptions) {
    this.ws = new WebSocket(url, { perMessageDeflate });
    this.ws.on('error', () => {});
    this.ws.on('upgrade', (res: IncomingMessage) => {
      this.extension = res.headers['sec-websocket-extensions'];
      this.socket = res.socket;
    });
    this.ws.on('message', (data) => this.messages.push(data.toString()));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    t.after(() => this.ws.terminate());
  }

  /** Topic frames (UPDATE/ALERT/SNAPSHOT of a topic) as received, decoded. */
  topicFrames(): string[] {
    return this.messages.filter((m) => m.includes(`"topic":"${TOPIC}"`));
  }
}

interface Config {
  readonly name: string;
  readonly options: boolean | PerMessageDeflateOptions;
  /** The window the server answers with, `null` when it declines, `undefined` when it answers without one. */
  readonly serverBits: number | null | undefined;
}

const CONFIGS: readonly Config[] = [
  { name: 'no offer', options: false, serverBits: null },
  { name: 'plain offer (client_max_window_bits, as Chrome)', options: true, serverBits: undefined },
  { name: 'client_max_window_bits=10', options: { clientMaxWindowBits: 10 }, serverBits: undefined },
  { name: 'client_no_context_takeover', options: { clientNoContextTakeover: true }, serverBits: undefined },
  { name: 'server_no_context_takeover', options: { serverNoContextTakeover: true }, serverBits: undefined },
  ...[8, 9, 10, 11, 12, 13, 14, 15].map((bits) => ({
    name: `server_max_window_bits=${bits}`,
    options: { serverMaxWindowBits: bits },
    serverBits: bits === 8 ? null : bits,
  })),
];

async function publishUpdates(server: CityPulseServer, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    // Sizes from tiny (plain below the threshold) to large.
    const data = i % 4 === 0 ? { upserts: [], removes: [`station-${i}`] } : cityUpdate(i, 1 + (i % 4) * 10);
    await server.service.publish(TOPIC, { type: 'UPDATE', data, timestamp: new Date(0).toISOString() });
  }
}

for (const compression of [true, false]) {
  test(`negotiation matrix with ws clients, compression ${compression ? 'on' : 'off'}: every client decodes every frame as the plain one`, async (t) => {
    const server = await startServer(t, { compression, topics: [TOPIC, 'cameras'] });
    const url = `${server.wsUrl}?topics=${TOPIC}`;
    const probes = CONFIGS.map((config) => ({ config, probe: new WsProbe(t, url, config.options) }));
    await Promise.all(probes.map(({ probe }) => probe.opened));
    await eventually(() => server.service.getTopicSubscribers(TOPIC) === probes.length);
    const count = 24;
    await publishUpdates(server, 0, count);
    await eventually(
      () => probes.every(({ probe }) => probe.topicFrames().length === count),
      10_000,
      'every client got every UPDATE',
    );
    const reference = probes[0]?.probe as WsProbe;
    assert.equal(reference.extension, undefined);
    for (const { config, probe } of probes) {
      const expected =
        !compression || config.serverBits === null
          ? undefined
          : config.serverBits === undefined
            ? BASE
            : `${BASE}; server_max_window_bits=${config.serverBits}`;
      assert.equal(probe.extension, expected, config.name);
      assert.deepEqual(probe.topicFrames(), reference.topicFrames(), `${config.name}: decoded frames`);
      if (expected !== undefined) {
        const ratio = (probe.socket?.bytesRead ?? 0) / (reference.socket?.bytesRead ?? 1);
        assert.ok(ratio < 0.6, `${config.name}: ${ratio.toFixed(2)} of the plain bytes on the wire`);
      }
    }
    // Every client can still send (compressed when it agreed) and be answered.
    for (const { config, probe } of probes) {
      const before = probe.messages.length;
      probe.ws.send(JSON.stringify({ type: 'ping', id: 'big', pad: 'x'.repeat(2000) }));
      await eventually(
        () => probe.messages.slice(before).some((m) => m.includes('"PONG"')),
        5000,
        config.name,
      );
    }
  });
}

test('raw offers on the wire: malformed, several, and window 8; every answer is valid and frames decode', async (t) => {
  const server = await startServer(t, { topics: [TOPIC] });
  const offers: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['permessage-deflate', BASE],
    ['permessage-deflate; server_max_window_bits=8', undefined],
    [
      'permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9',
      `${BASE}; server_max_window_bits=9`,
    ],
    ['permessage-deflate; server_max_window_bits=8, permessage-deflate', BASE],
    ['permessage-deflate; bogus, permessage-deflate; client_max_window_bits', BASE],
    ['permessage-deflate; client_max_window_bits=99', undefined],
    ['permessage-deflate; "quoted"', undefined],
    ['permessage-deflate; server_max_window_bits="10"', `${BASE}; server_max_window_bits=10`],
    ['\u00ff\u00fe; ;;,,=', undefined],
    ['x'.repeat(9000), undefined],
  ];
  const clients: RawClient[] = [];
  for (const [offer, expected] of offers) {
    const client = await RawClient.open(server.port, `/ws?topics=${TOPIC}`, offer);
    t.after(() => client.destroy());
    assert.equal(client.status, 101, `offer ${JSON.stringify(offer)?.slice(0, 80)}`);
    assert.equal(client.extension, expected, `offer ${JSON.stringify(offer)?.slice(0, 80)}`);
    clients.push(client);
  }
  await eventually(() => server.service.getTopicSubscribers(TOPIC) === clients.length);
  await publishUpdates(server, 1, 8);
  const plain = clients[0] as RawClient;
  for (const client of clients) {
    await client.until(
      () => client.messages().filter((m) => (m as { type: string }).type === 'UPDATE').length === 8,
      'updates',
    );
    const updates = client.frames.filter((f) => f.payload.toString().startsWith('{"type":"UPDATE"'));
    assert.deepEqual(
      updates.map((f) => f.payload.toString()),
      plain.frames
        .filter((f) => f.payload.toString().startsWith('{"type":"UPDATE"'))
        .map((f) => f.payload.toString()),
    );
    const compressed = updates.filter((f) => f.rsv1);
    if (client.extension === undefined) assert.equal(compressed.length, 0, 'no RSV1 without an agreement');
    else {
      // cityUpdate(i) with i % 4 === 0 is tiny (below the threshold): plain even for a compressing client.
      assert.equal(compressed.length, 6, `compressed frames for ${client.extension}`);
      for (const f of compressed) assert.ok(f.wireLength < f.payload.length / 2);
    }
  }
});

test('compressed once per message: 40 compressing subscribers, one compression per UPDATE', async (t) => {
  const server = await startServer(t, { topics: [TOPIC] });
  const probes = Array.from({ length: 40 }, () => new WsProbe(t, `${server.wsUrl}?topics=${TOPIC}`, true));
  await Promise.all(probes.map((p) => p.opened));
  await eventually(() => server.service.getTopicSubscribers(TOPIC) === probes.length);
  const before = server.service.counters();
  for (let i = 1; i <= 10; i++)
    server.service.publish(TOPIC, {
      type: 'UPDATE',
      data: cityUpdate(i, 20),
      timestamp: new Date(0).toISOString(),
    });
  await eventually(() => probes.every((p) => p.topicFrames().length === 10), 10_000, 'all delivered');
  const after = server.service.counters();
  assert.equal(after.compressions - before.compressions, 10, 'one compression per message, not per socket');
  assert.equal(after.framesOut - before.framesOut, 400);
});

// ------------------------------------------------------------------------------------------------------------------
// Client frames: compressed commands, zip bomb
// ------------------------------------------------------------------------------------------------------------------

test('compressed client frames: accepted within maxPayload; a zip bomb closes with 1009 and others are still served', async (t) => {
  const maxPayloadBytes = 16 * 1024;
  const server = await startServer(t, { maxPayloadBytes, topics: [TOPIC] });
  const bystander = new WsProbe(t, `${server.wsUrl}?topics=${TOPIC}`, true);
  await bystander.opened;

  // A compressed ping just under the limit is answered.
  const ok = await RawClient.open(server.port, '/ws', 'permessage-deflate');
  t.after(() => ok.destroy());
  assert.equal(ok.extension, BASE);
  await ok.until(() => ok.messages().length >= 2, 'CONNECTED + SNAPSHOT');
  ok.sendFrame(
    Buffer.from(JSON.stringify({ type: 'ping', id: 'a', pad: 'a'.repeat(maxPayloadBytes - 100) })),
    {
      compress: true,
    },
  );
  await ok.until(() => ok.messages().some((m) => (m as { type: string }).type === 'PONG'), 'PONG');

  // Bombs: small on the wire, far past the limit inflated (a single frame, and one spread over fragments).
  const bombs = [
    { name: '1 MiB of zeros', payload: Buffer.alloc(1024 * 1024, 0x20) },
    { name: 'limit + 1', payload: Buffer.alloc(maxPayloadBytes + 1, 0x61) },
  ];
  for (const bomb of bombs) {
    const client = await RawClient.open(server.port, '/ws', 'permessage-deflate');
    t.after(() => client.destroy());
    await client.until(() => client.messages().length >= 2, 'CONNECTED + SNAPSHOT');
    client.sendFrame(bomb.payload, { compress: true });
    await client.until(() => client.closeCode() !== undefined || client.closed, `${bomb.name}: close`);
    assert.equal(client.closeCode(), 1009, bomb.name);
  }
  // A bomb spread over fragments: each fragment small, the message past the limit once inflated.
  {
    const client = await RawClient.open(server.port, '/ws', 'permessage-deflate');
    t.after(() => client.destroy());
    await client.until(() => client.messages().length >= 2, 'CONNECTED + SNAPSHOT');
    const deflated = deflateRawSync(Buffer.alloc(4 * maxPayloadBytes, 0x20), {
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
    }).subarray(0, -4);
    const third = Math.ceil(deflated.length / 3);
    client.sendFrame(Buffer.alloc(0), { raw: deflated.subarray(0, third), fin: false });
    client.sendFrame(Buffer.alloc(0), {
      raw: deflated.subarray(third, 2 * third),
      fin: false,
      opcode: 0,
      rsv1: false,
    });
    client.sendFrame(Buffer.alloc(0), { raw: deflated.subarray(2 * third), opcode: 0, rsv1: false });
    await client.until(() => client.closeCode() !== undefined || client.closed, 'fragmented bomb: close');
    assert.equal(client.closeCode(), 1009, 'fragmented bomb');
  }
  // Garbage marked compressed: a protocol error, not a crash.
  const garbage = await RawClient.open(server.port, '/ws', 'permessage-deflate');
  t.after(() => garbage.destroy());
  await garbage.until(() => garbage.messages().length >= 2, 'CONNECTED + SNAPSHOT');
  garbage.sendFrame(Buffer.alloc(0), { raw: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]) });
  await garbage.until(() => garbage.closeCode() !== undefined || garbage.closed, 'garbage: close');
  // RSV1 without an agreement: refused by ws with 1002.
  const rogue = await RawClient.open(server.port, '/ws');
  t.after(() => rogue.destroy());
  await rogue.until(() => rogue.messages().length >= 2, 'CONNECTED + SNAPSHOT');
  rogue.sendFrame(Buffer.from('{"type":"ping"}'), { compress: true });
  await rogue.until(() => rogue.closeCode() !== undefined || rogue.closed, 'rogue: close');
  assert.equal(rogue.closeCode(), 1002);

  // The server still serves: the bystander gets a live UPDATE, a new client connects.
  server.service.publish(TOPIC, {
    type: 'UPDATE',
    data: cityUpdate(1),
    timestamp: new Date(0).toISOString(),
  });
  await eventually(() => bystander.topicFrames().length === 1, 5000, 'bystander served');
  const late = new WsProbe(t, `${server.wsUrl}?topics=${TOPIC}`, true);
  await late.opened;
  await eventually(() => late.messages.length >= 2, 5000, 'a new client gets its snapshot');
});

// ------------------------------------------------------------------------------------------------------------------
// Slow consumers and resume, compressed
// ------------------------------------------------------------------------------------------------------------------

interface TopicFrame {
  type: string;
  topic?: string;
  seq?: number;
  recovered?: boolean;
  data: unknown;
}

async function startWithKey(t: TestContext, options: CityPulseServerOptions = {}): Promise<CityPulseServer> {
  return startServer(t, { topics: [TOPIC], ...options });
}

test('slow consumer with compression: conflated while paused, converges to the fast plain client after', async (t) => {
  const server = await startWithKey(t, {
    highWaterBytes: 16 * 1024,
    backlogBytes: 32 * 1024,
    maxQueuedBytes: 8 << 20,
  });
  const slow = new WsProbe(t, `${server.wsUrl}?topics=${TOPIC}`, true);
  const fast = new WsProbe(t, `${server.wsUrl}?topics=${TOPIC}`, false);
  await Promise.all([slow.opened, fast.opened]);
  await eventually(() => server.service.getTopicSubscribers(TOPIC) === 2);
  slow.ws.pause();
  const total = 5000;
  for (let i = 0; i < total; i++) {
    // Poorly compressible text, so the paused socket really fills.
    const data = cityUpdate(i, 12);
    (data.upserts[0] as Record<string, unknown>).note = randomBytes(800).toString('base64');
    server.service.publish(TOPIC, { type: 'UPDATE', data, timestamp: new Date(0).toISOString() });
    if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  const last = server.service.position(TOPIC).seq;
  // Generous deadlines: this moves ~6 MB through zlib and a paused socket, slow on a loaded 2-core machine.
  await eventually(() => fast.topicFrames().length === total, 60_000, 'fast client got everything');
  assert.ok(server.service.counters().conflatedFrames > 0, 'the compressed slow client was conflated');
  // A snapshot source for the refresh: the last state as a per-topic snapshot.
  slow.ws.resume();
  await eventually(
    () =>
      slow.messages.some((m) => {
        const f = JSON.parse(m) as TopicFrame;
        return f.topic === TOPIC && (f.seq ?? 0) >= last;
      }),
    60_000,
    'slow client caught up',
  );
  const frames = slow.messages.map((m) => JSON.parse(m) as TopicFrame);
  assert.ok(
    frames.some((f) => f.type === 'SNAPSHOT' && f.topic === TOPIC),
    'a fresh per-topic SNAPSHOT',
  );
  assert.equal(slow.ws.readyState, WebSocket.OPEN);
  assert.equal(slow.extension, BASE);
});

test('resume with compression: the missed frames arrive recovered, compressed, equal to the plain resume', async (t) => {
  const server = await startWithKey(t);
  const first = new WsProbe(t, `${server.wsUrl}?topics=${TOPIC}`, true);
  await first.opened;
  await eventually(() => server.service.getTopicSubscribers(TOPIC) === 1);
  const from = server.service.position(TOPIC);
  first.ws.close();
  await eventually(() => server.service.getTopicSubscribers(TOPIC) === 0);
  const missed = 30;
  await publishUpdates(server, 100, missed);
  const url = `${server.wsUrl}?resume=${TOPIC}:${from.epoch}:${from.seq}`;
  const compressionsBefore = server.service.counters().compressions;
  const compressed = new WsProbe(t, url, true);
  const plain = new WsProbe(t, url, false);
  const second = new WsProbe(t, url, true);
  await Promise.all([compressed.opened, plain.opened, second.opened]);
  await eventually(
    () => [compressed, plain, second].every((p) => p.topicFrames().length === missed),
    10_000,
    'all three resumed',
  );
  // Two compressing resumers of the same range: each replayed frame compressed once, not once per client.
  const compressions = server.service.counters().compressions - compressionsBefore;
  assert.ok(
    compressions > 0 && compressions <= missed,
    `${compressions} compressions for ${missed} frames x 2`,
  );
  assert.deepEqual(second.topicFrames(), compressed.topicFrames());
  assert.equal(compressed.extension, BASE);
  assert.deepEqual(compressed.topicFrames(), plain.topicFrames());
  const frames = compressed.topicFrames().map((m) => JSON.parse(m) as TopicFrame);
  assert.deepEqual(
    frames.map((f) => f.seq),
    Array.from({ length: missed }, (_, i) => from.seq + 1 + i),
  );
  assert.ok(frames.every((f) => f.recovered === true));
  const ratio = (compressed.socket?.bytesRead ?? 0) / (plain.socket?.bytesRead ?? 1);
  assert.ok(ratio < 0.6, `resume on the wire: ${ratio.toFixed(2)} of plain`);
  // Live frames follow.
  await publishUpdates(server, 200, 2);
  await eventually(() => compressed.topicFrames().length === missed + 2, 5000, 'live after resume');
  assert.deepEqual(compressed.topicFrames(), plain.topicFrames().slice(0, compressed.topicFrames().length));
});

test('a WebSocketServer with its own perMessageDeflate: ws answers, our frames go plain and decode', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: { threshold: 0 } });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const service = new WebSocketService(wss, { topics: [TOPIC] });
  t.after(async () => {
    await service.close();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  const { port } = wss.address() as AddressInfo;
  const probe = new WsProbe(t, `ws://127.0.0.1:${port}/?topics=${TOPIC}`, true);
  await probe.opened;
  assert.equal(probe.extension, 'permessage-deflate', 'one answer: ws its own, not ours beside it');
  await eventually(() => service.getTopicSubscribers(TOPIC) === 1);
  service.publish(TOPIC, { type: 'UPDATE', data: cityUpdate(1, 20), timestamp: new Date(0).toISOString() });
  await eventually(() => probe.topicFrames().length === 1, 5000, 'plain UPDATE decoded');
  assert.equal(service.counters().compressions, 0);
});

test('--compression / CITYPULSE_COMPRESSION: on by default, off, the flag over the env, bad values refused', () => {
  const compression = (argv: string[], env: NodeJS.ProcessEnv): unknown => {
    const parsed = parseServeArgs(argv, env);
    return parsed.help ? 'help' : parsed.options.compression;
  };
  assert.equal(compression([], {}), true);
  assert.equal(compression(['--compression', 'off'], {}), false);
  assert.equal(compression([], { CITYPULSE_COMPRESSION: 'off' }), false);
  assert.equal(compression(['--compression', 'on'], { CITYPULSE_COMPRESSION: 'off' }), true);
  for (const bad of ['maybe', 'OFF ', 'yes'])
    assert.throws(() => compression(['--compression', bad], {}), UsageError, bad);
});
