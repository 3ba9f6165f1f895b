#!/usr/bin/env node
// Cluster benchmark (figures, not a test): deliveries/s and publish-to-delivery latency for
//   A) 1 node, in-memory broker (no Redis)   B) 1 node on Redis   C) 3 nodes on Redis
// with the same clients and the same closed-loop publisher (HTTP POST /api/publish, round-robin over the nodes),
// and the Redis round-trip cost of one publish (the Lua script) against a bare PING and the in-memory broker.
//
// Usage: node --import tsx bench/cluster.mjs [--clients 300] [--seconds 5] [--concurrency 16] [--rate <publishes/s>]
//        [--redis redis://127.0.0.1:6379]   (--rate 0, the default, is a closed loop: publish as fast as answered)
// Nodes run as separate processes (`src/app/cli.ts serve`); keys live under a random prefix, deleted at the end.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { summarize, fmt } from './lib/stats.mjs';
import { LiteClient } from './lib/lite-client.mjs';
import { RedisBroker } from '../src/cluster/redis-broker.ts';
import { InMemoryBroker } from '../src/gateway/memory-broker.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    rate: { type: 'string', default: '0' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
  },
});
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const RATE = Number(values.rate);
const REDIS_URL = values.redis;
const KEY = 'bench-publish-key-0123456789';
const prefix = `citypulse-bench:${randomBytes(4).toString('hex')}:`;
const children = new Set();

function startNode(args) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/app/cli.ts',
      'serve',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--source',
      'none',
      '--publish-key',
      KEY,
      '--log-level',
      'warn',
      '--max-subscriptions',
      '4',
      '--max-connections-per-ip',
      '100000',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.add(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('node did not start')), 60_000);
    child.stdout.on('data', (d) => {
      out += d.toString();
      const m = /serving on http:\/\/[^:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`node exited ${code}`)));
  });
}

async function stopNodes() {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', resolve);
          child.kill('SIGTERM');
        }),
    ),
  );
  children.clear();
}

