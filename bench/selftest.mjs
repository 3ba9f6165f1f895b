#!/usr/bin/env node
// Self-test of the benchmark's counting client (bench/lib/lite-client.mjs), which every delivery figure relies on:
// against a real `ws` server it must count exactly the messages sent, across every frame-length encoding (7-bit,
// 16-bit, 64-bit) and chunk boundary, answer pings, and stay connected to Socket.IO in Engine.IO mode.
// Usage: node bench/selftest.mjs   (exit code 0 when every check passes; loopback only; bounded to 30 s)
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer } from 'ws';
import { Server } from 'socket.io';
import { LiteClient } from './lib/lite-client.mjs';

const deadline = setTimeout(() => {
  console.error('selftest: timed out');
  process.exit(1);
}, 30_000);

async function waitFor(predicate, ms = 5_000) {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

async function testWs() {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  let pongs = 0;
  const sizes = [0, 1, 125, 126, 127, 65535, 65536, 70000, 512];
  const rounds = 50;
  wss.on('connection', (ws) => {
    ws.on('pong', () => (pongs += 1));
    for (let r = 0; r < rounds; r += 1) {
      for (const size of sizes) ws.send('x'.repeat(size));
      if (r % 10 === 0) ws.ping(Buffer.from('p'));
    }
  });
  let count = 0;
  let open = false;
  const client = new LiteClient(new URL(`ws://127.0.0.1:${wss.address().port}/`), {
    onOpen: () => (open = true),
    onMessage: () => (count += 1),
    onClose: () => {},
  });
  try {
    const expected = sizes.length * rounds;
    assert.ok(await waitFor(() => count >= expected), `ws: counted ${count} of ${expected} messages`);
    await sleep(100);
    assert.equal(count, expected, 'ws: no extra messages counted');
    assert.ok(open, 'ws: open reported');
    assert.ok(await waitFor(() => pongs === 5), `ws: ${pongs} of 5 pings answered`);
    console.log(
      `ok - ws: ${count} messages of ${sizes.length} sizes counted exactly, ${pongs} pings answered`,
    );
  } finally {
    client.close();
    for (const ws of wss.clients) ws.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }
}

async function testSocketIo() {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], pingInterval: 100, pingTimeout: 200 });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  let connected = 0;
  io.on('connection', (socket) => {
    connected += 1;
    for (let i = 0; i < 100; i += 1) socket.emit('message', { i });
  });
  let count = 0;
  let closed = false;
  const client = new LiteClient(
    new URL(`ws://127.0.0.1:${http.address().port}/socket.io/?EIO=4&transport=websocket`),
    { onOpen: () => {}, onMessage: () => (count += 1), onClose: () => (closed = true) },
    { engineIo: true },
  );
  try {
    // open packet + connect ack + 100 events, then pings every 100 ms that must be answered to stay connected.
    assert.ok(await waitFor(() => count >= 102), `socket.io: counted ${count} of 102 frames`);
    await sleep(700);
    assert.equal(count, 102, 'socket.io: pings are not counted as messages');
    assert.equal(connected, 1, 'socket.io: namespace connected');
    assert.ok(!closed, 'socket.io: still connected after several ping intervals');
    console.log(`ok - socket.io: ${count} frames counted, connection kept through pings`);
  } finally {
    client.close();
    io.close();
  }
}

try {
  await testWs();
  await testSocketIo();
  clearTimeout(deadline);
  process.exit(0);
} catch (error) {
  console.error(`not ok - ${error.message}`);
  process.exit(1);
}
