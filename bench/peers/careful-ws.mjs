// Peer 2: a careful `ws` server: topic -> Set<WebSocket> index, the message encoded once per publish and the same
// string handed to every subscriber's `ws.send` (ws still frames and writes once per client per message).
// BENCH_DEFLATE=1: ws's own permessage-deflate (its defaults: a deflate context per socket, context takeover), with
// a 256-byte threshold like citypulse's: the "per-socket deflate" reference of the compressed scenario.
import { randomUUID } from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';
import { runPeer, topicsFromUrl } from './harness.mjs';

await runPeer(async ({ port, topics }) => {
  const deflate = process.env.BENCH_DEFLATE === '1';
  const wss = new WebSocketServer({
    port,
    host: '127.0.0.1',
    path: '/ws',
    perMessageDeflate: deflate ? { threshold: 256 } : false,
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  /** @type {Map<string, Set<WebSocket>>} */
  const index = new Map(topics.map((t) => [t, new Set()]));
  const seqs = new Map(topics.map((t) => [t, 0]));
  /** @type {Map<string, string>} topic-set key -> encoded snapshot, dropped when any seq moves */
  let snapshotCache = new Map();
  let clients = 0;

  const subscribe = (ws, list) => {
    for (const t of list) index.get(t)?.add(ws);
  };

  wss.on('connection', (ws, req) => {
    clients += 1;
    const subscribed = topicsFromUrl(req.url).filter((t) => index.has(t));
    subscribe(ws, subscribed);
    ws.on('error', () => {});
    ws.on('close', () => {
      clients -= 1;
      for (const set of index.values()) set.delete(ws);
    });
    ws.on('message', (raw) => {
      let msg;
      try {
        msg = JSON.parse(String(raw));
      } catch {
        return;
      }
      if (msg?.type === 'subscribe' && Array.isArray(msg.topics)) subscribe(ws, msg.topics);
    });
    const timestamp = new Date().toISOString();
    ws.send(
      JSON.stringify({
        type: 'CONNECTED',
        data: { clientId: randomUUID(), protocol: 1, topics, subscribed },
        timestamp,
      }),
    );
    const key = subscribed.join(',');
    let snap = snapshotCache.get(key);
    if (snap === undefined) {
      const state = {};
      for (const t of subscribed) state[t] = { entities: [], seq: seqs.get(t) };
      snap = JSON.stringify({ type: 'SNAPSHOT', data: state, timestamp });
      snapshotCache.set(key, snap);
    }
    ws.send(snap);
  });

  return {
    port: /** @type {import('node:net').AddressInfo} */ (wss.address()).port,
    publish(topic, message) {
      const seq = (seqs.get(topic) ?? 0) + 1;
      seqs.set(topic, seq);
      if (snapshotCache.size > 0) snapshotCache = new Map();
      const subscribers = index.get(topic);
      if (subscribers === undefined || subscribers.size === 0) return;
      const encoded = JSON.stringify({ ...message, seq });
      for (const ws of subscribers) if (ws.readyState === WebSocket.OPEN) ws.send(encoded);
    },
    clientCount: () => clients,
    close: () =>
      new Promise((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
});