async function runConfig(name, nodeArgs) {
  const nodes = [];
  for (const args of nodeArgs) nodes.push(await startNode(args));
  const samples = new Float64Array(4_000_000);
  let count = 0;
  let delivered = 0;
  let measuring = false;
  const sockets = [];
  // Most clients only count frames (header-only parser, so the bench process is not the bottleneck); one in ten is
  // a full `ws` client that parses every frame and measures publish-to-delivery latency.
  await Promise.all(
    Array.from({ length: CLIENTS }, (_, i) => {
      const url = `ws://127.0.0.1:${nodes[i % nodes.length].port}/ws?topics=weather`;
      if (i % 10 !== 0) {
        return new Promise((resolve) => {
          const lite = new LiteClient(new URL(url), {
            onOpen: () => resolve(),
            onMessage: () => {
              if (measuring) delivered++;
            },
            onClose: () => resolve(),
          });
          sockets.push(lite);
        });
      }
      const ws = new WebSocket(url);
      sockets.push(ws);
      ws.on('error', () => {});
      ws.on('message', (raw) => {
        if (!measuring) return;
        const text = raw.toString();
        const at = text.indexOf('"t":');
        if (at < 0) return;
        const sent = Number.parseFloat(text.slice(at + 4));
        delivered++;
        if (count < samples.length)
          samples[count++] = (performance.timeOrigin + performance.now() - sent) * 1000;
      });
      return new Promise((resolve) => ws.once('open', resolve));
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  measuring = true;
  const started = performance.now();
  const deadline = started + SECONDS * 1000;
  let published = 0;
  let failed = 0;
  const worker = async (w) => {
    let k = w;
    let next = performance.now();
    while (performance.now() < deadline) {
      if (RATE > 0) {
        // Open loop: each of the CONCURRENCY workers publishes RATE / CONCURRENCY times a second.
        next += (1000 * CONCURRENCY) / RATE;
        const wait = next - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      const port = nodes[k++ % nodes.length].port;
      const body = JSON.stringify({
        topic: 'weather',
        // An ALERT: a published UPDATE must be a valid change of the state (docs/protocol.md, the state model).
        type: 'ALERT',
        data: { t: performance.timeOrigin + performance.now() },
      });
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body,
        });
        await res.arrayBuffer();
        if (res.status === 202) published++;
        else failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  await new Promise((resolve) => setTimeout(resolve, 1000)); // let the tail arrive
  measuring = false;
  const elapsed = (performance.now() - started - 1000) / 1000;
  for (const socket of sockets) {
    if (socket instanceof WebSocket) socket.terminate();
    else socket.close();
  }
  await stopNodes();
  const latency = summarize(samples, count);
  const result = {
    name,
    nodes: nodes.length,
    clients: CLIENTS,
    published,
    failed,
    publishesPerSec: published / elapsed,
    deliveriesPerSec: delivered / elapsed,
    expectedDeliveries: published * CLIENTS,
    delivered,
    latencyMs: latency,
  };
  console.log(
    `${name.padEnd(26)} publishes/s ${fmt(result.publishesPerSec).padStart(7)}  deliveries/s ${fmt(result.deliveriesPerSec).padStart(9)}  ` +
      `delivered ${delivered}/${published * CLIENTS}  p50 ${fmt(latency.p50, 2)} ms  p99 ${fmt(latency.p99, 2)} ms  max ${fmt(latency.max, 1)} ms`,
  );
  return result;
}

async function roundTrip() {
  const n = 3000;
  const redis = new Redis(REDIS_URL);
  const time = async (fn) => {
    const samples = new Float64Array(n);
    for (let i = 0; i < 200; i++) await fn(i); // warm-up (script load, JIT)
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await fn(i);
      samples[i] = (performance.now() - t0) * 1000;
    }
    return summarize(samples, n);
  };
  const ping = await time(() => redis.ping());
  const broker = new RedisBroker({ url: REDIS_URL, keyPrefix: prefix });
  await broker.connect();
  broker.attach({ deliver() {}, subscribers: () => 0, resync() {}, broadcast() {} });
  const data = {
    upserts: [{ id: 'w1', updatedAt: new Date().toISOString(), source: 'bench', temperatureC: 12.5 }],
    removes: [],
  };
  const publish = await time(() =>
    broker.publish('weather', { type: 'UPDATE', data, timestamp: new Date().toISOString() }),
  );
  await broker.close();
  redis.disconnect();
  const memory = new InMemoryBroker();
  memory.attach({ deliver() {}, subscribers: () => 0, resync() {}, broadcast() {} });
  const m = 200_000;
  const t0 = performance.now();
  for (let i = 0; i < m; i++)
    memory.publish('weather', { type: 'UPDATE', data, timestamp: '2026-03-01T12:00:00.000Z' });
  const memoryUs = ((performance.now() - t0) * 1000) / m;
  console.log(
    `round trip (sequential, ${n}x): PING p50 ${fmt(ping.p50, 3)} ms p99 ${fmt(ping.p99, 3)} ms | publish script p50 ${fmt(publish.p50, 3)} ms p99 ${fmt(publish.p99, 3)} ms | in-memory publish ${fmt(memoryUs, 2)} us`,
  );
  return { pingMs: ping, publishScriptMs: publish, inMemoryPublishUs: memoryUs };
}

async function cleanup() {
  const redis = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  redis.disconnect();
}

const redisArgs = (id) => ['--redis', REDIS_URL, '--redis-prefix', prefix, '--node-id', id];
try {
  console.log(
    `citypulse cluster bench: ${CLIENTS} clients on "weather", ${CONCURRENCY} publishers in flight for ${SECONDS} s` +
      (RATE > 0 ? `, open loop at ${RATE} publishes/s` : ', closed loop (as fast as they are answered)'),
  );
  const results = [];
  results.push(await runConfig('A 1 node, in-memory', [[]]));
  results.push(await runConfig('B 1 node, Redis', [redisArgs('b0')]));
  results.push(await runConfig('C 3 nodes, Redis', [redisArgs('c0'), redisArgs('c1'), redisArgs('c2')]));
  const rtt = await roundTrip();
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/cluster-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(
    file,
    JSON.stringify(
      { clients: CLIENTS, seconds: SECONDS, concurrency: CONCURRENCY, rate: RATE, results, roundTrip: rtt },
      null,
      2,
    ),
  );
  console.log(`written ${file}`);
} finally {
  await stopNodes();
  await cleanup();
}
