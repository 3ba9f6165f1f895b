// Peer 4: the coalescing reference server (the ceiling). Upgrades with `ws`, then writes broadcast frames beneath
// it on the raw socket (`ws._socket`). Each publish is encoded once into one complete WebSocket frame
// (header + payload in one Buffer). Frames are gathered per topic until the end of the event-loop turn
// (setImmediate); then each topic's frames of the turn are joined once and every subscriber gets one
// `socket.write` (clients on several dirty topics get cork / writes / uncork, grouped by topic).
// A socket with more than SLOW_LIMIT bytes unflushed is skipped (frames dropped and counted): bounded latency.
// BENCH_DEFLATE=1: the compress-once reference: a client offering permessage-deflate is answered with
// `server_no_context_takeover; client_no_context_takeover`, each frame of 256 B or more is deflated once per
// publish (raw deflate, sync flush, trailer stripped, RSV1) and the same bytes go to every such subscriber.
import { Buffer } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { WebSocketServer } from 'ws';
import { runPeer, topicsFromUrl } from './harness.mjs';

const SLOW_LIMIT = Number(process.env.BENCH_SLOW_LIMIT ?? 4 * 1024 * 1024);

/** One unmasked, final text frame holding `text`. */
function encodeFrame(text) {
  const len = Buffer.byteLength(text);
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + len);
  frame[0] = 0x81;
  if (head === 2) frame[1] = len;
  else if (head === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(len, 6);
  }
  frame.write(text, head, 'utf8');
  return frame;
}

/** The same message as one compressed frame (RSV1), or the plain frame when it is small. */
function compressFrame(text, plain) {
  if (plain.length < 256 + 4) return plain;
  const deflated = deflateRawSync(Buffer.from(text), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const len = deflated.length - 4; // strip 00 00 ff ff
  const head = len < 126 ? 2 : 4;
  const frame = Buffer.allocUnsafe(head + len);
  frame[0] = 0xc1;
  if (head === 2) frame[1] = len;
  else {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  }
  deflated.copy(frame, head, 0, len);
  return frame;
}

const DEFLATE = process.env.BENCH_DEFLATE === '1';

await runPeer(async ({ port, topics }) => {
  const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/ws', perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  /** Requests whose client agreed to permessage-deflate. */
  const agreed = new WeakSet();
  if (DEFLATE)
    wss.on('headers', (headers, req) => {
      if (!/permessage-deflate/i.test(req.headers['sec-websocket-extensions'] ?? '')) return;
      headers.push(
        'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover',
      );
      agreed.add(req);
    });
  /** @typedef {{ socket: import('node:net').Socket, topics: number, deflate: boolean }} Sub */
  /** @type {Map<string, Set<Sub>>} */
  const index = new Map(topics.map((t) => [t, new Set()]));
  const seqs = new Map(topics.map((t) => [t, 0]));
  /** @type {Map<string, { text: string, plain: Buffer, compressed: Buffer | null }[]>} frames of the turn, per topic */
  let pending = new Map();
  let scheduled = false;
  let clients = 0;
  let dropped = 0;

  const flush = () => {
    scheduled = false;
    const turn = pending;
    pending = new Map();
    /** @type {Map<Sub, Buffer[]> | null} */
    let multi = null;
    for (const [topic, frames] of turn) {
      const subs = index.get(topic);
      if (subs === undefined) continue;
      /** @type {Buffer | null} each form of the run built once, on its first subscriber */
      let joined = null;
      /** @type {Buffer | null} */
      let joinedCompressed = null;
      const compressedRun = () => {
        for (const f of frames) f.compressed ??= compressFrame(f.text, f.plain);
        return frames.length === 1 ? frames[0].compressed : Buffer.concat(frames.map((f) => f.compressed));
      };
      for (const sub of subs) {
        const bytes = sub.deflate
          ? (joinedCompressed ??= compressedRun())
          : (joined ??= frames.length === 1 ? frames[0].plain : Buffer.concat(frames.map((f) => f.plain)));
        if (sub.socket.writableLength > SLOW_LIMIT) {
          dropped += frames.length;
          continue;
        }
        if (sub.topics === 1 || turn.size === 1) sub.socket.write(bytes);
        else {
          multi ??= new Map();
          const list = multi.get(sub);
          if (list === undefined) multi.set(sub, [bytes]);
          else list.push(bytes);
        }
      }
    }
    if (multi !== null) {
      for (const [sub, list] of multi) {
        if (list.length === 1) {
          sub.socket.write(list[0]);
          continue;
        }
        sub.socket.cork();
        for (const b of list) sub.socket.write(b);
        sub.socket.uncork();
      }
    }
  };

  wss.on('connection', (ws, req) => {
    clients += 1;
    const subscribed = topicsFromUrl(req.url).filter((t) => index.has(t));
    const timestamp = new Date().toISOString();
    ws.on('error', () => {});
    ws.send(
      JSON.stringify({
        type: 'CONNECTED',
        data: { clientId: randomUUID(), protocol: 1, topics, subscribed },
        timestamp,
      }),
    );
    const state = {};
    for (const t of subscribed) state[t] = { entities: [], seq: seqs.get(t) };
    ws.send(JSON.stringify({ type: 'SNAPSHOT', data: state, timestamp }));
    // From here on broadcast frames go beneath ws, after the frames ws has already written.
    const sub = {
      socket: /** @type {import('node:net').Socket} */ (ws._socket),
      topics: subscribed.length,
      deflate: agreed.has(req),
    };
    for (const t of subscribed) index.get(t)?.add(sub);
    ws.on('close', () => {
      clients -= 1;
      for (const set of index.values()) set.delete(sub);
    });
  });

  return {
    port: /** @type {import('node:net').AddressInfo} */ (wss.address()).port,
    publish(topic, message) {
      const seq = (seqs.get(topic) ?? 0) + 1;
      seqs.set(topic, seq);
      const subs = index.get(topic);
      if (subs === undefined || subs.size === 0) return;
      const text = JSON.stringify({ ...message, seq });
      const frame = { text, plain: encodeFrame(text), compressed: /** @type {Buffer | null} */ (null) };
      const list = pending.get(topic);
      if (list === undefined) pending.set(topic, [frame]);
      else list.push(frame);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    clientCount: () => clients,
    dropped: () => dropped,
    close: () =>
      new Promise((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
});
