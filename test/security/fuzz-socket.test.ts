/**
 * Fuzzing the real server over a real socket: a hostile client sends a few thousand random frames (garbage text,
 * near-valid JSON, valid requests, binary frames, oversize and invalid-UTF-8 frames) while updates are published.
 * The process stays up, every reply is a valid server frame, no close says "internal error", and a second,
 * well-behaved client receives every published update, in order.
 *
 * FUZZ_SOCKET_FRAMES sets the number of frames (default 3000); FUZZ_SEED replays a run.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import {
  CloseCode,
  ErrorCode,
  ServerMessageType,
  parseServerMessage,
  type ServerMessage,
} from '../../src/protocol/messages.js';
import { createServer } from '../../src/app/create-server.js';

const FRAMES = Math.max(100, Number(process.env.FUZZ_SOCKET_FRAMES ?? 3000) || 3000);
const SEED = process.env.FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED);
/** Frames sent between two barriers (a ping whose PONG proves everything before it was handled). */
const BATCH = 20;

type Frame =
  { kind: 'text'; data: string } | { kind: 'binary'; data: Buffer } | { kind: 'raw-text'; data: Buffer };

const topic = fc.constantFrom('weather', 'cameras', 'accidents', 'airQuality', 'nope', '__proto__', '', '*');
const messageLike = fc.record(
  {
    type: fc.oneof(
      fc.mixedCase(fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'resume', 'refresh')),
      fc.string({ maxLength: 20 }),
    ),
    topics: fc.oneof(
      fc.array(topic, { maxLength: 6 }),
      fc.dictionary(topic, fc.record({ epoch: fc.string({ maxLength: 8 }), seq: fc.integer() }), {
        maxKeys: 3,
      }),
      fc.jsonValue({ maxDepth: 2 }),
    ),
    id: fc.oneof(fc.string({ maxLength: 150 }), fc.integer(), fc.jsonValue({ maxDepth: 1 })),
    token: fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue({ maxDepth: 1 })),
  },
  { requiredKeys: [] },
);
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 4, arbitrary: messageLike.map((m) => ({ kind: 'text' as const, data: JSON.stringify(m) })) },
  {
    weight: 2,
    arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => ({ kind: 'text' as const, data: JSON.stringify(v) })),
  },
  {
    weight: 2,
    arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((s) => ({ kind: 'text' as const, data: s })),
  },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ maxLength: 200 })
      .map((b) => ({ kind: 'binary' as const, data: Buffer.from(b) })),
  },
);

/** Close codes a hostile client may legitimately get: the protocol's own, and ws's for broken frames. */
const ACCEPTABLE_CLOSES = new Set<number>([
  CloseCode.PolicyViolation,
  CloseCode.MessageTooBig,
  CloseCode.RateLimited,
  CloseCode.SlowConsumer,
  1007, // invalid UTF-8 in a text frame (ws)
  1002, // protocol error (ws)
]);

const ERROR_CODES = new Set<string>(Object.values(ErrorCode));

/** Checks beyond parseServerMessage: a real timestamp, and ERROR frames with a known code and a message. */
function wellFormed(message: ServerMessage): boolean {
  if (Number.isNaN(Date.parse(message.timestamp))) return false;
  if (message.type === ServerMessageType.Error) {
    const data = message.data as { code?: unknown; message?: unknown } | null;
    return (
      typeof data === 'object' &&
      data !== null &&
      typeof data.code === 'string' &&
      ERROR_CODES.has(data.code) &&
      typeof data.message === 'string'
    );
  }
  return true;
}

interface Conn {
  ws: WebSocket;
  frames: ServerMessage[];
  invalid: string[];
  closed: Promise<number>;
  waitFor(pred: (m: ServerMessage) => boolean, ms: number): Promise<ServerMessage>;
}

function open(url: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const frames: ServerMessage[] = [];
    const invalid: string[] = [];
    const waiters = new Set<{ pred: (m: ServerMessage) => boolean; done: (m: ServerMessage) => void }>();
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      const text = String(data);
      const parsed = isBinary ? null : parseServerMessage(text);
      if (parsed === null || !wellFormed(parsed)) {
        invalid.push(text.slice(0, 200));
        return;
      }
      frames.push(parsed);
      for (const w of waiters) {
        if (w.pred(parsed)) {
          waiters.delete(w);
          w.done(parsed);
        }
      }
    });
    const conn: Conn = {
      ws,
      frames,
      invalid,
      closed,
      waitFor(pred, ms) {
        const found = frames.find(pred);
        if (found !== undefined) return Promise.resolve(found);
        return new Promise((res, rej) => {
          const w = {
            pred,
            done: (m: ServerMessage) => {
              clearTimeout(timer);
              res(m);
            },
          };
          const timer = setTimeout(() => {
            waiters.delete(w);
            rej(new Error('timed out waiting for a frame'));
          }, ms);
          waiters.add(w);
          void closed.then(() => {
            if (waiters.delete(w)) {
              clearTimeout(timer);
              rej(new Error('closed while waiting'));
            }
          });
        });
      },
    };
    ws.once('open', () => resolve(conn));
    ws.once('unexpected-response', () => reject(new Error('upgrade refused')));
  });
}

