// Peer 4: the coalescing reference server (the ceiling). Upgrades with `ws`, then writes broadcast frames beneath
// it on the raw socket (`ws._socket`). Each publish is encoded once into one complete WebSocket frame
// (header + payload in one Buffer). Frames are gathered per topic until the end of the event-loop turn
// (setImmediate); then each topic's frames of the turn are joined once and every subscriber gets one
// `socket.write` (clients on several dirty topics get cork / writes / uncork, grouped by topic).
// A socket with more than SLOW_LIMIT bytes unflushed is skipped (frames dropped and counted): bounded latency.
import { Buffer } from 'node:buffer';
import { randomUUID } from 'node:crypto';
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

await runPeer(async ({ port, topics }) => {
  const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/ws', perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  /** @typedef {{ socket: import('node:net').Socket, topics: number }} Sub */
  /** @type {Map<string, Set<Sub>>} */
  const index = new Map(topics.map((t) => [t, new Set()]));
  const seqs = new Map(topics.map((t) => [t, 0]));
  /** @type {Map<string, Buffer[]>} frames of the current turn, per topic */
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
      const joined = frames.length === 1 ? frames[0] : Buffer.concat(frames);
      for (const sub of subs) {
        if (sub.socket.writableLength > SLOW_LIMIT) {
          dropped += frames.length;
          continue;
        }
        if (sub.topics === 1 || turn.size === 1) sub.socket.write(joined);
        else {
          multi ??= new Map();
          const list = multi.get(sub);
          if (list === undefined) multi.set(sub, [joined]);
          else list.push(joined);
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
    const sub = { socket: /** @type {import('node:net').Socket} */ (ws._socket), topics: subscribed.length };
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
      const frame = encodeFrame(JSON.stringify({ ...message, seq }));
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
