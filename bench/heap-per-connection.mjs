#!/usr/bin/env node
// What a connection costs on a peer's heap, by constructor: heap snapshots before and after N idle subscribed
// clients, diffed by node name (count and self size per connection).
// Usage: node bench/heap-per-connection.mjs [--peer citypulse] [--clients 2000] [--top 30]
import { readFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startNode, killAll } from './lib/proc.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    peer: { type: 'string', default: 'citypulse' },
    clients: { type: 'string', default: '2000' },
    top: { type: 'string', default: '30' },
  },
});
const scripts = {
  naive: 'naive-ws.mjs',
  careful: 'careful-ws.mjs',
  socketio: 'socketio.mjs',
  coalesce: 'coalesce.mjs',
  citypulse: 'citypulse.mjs',
};
const n = Number(values.clients);
process.on('exit', killAll);

/** Sums self size and count per node name (objects, closures, arrays, strings by type). */
function tally(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const out = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    const name = type === 'object' || type === 'closure' ? snap.strings[nodes[i + iName]] : `(${type})`;
    const key = `${name}`;
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count += 1;
    e.size += nodes[i + iSize];
    out.set(key, e);
  }
  return out;
}

const dir = join(here, 'results', 'heap');
mkdirSync(dir, { recursive: true });
const peer = values.peer;
const server = await startNode({
  core: 0,
  script: join(here, 'peers', scripts[peer]),
  args: ['--port', '0'],
  nodeArgs: ['--expose-gc', ...(peer === 'citypulse' ? ['--import', 'tsx'] : [])],
});
const loadgen = await startNode({ core: 1, script: join(here, 'loadgen.mjs') });
try {
  const before = (await server.request('heap', { path: join(dir, `${peer}-0.heapsnapshot`) }, 120_000)).file;
  const base =
    peer === 'socketio' ? `http://127.0.0.1:${server.ready.port}` : `ws://127.0.0.1:${server.ready.port}/ws`;
  const conn = await loadgen.request(
    'connect',
    {
      opts: {
        url: base,
        kind: peer === 'socketio' ? 'sio' : 'lite',
        sioClient: 'lite',
        n,
        probes: 0,
        subs: 'single:cameras',
        topics: ['cameras', 'weather', 'accidents', 'airQuality'],
        concurrency: 200,
        timeoutMs: 20_000,
        totalTimeoutMs: 120_000,
        readMode: 'immediate',
      },
    },
    180_000,
  );
  const after = (await server.request('heap', { path: join(dir, `${peer}-${n}.heapsnapshot`) }, 120_000))
    .file;
  const a = tally(before);
  const b = tally(after);
  const rows = [];
  for (const [k, v] of b) {
    const o = a.get(k) ?? { count: 0, size: 0 };
    rows.push({ k, count: (v.count - o.count) / conn.connected, bytes: (v.size - o.size) / conn.connected });
  }
  rows.sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  console.log(
    `${peer}: ${conn.connected} clients, heap growth ${(total / 1024).toFixed(2)} KB per connection`,
  );
  console.log('| name | objects / conn | bytes / conn |\n|---|---:|---:|');
  for (const r of rows.slice(0, Number(values.top)))
    console.log(`| \`${r.k}\` | ${r.count.toFixed(2)} | ${r.bytes.toFixed(0)} |`);
} finally {
  await loadgen.stop();
  await server.stop();
}