describe(`server fuzz over a real socket (${FRAMES} frames, seed ${SEED})`, () => {
  it('stays up, replies only with valid frames, and keeps serving a well-behaved client', async (t) => {
    const server = await createServer({
      port: 0,
      source: 'none',
      heartbeatIntervalMs: 60_000,
      heartbeatTimeoutMs: 120_000,
      // The fuzzer exercises the parser and handlers; the rate limiter (tested on its own) would cut it short.
      rateLimit: false,
    });
    const conns: Conn[] = [];
    t.after(async () => {
      for (const c of conns) c.ws.terminate();
      await server.close();
    });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown): void => {
      uncaught.push(error);
    };
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    t.after(() => {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    });

    const good = await open(`${server.wsUrl}?topics=weather`);
    conns.push(good);
    await good.waitFor((m) => m.type === ServerMessageType.Snapshot, 5000);

    const frames = fc.sample(frameArb, { numRuns: FRAMES, seed: SEED });
    // A few frames that make the server close the connection: oversize, and text that is not UTF-8.
    const step = Math.floor(FRAMES / 4);
    frames[step] = { kind: 'text', data: 'x'.repeat(65 * 1024) };
    frames[2 * step] = { kind: 'raw-text', data: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) };

    let hostile = await open(server.wsUrl);
    conns.push(hostile);
    const closes: number[] = [];
    let published = 0;
    let barrier = 0;
    for (let i = 0; i < frames.length; i += BATCH) {
      for (const frame of frames.slice(i, i + BATCH)) {
        if (hostile.ws.readyState !== WebSocket.OPEN) break;
        if (frame.kind === 'text') hostile.ws.send(frame.data);
        else hostile.ws.send(frame.data, { binary: frame.kind === 'binary' });
      }
      server.service.broadcastToTopic('weather', {
        type: 'UPDATE',
        topic: 'weather',
        data: { n: ++published }, // opaque: delivered with a seq, no state change
        timestamp: new Date().toISOString(),
      });
      // Barrier: a PONG for our id proves the batch was handled (or the connection was closed).
      const id = `barrier-${++barrier}`;
      let closedCode: number | undefined;
      if (hostile.ws.readyState === WebSocket.OPEN) {
        hostile.ws.send(JSON.stringify({ type: 'ping', id }));
        const outcome = await Promise.race([
          hostile
            .waitFor((m) => m.type === ServerMessageType.Pong && m.data.id === id, 5000)
            .then(() => null),
          hostile.closed,
        ]);
        if (outcome !== null) closedCode = outcome;
      } else {
        closedCode = await hostile.closed;
      }
      if (closedCode !== undefined) {
        closes.push(closedCode);
        assert.ok(
          ACCEPTABLE_CLOSES.has(closedCode),
          `hostile client closed with ${closedCode} (seed ${SEED})`,
        );
        assert.deepEqual(hostile.invalid, [], `invalid frames from the server (seed ${SEED})`);
        hostile = await open(server.wsUrl);
        conns.push(hostile);
      }
    }

    for (const c of conns)
      assert.deepEqual(c.invalid, [], `the server sent a frame parseServerMessage refuses (seed ${SEED})`);
    assert.ok(
      closes.includes(CloseCode.MessageTooBig),
      `oversize frame closed with 1009 (closes: ${closes.join()})`,
    );
    assert.ok(closes.includes(1007), `invalid UTF-8 closed with 1007 (closes: ${closes.join()})`);
    const errors = conns.flatMap((c) => c.frames).filter((m) => m.type === ServerMessageType.Error);
    assert.ok(errors.length > FRAMES / 10, `expected many ERROR replies, got ${errors.length}`);

    // The well-behaved client got every update, in order, and nothing it did not ask for.
    const expectLast = published;
    await good.waitFor(
      (m) => m.type === ServerMessageType.Update && (m.data as { n?: number }).n === expectLast,
      5000,
    );
    const updates = good.frames.filter((m) => m.type === ServerMessageType.Update);
    assert.deepEqual(
      updates.map((m) => (m.data as { n: number }).n),
      Array.from({ length: published }, (_, k) => k + 1),
    );
    const seqs = updates.map((m) => (m as { seq?: number }).seq);
    assert.ok(
      seqs.every((s, k) => k === 0 || (s !== undefined && s === (seqs[k - 1] ?? 0) + 1)),
      'consecutive seq',
    );
    assert.equal(good.ws.readyState, WebSocket.OPEN);

    // Still answering HTTP, and nothing escaped.
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    await health.arrayBuffer();
    assert.deepEqual(uncaught, []);
  });
});
