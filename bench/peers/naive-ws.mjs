// Peer 1: a `ws` server written the way a design document reads: a Map of clients, a topic check and a
// JSON.stringify per client per message. The baseline most hand-written gateways start from.
import { randomUUID } from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';
import { runPeer, topicsFromUrl } from './harness.mjs';

await runPeer(async ({ port, topics }) => {
  const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/ws', perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  /** @type {Map<string, { ws: WebSocket, topics: Set<string> }>} */
  const clients = new Map();
  const seqs = new Map(topics.map((t) => [t, 0]));

  wss.on('connection', (ws, req) => {
    const id = randomUUID();
    const subscribed = new Set(topicsFromUrl(req.url).filter((t) => seqs.has(t)));
    clients.set(id, { ws, topics: subscribed });
    ws.on('error', () => {});
    ws.on('close', () => clients.delete(id));
    ws.on('message', (raw) => {
      let msg;
      try {
        msg = JSON.parse(String(raw));
      } catch {
        return;
      }
      if (msg?.type === 'subscribe' && Array.isArray(msg.topics)) {
        for (const t of msg.topics) if (seqs.has(t)) subscribed.add(t);
      }
    });
    const timestamp = new Date().toISOString();
    ws.send(
      JSON.stringify({
        type: 'CONNECTED',
        data: { clientId: id, protocol: 1, topics, subscribed: [...subscribed] },
        timestamp,
      }),
    );
    const state = {};
    for (const t of subscribed) state[t] = { entities: [], seq: seqs.get(t) };
    ws.send(JSON.stringify({ type: 'SNAPSHOT', data: state, timestamp }));
  });

  return {
    port: /** @type {import('node:net').AddressInfo} */ (wss.address()).port,
    publish(topic, message) {
      const seq = (seqs.get(topic) ?? 0) + 1;
      seqs.set(topic, seq);
      for (const client of clients.values()) {
        if (client.topics.has(topic) && client.ws.readyState === WebSocket.OPEN) {
          client.ws.send(JSON.stringify({ ...message, seq }));
        }
      }
    },
    clientCount: () => clients.size,
    close: () =>
      new Promise((resolve) => {
        for (const { ws } of clients.values()) ws.terminate();
        wss.close(() => resolve());
      }),
  };
});
