// Peer 3: Socket.IO 4.8 with one room per topic; clients use the websocket transport only. Topics come from the
// handshake query (`?topics=a,b`) or a later 'subscribe' event; every publish is `io.to(topic).emit('message', m)`.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { runPeer } from './harness.mjs';

await runPeer(async ({ port, topics }) => {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  const known = new Set(topics);
  const seqs = new Map(topics.map((t) => [t, 0]));

  io.on('connection', (socket) => {
    const raw = socket.handshake.query.topics;
    const subscribed = String(Array.isArray(raw) ? raw.join(',') : (raw ?? ''))
      .split(',')
      .filter((t) => known.has(t));
    for (const t of subscribed) void socket.join(t);
    socket.on('subscribe', (list) => {
      if (Array.isArray(list)) for (const t of list) if (known.has(t)) void socket.join(t);
    });
    const state = {};
    for (const t of subscribed) state[t] = { entities: [], seq: seqs.get(t) };
    socket.emit('snapshot', { type: 'SNAPSHOT', data: state, timestamp: new Date().toISOString() });
  });

  await new Promise((resolve) => http.listen(port, '127.0.0.1', resolve));
  return {
    port: /** @type {import('node:net').AddressInfo} */ (http.address()).port,
    publish(topic, message) {
      const seq = (seqs.get(topic) ?? 0) + 1;
      seqs.set(topic, seq);
      io.to(topic).emit('message', { ...message, seq });
    },
    clientCount: () => io.engine.clientsCount,
    close: () =>
      new Promise((resolve) => {
        io.disconnectSockets(true);
        io.close(() => resolve());
      }),
  };
});
