#!/usr/bin/env node
// The citypulse benchmark driver (`npm run bench`). Starts each peer server pinned to core 0 and the load
// generator pinned to core 1, runs the scenarios of issue 6 against every peer in the same run, and writes a
// markdown report to bench/results/<date>.md (and prints it). See docs/performance.md for the method.
//
//   node bench/run.mjs [--quick] [--scenario A,B,C,D] [--peers naive,careful,socketio,coalesce,citypulse]
//                      [--rates 50,100,200,500,1000] [--duration 5] [--warmup 1] [--clients 2000]
//                      [--read-modes immediate,batch] [--client lite|ws] [--probes 10] [--payload 512]
//                      [--idle-clients 2000,10000] [--storm-clients 5000] [--storm-concurrency 200]
//                      [--mixed-clients 2000] [--mixed-rates 100,400] [--batch-pause-ms 20] [--batch-run-ms 5]
//                      [--compressed-runs citypulse:plain,citypulse:deflate,...] [--compressed-rates 50,100,200,400]
//                      [--compressed-clients 2000] [--compressed-entities 8]
//                      [--transit-runs citypulse:plain,citypulse:deflate,...] [--transit-vehicles 1000]
//                      [--transit-batches 1000,100] [--transit-clients 2000] [--transit-duration 10]
//                      [--transit-warmup 2.5] [--transit-probes 20]
//                      [--cpu-prof] [--update-docs] [--out FILE]
//
// Scenario E (compressed fan-out, issue 13) is not in the default list: `--scenario E` (or A,B,C,D,E) runs it. Its
// SVG charts go to docs/ with --update-docs, else beside the results file.
// Scenario T (transit, issue 12) is not in the default list either: `--scenario T`. A fleet of --transit-vehicles
// each reporting once a second, published as UPDATEs of --transit-batches vehicles (1000: one UPDATE a second, as
// the simulator and a GTFS-Realtime poll produce it; 100: ten a second), to --transit-clients subscribed to
// `transit`, with and without permessage-deflate, on citypulse, the coalescing reference and citypulse with its own
// simulator's fleet as the producer (peer citypulse-sim).
//
// Every loop is bounded in count and time; every child process exits by itself (see harness.mjs, loadgen.mjs).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { coreTimes, cpuTimes, killAll, machine, memory, startNode } from './lib/proc.mjs';
import { fmt, ratio } from './lib/stats.mjs';
import { barChart, lineChart } from './lib/svg.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

const PEERS = {
  naive: { label: 'ws (straightforward)', script: 'peers/naive-ws.mjs', kind: 'ws' },
  careful: { label: 'ws (careful)', script: 'peers/careful-ws.mjs', kind: 'ws' },
  socketio: { label: 'Socket.IO 4.8', script: 'peers/socketio.mjs', kind: 'sio' },
  coalesce: { label: 'coalescing reference', script: 'peers/coalesce.mjs', kind: 'ws' },
  citypulse: { label: 'citypulse', script: 'peers/citypulse.mjs', kind: 'ws', tsx: true },
  // Scenario E's references: ws with its own per-socket deflate, and the coalescing reference compressing once.
  'deflate-ws': {
    label: 'ws (per-socket deflate)',
    script: 'peers/careful-ws.mjs',
    kind: 'ws',
    env: { BENCH_DEFLATE: '1' },
  },
  'coalesce-deflate': {
    label: 'compress-once reference',
    script: 'peers/coalesce.mjs',
    kind: 'ws',
    env: { BENCH_DEFLATE: '1' },
  },
  // Scenario T: citypulse with its own simulator's transit fleet as the producer (through the aggregator).
  'citypulse-sim': {
    label: 'citypulse, simulator producer',
    script: 'peers/citypulse.mjs',
    kind: 'ws',
    tsx: true,
    env: { BENCH_PRODUCER: 'simulator' },
  },
  // Another checkout of citypulse (--alt-root DIR), to measure a change against the current code in one run.
  'citypulse-alt': {
    label: 'citypulse (alt)',
    script: 'peers/citypulse.mjs',
    kind: 'ws',
    tsx: true,
    alt: true,
  },
};

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string' },
    peers: { type: 'string' },
    rates: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    clients: { type: 'string' },
    'read-modes': { type: 'string' },
    client: { type: 'string', default: 'lite' },
    'sio-client': { type: 'string', default: 'full' },
    probes: { type: 'string', default: '10' },
    payload: { type: 'string', default: '512' },
    'idle-clients': { type: 'string' },
    'storm-clients': { type: 'string' },
    'storm-concurrency': { type: 'string', default: '200' },
    'mixed-clients': { type: 'string' },
    'mixed-rates': { type: 'string' },
    'batch-pause-ms': { type: 'string', default: '20' },
    'batch-run-ms': { type: 'string', default: '5' },
    'behind-ratio': { type: 'string', default: '0.95' },
    repeat: { type: 'string' },
    nice: { type: 'string', default: '0' },
    'noise-pct': { type: 'string', default: '10' },
    'cpu-prof': { type: 'boolean', default: false },
    'compressed-runs': { type: 'string' },
    'compressed-rates': { type: 'string' },
    'compressed-clients': { type: 'string' },
    'compressed-entities': { type: 'string', default: '8' },
    'transit-runs': { type: 'string' },
    'transit-vehicles': { type: 'string', default: '1000' },
    'transit-batches': { type: 'string' },
    'transit-clients': { type: 'string' },
    'transit-duration': { type: 'string' },
    'transit-warmup': { type: 'string' },
    'transit-probes': { type: 'string', default: '20' },
    'alt-root': { type: 'string' },
    'citypulse-options': { type: 'string' },
    'alt-options': { type: 'string' },
    'update-docs': { type: 'boolean', default: false },
    out: { type: 'string' },
    render: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  console.log(
    readFileSync(fileURLToPath(import.meta.url), 'utf8')
      .split('\n')
      .slice(1, 24)
      .join('\n'),
  );
  process.exit(0);
}

const quick = flags.quick;
const list = (value, fallback) =>
  (value ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const nums = (value, fallback) => list(value, fallback).map(Number);
/** `peer:plain,peer:deflate,...` as `{ peer, deflate }` runs. */
const parseRuns = (value, fallback) =>
  list(value, fallback).map((r) => {
    const [peer = '', mode = 'deflate'] = r.split(':');
    return { peer, deflate: mode === 'deflate' };
  });
const citypulseAvailable = existsSync(join(root, 'src/app/create-server.ts'));
const config = {
  scenarios: list(flags.scenario, 'A,B,C,D').map((s) => s.toUpperCase()),
  peers: list(flags.peers, `naive,careful,socketio,coalesce${citypulseAvailable ? ',citypulse' : ''}`),
  rates: nums(flags.rates, quick ? '20,200,1000' : '10,20,50,100,200,500,1000'),
  durationMs: Number(flags.duration ?? (quick ? 1.5 : 5)) * 1000,
  warmupMs: Number(flags.warmup ?? (quick ? 0.5 : 1)) * 1000,
  clients: Number(flags.clients ?? 2000),
  readModes: list(flags['read-modes'], quick ? 'immediate' : 'immediate,batch'),
  client: flags.client,
  sioClient: flags['sio-client'],
  probes: Number(flags.probes),
  payload: Number(flags.payload),
  idleClients: nums(flags['idle-clients'], quick ? '1000' : '2000,10000'),
  stormClients: Number(flags['storm-clients'] ?? (quick ? 1000 : 5000)),
  stormConcurrency: Number(flags['storm-concurrency']),
  mixedClients: Number(flags['mixed-clients'] ?? (quick ? 1000 : 2000)),
  mixedRates: nums(flags['mixed-rates'], quick ? '100' : '100,400'),
  batchPauseMs: Number(flags['batch-pause-ms']),
  batchRunMs: Number(flags['batch-run-ms']),
  behindRatio: Number(flags['behind-ratio']),
  repeat: Math.max(1, Number(flags.repeat ?? (quick ? 1 : 3))),
  nice: Number(flags.nice),
  noisePct: Number(flags['noise-pct']),
  cpuProf: flags['cpu-prof'],
  compressedRuns: parseRuns(
    flags['compressed-runs'],
    'citypulse:plain,citypulse:deflate,coalesce:plain,coalesce-deflate:deflate,deflate-ws:deflate',
  ),
  compressedRates: nums(flags['compressed-rates'], quick ? '200' : '50,100,200,400'),
  compressedClients: Number(flags['compressed-clients'] ?? (quick ? 500 : 2000)),
  compressedEntities: Number(flags['compressed-entities']),
  transitRuns: parseRuns(
    flags['transit-runs'],
    'citypulse:plain,citypulse:deflate,coalesce:plain,coalesce-deflate:deflate,citypulse-sim:plain,citypulse-sim:deflate',
  ),
  transitVehicles: Number(flags['transit-vehicles']),
  transitBatches: nums(flags['transit-batches'], quick ? '1000' : '1000,100'),
  transitClients: Number(flags['transit-clients'] ?? (quick ? 500 : 2000)),
  transitDurationMs: Number(flags['transit-duration'] ?? (quick ? 4 : 10)) * 1000,
  transitWarmupMs: Number(flags['transit-warmup'] ?? 2.5) * 1000,
  transitProbes: Number(flags['transit-probes']),
};
for (const p of [
  ...config.peers,
  ...config.compressedRuns.map((r) => r.peer),
  ...config.transitRuns.map((r) => r.peer),
])
  if (!(p in PEERS)) throw new Error(`unknown peer '${p}' (known: ${Object.keys(PEERS).join(', ')})`);
if (!['lite', 'ws'].includes(config.client)) throw new Error('--client must be lite or ws');

const CITY_TOPICS = ['cameras', 'weather', 'accidents', 'airQuality'];
const MAX_DRAIN_MS = quick ? 2_000 : 5_000;
const DRAIN_QUIET_MS = 300;
const CONNECT_TIMEOUT_MS = 20_000;

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const log = (...args) => console.error('[bench]', ...args);

/** Starts the peer on core 0 (serving `topics`) and a load generator on core 1. */
async function startPair(peerName, { profile = config.cpuProf, topics = CITY_TOPICS, env = {} } = {}) {
  const peer = PEERS[peerName];
  const nodeArgs = ['--expose-gc'];
  if (peer.tsx) nodeArgs.push('--import', 'tsx');
  if (profile) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', join(here, 'results', 'profiles'));
  const server = await startNode({
    core: 0,
    script: join(here, peer.script),
    args: ['--port', '0'],
    nodeArgs,
    env: {
      ...peer.env,
      ...env,
      BENCH_TOPICS: topics.join(','),
      ...(peer.alt ? { CITYPULSE_ROOT: flags['alt-root'] ?? root } : {}),
      CITYPULSE_OPTIONS: (peer.alt ? flags['alt-options'] : flags['citypulse-options']) ?? '{}',
    },
    nice: config.nice,
  });
  const loadgen = await startNode({
    core: 1,
    script: join(here, 'loadgen.mjs'),
    nodeArgs: ['--max-old-space-size=4096'],
    nice: config.nice,
  });
  const base =
    peer.kind === 'sio' ? `http://127.0.0.1:${server.ready.port}` : `ws://127.0.0.1:${server.ready.port}/ws`;
  return { peer, server, loadgen, base };
}

async function stopPair(pair) {
  await pair.loadgen.stop().catch(() => {});
  await pair.server.stop().catch(() => {});
}

async function connect(pair, { n, subs, concurrency, readMode, probes, deflate = false }) {
  const timeoutMs = CONNECT_TIMEOUT_MS;
  const result = await pair.loadgen.request(
    'connect',
    {
      opts: {
        url: pair.base,
        kind: pair.peer.kind === 'sio' ? 'sio' : config.client,
        sioClient: config.sioClient,
        n,
        probes,
        subs,
        topics: CITY_TOPICS,
        concurrency,
        timeoutMs,
        totalTimeoutMs: 120_000,
        readMode,
        batchPauseMs: config.batchPauseMs,
        batchRunMs: config.batchRunMs,
        deflate,
      },
    },
    180_000,
  );
  if (result.failed > 0) log(`  ${result.failed} of ${n} clients failed to connect (${result.error})`);
  return result;
}

/** Waits until the load generator's frame counter stops moving (bounded). */
async function drain(pair) {
  const start = Date.now();
  let last = -1;
  let quietSince = Date.now();
  while (Date.now() - start < MAX_DRAIN_MS) {
    const { frames } = await pair.loadgen.request('report', {}, 20_000);
    if (frames !== last) {
      last = frames;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= DRAIN_QUIET_MS) return { drained: true, ms: Date.now() - start };
    await sleep(100);
  }
  return { drained: false, ms: Date.now() - start };
}

/**
 * Measures a step; when other processes took more than --noise-pct of a benchmark core during the window, measures
 * it again (up to --repeat windows) and keeps the quietest window.
 */
async function measureStep(pair, rate, plans, subscribers) {
  let best = null;
  for (let i = 0; i < config.repeat; i += 1) {
    const s = await measureWindow(pair, rate, plans, subscribers);
    s.windows = i + 1;
    if (best === null || s.otherCore0Pct + s.otherCore1Pct < best.otherCore0Pct + best.otherCore1Pct)
      best = { ...s };
    best.windows = i + 1;
    // Others only hurt when a core was contended: idle time they used is no loss.
    const contended0 = s.otherCore0Pct > config.noisePct && s.serverCpuPct + s.otherCore0Pct > 85;
    const contended1 = s.otherCore1Pct > config.noisePct && s.loadgenCpuPct + s.otherCore1Pct > 85;
    if (!contended0 && !contended1) break;
    if (s.behind && !s.drained) break; // a backlog that did not drain would pollute the next window
  }
  return best;
}

/** One measuring window at `rate` msg/s with `plans`; `subscribers` maps topic -> subscriber count. */
async function measureWindow(pair, rate, plans, subscribers) {
  await pair.server.request('publish', { rate, plans });
  await sleep(config.warmupMs);
  const s0 = await pair.server.request('stats');
  await pair.loadgen.request('reset', {}, 20_000);
  const c0 = cpuTimes(pair.server.pid);
  const l0 = cpuTimes(pair.loadgen.pid);
  const k0 = coreTimes();
  const t0 = performance.now();
  await sleep(config.durationMs);
  const report = await pair.loadgen.request('report', {}, 20_000);
  const c1 = cpuTimes(pair.server.pid);
  const l1 = cpuTimes(pair.loadgen.pid);
  const k1 = coreTimes();
  const t1 = performance.now();
  const mem = memory(pair.server.pid);
  // The server may answer late when its event loop is saturated: its own clock dates the counters.
  const s1 = await pair.server.request('stats');
  await pair.server.request('stop');
  const seconds = (t1 - t0) / 1000;
  const serverSeconds = (s1.at - s0.at) / 1e6;
  let demanded = 0;
  for (const [topic, count] of Object.entries(s1.publishedByTopic)) {
    demanded += (count - (s0.publishedByTopic[topic] ?? 0)) * (subscribers[topic] ?? 0);
  }
  const publishedPerSec = (s1.published - s0.published) / serverSeconds;
  // Demand is what the target rate asks for: messages the publisher had to skip because the server's event loop
  // was too slow count as undelivered.
  const demandedPerSec = publishedPerSec > 0 ? (demanded / serverSeconds) * (rate / publishedPerSec) : 0;
  const d = await drain(pair);
  const deliveredPerSec = report.frames / seconds;
  const deliveryRatio = demandedPerSec > 0 ? deliveredPerSec / demandedPerSec : null;
  const step = {
    rate,
    publishedPerSec,
    demandedPerSec,
    publisherLagTicks: s1.lagTicks - s0.lagTicks,
    deliveredPerSec,
    deliveryRatio,
    ...windowFigures({ report, s0, s1, before: { c0, l0, k0 }, after: { c1, l1, k1 }, mem, seconds }),
    drained: d.drained,
    drainMs: d.ms,
  };
  step.behind =
    (deliveryRatio !== null && deliveryRatio < config.behindRatio) ||
    !d.drained ||
    (report.latency.p99 !== null && report.latency.p99 > 1000);
  return step;
}

/**
 * The figures every measuring window reports from the load generator's `report`, the server's stats `s0`/`s1`, the
 * CPU samples before and after and the server's memory: CPU per `seconds` of load; others' share of the two cores
 * per `elapsed` seconds of wall time (default `seconds`).
 */
function windowFigures({ report, s0, s1, before, after, mem, seconds, elapsed = seconds }) {
  const { c0, l0, k0 } = before;
  const { c1, l1, k1 } = after;
  const serverCpu = c1.user + c1.system - c0.user - c0.system;
  const loadgenCpu = l1.user + l1.system - l0.user - l0.system;
  return {
    latency: report.latency,
    seqGaps: report.seqGaps,
    seqDisorder: report.seqDisorder,
    closed: report.closed,
    dropped: s1.dropped - s0.dropped,
    serverCpuPct: (serverCpu / seconds) * 100,
    serverSysPct: ((c1.system - c0.system) / seconds) * 100,
    cpuMicrosPerDelivery: report.frames > 0 ? (serverCpu / report.frames) * 1e6 : null,
    rssMiB: mem.rss / 2 ** 20,
    hwmMiB: mem.hwm / 2 ** 20,
    heapMiB: s1.memory.heapUsed / 2 ** 20,
    loadgenCpuPct: (loadgenCpu / seconds) * 100,
    // CPU time other processes took on the two benchmark cores during the window (machine noise).
    otherCore0Pct: Math.max(0, (((k1[0]?.busy ?? 0) - (k0[0]?.busy ?? 0) - serverCpu) / elapsed) * 100),
    otherCore1Pct: Math.max(0, (((k1[1]?.busy ?? 0) - (k0[1]?.busy ?? 0) - loadgenCpu) / elapsed) * 100),
    // Bytes the counting clients read per frame (compressed or not): what a message costs on the wire.
    wireBytesPerFrame: report.liteFrames > 0 ? report.wireBytes / report.liteFrames : null,
  };
}

function logStep(peer, mode, s) {
  log(
    `  ${peer} ${mode} ${s.rate}/s: delivered ${fmt(s.deliveredPerSec)}/s ratio ${fmt(s.deliveryRatio, 3)} ` +
      `p50 ${fmt(s.latency.p50, 1)} p99 ${fmt(s.latency.p99, 1)} max ${fmt(s.latency.max, 1)} ms, ` +
      `pub ${fmt(s.publishedPerSec)}/s lag ${s.publisherLagTicks}, cpu ${fmt(s.serverCpuPct)}% (sys ${fmt(s.serverSysPct)}%), rss ${fmt(s.rssMiB)} MiB, lg ${fmt(s.loadgenCpuPct)}%, others ${fmt(s.otherCore0Pct)}/${fmt(s.otherCore1Pct)}%` +
      `${s.behind ? ' BEHIND' : ''}${s.drained ? '' : ' (not drained)'}`,
  );
}

async function scenarioA(peerName, readMode) {
  const pair = await startPair(peerName, { profile: config.cpuProf });
  try {
    const conn = await connect(pair, {
      n: config.clients,
      subs: 'single:cameras',
      concurrency: 200,
      readMode,
      probes: config.probes,
    });
    const plans = [{ name: 'cameras', weight: 1, size: config.payload, kind: 'pad' }];
    const steps = [];
    for (const rate of config.rates) {
      const step = await measureStep(pair, rate, plans, conn.subscribers);
      step.clients = conn.connected;
      logStep(peerName, readMode, step);
      steps.push(step);
      if (step.behind) break;
    }
    return { connected: conn.connected, steps };
  } finally {
    await stopPair(pair);
  }
}

async function scenarioB(peerName, n, deflate = false) {
  const pair = await startPair(peerName);
  try {
    await sleep(300);
    const before = await pair.server.request('stats', { gc: true });
    const m0 = memory(pair.server.pid);
    const conn = await connect(pair, {
      n,
      subs: 'single:cameras',
      concurrency: 200,
      readMode: 'immediate',
      probes: 0,
      deflate,
    });
    await sleep(1000);
    const after = await pair.server.request('stats', { gc: true });
    const m1 = memory(pair.server.pid);
    const connected = Math.max(1, conn.connected);
    const r = {
      n,
      connected: conn.connected,
      serverClients: after.clients,
      rssPerConnKB: (m1.rss - m0.rss) / connected / 1024,
      heapPerConnKB: (after.memory.heapUsed - before.memory.heapUsed) / connected / 1024,
      externalPerConnKB:
        (after.memory.external +
          after.memory.arrayBuffers -
          before.memory.external -
          before.memory.arrayBuffers) /
        connected /
        1024,
      rssMiB: m1.rss / 2 ** 20,
    };
    log(
      `  ${peerName} idle ${n}: rss/conn ${fmt(r.rssPerConnKB, 2)} KB heap/conn ${fmt(r.heapPerConnKB, 2)} KB ` +
        `(server sees ${r.serverClients})`,
    );
    return r;
  } finally {
    await stopPair(pair);
  }
}

async function scenarioC(peerName) {
  const pair = await startPair(peerName);
  try {
    const c0 = cpuTimes(pair.server.pid);
    const l0 = cpuTimes(pair.loadgen.pid);
    const k0 = coreTimes();
    const conn = await connect(pair, {
      n: config.stormClients,
      subs: 'single:cameras',
      concurrency: config.stormConcurrency,
      readMode: 'immediate',
      probes: 0,
    });
    const c1 = cpuTimes(pair.server.pid);
    const l1 = cpuTimes(pair.loadgen.pid);
    const k1 = coreTimes();
    const seconds = conn.elapsedMs / 1000;
    const serverCpu = c1.user + c1.system - c0.user - c0.system;
    const loadgenCpu = l1.user + l1.system - l0.user - l0.system;
    const r = {
      n: config.stormClients,
      connected: conn.connected,
      failed: conn.failed,
      perSecond: conn.perSecond,
      p50: conn.latency.p50,
      p99: conn.latency.p99,
      max: conn.latency.max,
      serverCpuMsPerConn: (serverCpu * 1000) / Math.max(1, conn.connected),
      serverCpuPct: (serverCpu / seconds) * 100,
      loadgenCpuPct: (loadgenCpu / seconds) * 100,
      otherCore0Pct: Math.max(0, (((k1[0]?.busy ?? 0) - (k0[0]?.busy ?? 0) - serverCpu) / seconds) * 100),
      otherCore1Pct: Math.max(0, (((k1[1]?.busy ?? 0) - (k0[1]?.busy ?? 0) - loadgenCpu) / seconds) * 100),
    };
    log(
      `  ${peerName} storm: ${fmt(r.perSecond)} conn/s p50 ${fmt(r.p50, 1)} p99 ${fmt(r.p99, 1)} ms, failed ${r.failed}, ` +
        `cpu ${fmt(r.serverCpuPct)}% lg ${fmt(r.loadgenCpuPct)}% others ${fmt(r.otherCore0Pct)}/${fmt(r.otherCore1Pct)}%`,
    );
    return r;
  } finally {
    await stopPair(pair);
  }
}

async function scenarioD(peerName) {
  const pair = await startPair(peerName);
  try {
    const conn = await connect(pair, {
      n: config.mixedClients,
      subs: 'mixed',
      concurrency: 200,
      readMode: 'immediate',
      probes: config.probes,
    });
    const plans = [
      { name: 'cameras', weight: 4, size: 0, kind: 'city' },
      { name: 'weather', weight: 1, size: 0, kind: 'city' },
      { name: 'accidents', weight: 1, size: 0, kind: 'city' },
      { name: 'airQuality', weight: 2, size: 0, kind: 'city' },
    ];
    const steps = [];
    for (const rate of config.mixedRates) {
      const step = await measureStep(pair, rate, plans, conn.subscribers);
      step.clients = conn.connected;
      logStep(peerName, 'mixed', step);
      steps.push(step);
      if (step.behind) break;
    }
    return { subscribers: conn.subscribers, steps };
  } finally {
    await stopPair(pair);
  }
}

/** Scenario E, one run: `peerName` with clients that offer permessage-deflate as Chrome does (or plain ones). */
async function scenarioE(peerName, deflate) {
  const pair = await startPair(peerName);
  try {
    const conn = await connect(pair, {
      n: config.compressedClients,
      subs: 'single:weather',
      concurrency: 200,
      readMode: 'immediate',
      probes: config.probes,
      deflate,
    });
    const plans = [{ name: 'weather', weight: 1, size: config.compressedEntities, kind: 'city' }];
    const steps = [];
    for (const rate of config.compressedRates) {
      const step = await measureStep(pair, rate, plans, conn.subscribers);
      step.clients = conn.connected;
      logStep(`${peerName}${deflate ? ' (deflate)' : ''}`, 'E', step);
      log(`    bytes on the wire per message: ${fmt(step.wireBytesPerFrame, 1)}`);
      steps.push(step);
      if (step.behind) break;
    }
    return { connected: conn.connected, steps };
  } finally {
    await stopPair(pair);
  }
}

/**
 * Scenario T's measurement of one step. At one to ten UPDATEs a second a fixed window holds a whole number of
 * publishes give or take one (10 % at 1/s) while each may take a second to reach 2,000 clients, so T counts
 * exactly instead: warm up (publish, stop, drain), then publish for the window, stop, and count every frame until
 * the clients are quiet. Ratio = frames / (UPDATEs published × subscribers); per-second figures are per second of
 * load (publishes ÷ rate), CPU included (the drain's CPU is the load's).
 */
async function measureTransit(pair, rate, plans, subscribers, liteClients) {
  await pair.server.request('publish', { rate, plans });
  await sleep(config.transitWarmupMs);
  await pair.server.request('stop');
  await drain(pair);
  const s0 = await pair.server.request('stats');
  await pair.loadgen.request('reset', {}, 20_000);
  const c0 = cpuTimes(pair.server.pid);
  const l0 = cpuTimes(pair.loadgen.pid);
  const k0 = coreTimes();
  const t0 = performance.now();
  await pair.server.request('publish', { rate, plans });
  await sleep(config.transitDurationMs);
  await pair.server.request('stop');
  const s1 = await pair.server.request('stats');
  const d = await drain(pair);
  const report = await pair.loadgen.request('report', {}, 20_000);
  const c1 = cpuTimes(pair.server.pid);
  const l1 = cpuTimes(pair.loadgen.pid);
  const k1 = coreTimes();
  const elapsed = (performance.now() - t0) / 1000;
  const mem = memory(pair.server.pid);
  // UPDATEs: the harness's publishes, or what the peer's own producer published (the simulator producer).
  const p0 = s0.extra ?? s0;
  const p1 = s1.extra ?? s1;
  const updates = p1.published - p0.published;
  let demanded = 0;
  for (const [topic, count] of Object.entries(p1.publishedByTopic))
    demanded += (count - (p0.publishedByTopic[topic] ?? 0)) * (subscribers[topic] ?? 0);
  const loadSeconds = Math.max(1e-3, (s1.published - s0.published) / rate);
  const step = {
    rate,
    updates,
    upsertsPerUpdate:
      s1.extra && updates > 0 ? (s1.extra.upserts - s0.extra.upserts) / updates : plans[0].size,
    publishedPerSec: updates / loadSeconds,
    demandedPerSec: demanded / loadSeconds,
    deliveredPerSec: report.frames / loadSeconds,
    deliveryRatio: demanded > 0 ? report.frames / demanded : null,
    publisherLagTicks: s1.lagTicks - s0.lagTicks,
    ...windowFigures({
      report,
      s0,
      s1,
      before: { c0, l0, k0 },
      after: { c1, l1, k1 },
      mem,
      seconds: loadSeconds,
      elapsed,
    }),
    drained: d.drained,
    drainMs: d.ms,
    bytesPerClientPerSec: report.wireBytes / liteClients / loadSeconds,
  };
  step.vehicleUpdatesPerSec = step.deliveredPerSec * step.upsertsPerUpdate;
  step.behind =
    (step.deliveryRatio !== null && step.deliveryRatio < config.behindRatio) ||
    !d.drained ||
    (report.latency.p99 !== null && report.latency.p99 > 1000);
  return step;
}

/**
 * Scenario T, one run: a transit fleet of `config.transitVehicles` vehicles, each reporting once a second, fanned out
 * to `config.transitClients` clients subscribed to `transit` (offering permessage-deflate as Chrome does, or not).
 * One step per batch size: UPDATEs of `batch` vehicles at `vehicles / batch` per second. The simulator producer
 * (citypulse-sim) has one step: a fleet tick a second through the aggregator, one UPDATE of the vehicles that moved.
 */
async function scenarioT(peerName, deflate) {
  const pair = await startPair(peerName, {
    topics: ['transit'],
    env: { BENCH_TRANSIT_VEHICLES: String(config.transitVehicles) },
  });
  const producer = PEERS[peerName]?.env?.BENCH_PRODUCER === 'simulator';
  try {
    const conn = await connect(pair, {
      n: config.transitClients,
      subs: 'single:transit',
      concurrency: 200,
      readMode: 'immediate',
      probes: config.transitProbes,
      deflate,
    });
    const liteClients = Math.max(1, conn.connected - config.transitProbes);
    const steps = [];
    for (const batch of producer ? [config.transitVehicles] : config.transitBatches) {
      const rate = config.transitVehicles / batch;
      // The simulator producer ignores the harness's messages (each publish is a fleet tick): keep them tiny.
      const plans = producer
        ? [{ name: 'transit', weight: 1, size: 0, kind: 'pad' }]
        : [{ name: 'transit', weight: 1, size: batch, fleet: config.transitVehicles, kind: 'transit' }];
      const step = await measureTransit(pair, rate, plans, conn.subscribers, liteClients);
      step.clients = conn.connected;
      step.batch = batch;
      logStep(`${peerName}${deflate ? ' (deflate)' : ''}`, `T batch ${batch}`, step);
      log(
        `    vehicle updates/s ${fmt(step.vehicleUpdatesPerSec)}, upserts/UPDATE ${fmt(step.upsertsPerUpdate, 1)}, ` +
          `bytes/msg ${fmt(step.wireBytesPerFrame, 1)}, bytes per client per s ${fmt(step.bytesPerClientPerSec)}`,
      );
      steps.push(step);
    }
    return { connected: conn.connected, steps };
  } finally {
    await stopPair(pair);
  }
}

const runLabel = (r) =>
  `${PEERS[r.peer]?.label ?? r.peer}${r.deflate ? (r.peer.includes('deflate') ? '' : ', deflate') : ', plain'}`;
const runKey = (r) => `${r.peer}:${r.deflate ? 'deflate' : 'plain'}`;

/** The three charts of scenario E as { file name: SVG }. */
function compressedCharts(E, meta) {
  const runs = config.compressedRuns.filter((r) => E.runs[runKey(r)]);
  const xs = config.compressedRates;
  const note = `run of ${meta.date.slice(0, 16)} UTC, ${config.durationMs / 1000} s windows; ${config.compressedClients} clients, ${config.compressedEntities}-entity city UPDATEs`;
  const valuesOf = (r, pick) =>
    xs.map((rate) => {
      const s = E.runs[runKey(r)].steps.find((step) => step.rate === rate);
      return s === undefined ? null : pick(s);
    });
  const families = [...new Set(runs.map((r) => r.peer.replace(/-deflate$|^deflate-/, '')))];
  const rate = xs.includes(200) ? 200 : xs[xs.length - 1];
  // Bytes per message hardly depend on the rate: the target rate's step, else the first one measured.
  const bytesAt = (r) => {
    const steps = E.runs[runKey(r)]?.steps ?? [];
    return (steps.find((s) => s.rate === rate) ?? steps[0])?.wireBytesPerFrame ?? null;
  };
  const find = (family, deflate) =>
    runs.find((r) => r.deflate === deflate && r.peer.replace(/-deflate$|^deflate-/, '') === family);
  return {
    'bench-compressed-delivered.svg': lineChart({
      title: 'Compressed fan-out: delivered messages per second',
      note,
      xLabel: 'publish rate (msg/s)',
      yLabel: 'delivered / s',
      xs,
      series: runs.map((r) => ({ name: runLabel(r), values: valuesOf(r, (s) => s.deliveredPerSec) })),
    }),
    'bench-compressed-p99.svg': lineChart({
      title: 'Compressed fan-out: p99 latency (publish to parsed)',
      note,
      xLabel: 'publish rate (msg/s)',
      yLabel: 'p99 (ms)',
      xs,
      series: runs.map((r) => ({ name: runLabel(r), values: valuesOf(r, (s) => s.latency.p99) })),
    }),
    'bench-compressed-bytes.svg': barChart({
      title: `Bytes on the wire per city UPDATE (${config.compressedEntities} entities)`,
      note,
      xLabel: 'peer',
      yLabel: 'bytes per delivered message',
      categories: families.map((f) => (f === 'ws' ? 'ws' : (PEERS[f]?.label ?? f))),
      series: [false, true].map((deflate) => ({
        name: deflate ? 'permessage-deflate' : 'plain',
        values: families.map((f) => {
          const r = find(f, deflate);
          return r === undefined ? null : bytesAt(r);
        }),
      })),
    }),
  };
}

// ----------------------------------------------------------------------------------------------------------------
// Report
// ----------------------------------------------------------------------------------------------------------------

function peak(steps) {
  return steps.reduce((best, s) => (s.deliveredPerSec > (best?.deliveredPerSec ?? -1) ? s : best), null);
}

function stepRow(label, s, wanted) {
  if (s.clients !== undefined && s.clients < wanted) label = `${label} (only ${s.clients} clients connected)`;
  return (
    `| ${label} | ${fmt(s.rate)} | ${fmt(s.demandedPerSec)} | ${fmt(s.deliveredPerSec)} | ${fmt(s.deliveryRatio, 3)} | ` +
    `${fmt(s.latency.p50, 1)} | ${fmt(s.latency.p99, 1)} | ${fmt(s.latency.max, 1)} | ${fmt(s.serverCpuPct)} (${fmt(s.serverSysPct)}) | ` +
    `${fmt(s.cpuMicrosPerDelivery, 2)} | ${fmt(s.rssMiB)} | ${fmt(s.loadgenCpuPct)} | ${fmt(s.otherCore0Pct)} / ${fmt(s.otherCore1Pct)} | ` +
    `${s.seqGaps + s.seqDisorder} | ${s.behind ? 'yes' : ''} |`
  );
}

const STEP_HEADER =
  '| peer | msg/s | demanded/s | delivered/s | ratio | p50 ms | p99 ms | max ms | server CPU % (sys) | CPU µs/delivery | RSS MiB | load-gen CPU % | others on core 0 / 1 % | seq gaps | behind |\n' +
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|';

/** Scenario T's section of the report (its own block of docs/performance.md). */
function renderT(T) {
  const out = [];
  out.push(
    `## T. Transit: ${fmt(config.transitVehicles)} vehicles each reporting once a second, ${fmt(config.transitClients)} clients on \`transit\``,
    '',
    ...(T.machine
      ? [
          `Machine: ${T.machine.nproc} cores, ${T.machine.cpu}; Node ${T.machine.node}; server pinned to core 0, load ` +
            `generator to core 1 (taskset ${T.machine.taskset ? 'yes' : 'not available'})` +
            `${config.nice !== 0 ? `, both at nice ${config.nice} in their own autogroups` : ''}. Load average ` +
            `(1/5/15 min) ${T.loadBefore.map((x) => x.toFixed(2)).join(' / ')} before the runs, ` +
            `${(T.loadAfter ?? []).map((x) => x.toFixed(2)).join(' / ')} after` +
            (Math.max(T.loadBefore[0], T.loadAfter?.[0] ?? 0) > T.machine.nproc
              ? `: above ${T.machine.nproc}, other work was waiting for these cores (see "others on core 0 / 1").`
              : '.'),
          '',
        ]
      : []),
    `Window ${config.transitDurationMs / 1000} s after ${config.transitWarmupMs / 1000} s warm-up; ${config.transitProbes} ` +
      'parsing probe clients measure publish-to-parsed latency (one sample per probe per UPDATE). Bytes: what the ' +
      'counting clients read, frame headers included. Runs marked plain offer no extension; deflate ones offer ' +
      'permessage-deflate as Chrome does.',
    '',
    '| peer | vehicles per UPDATE | UPDATEs/s | delivered frames/s | ratio | vehicle updates/s delivered | p50 ms | p99 ms | max ms | bytes/frame | bytes per client per s | server CPU % (sys) | RSS MiB | load-gen CPU % | others on core 0 / 1 % | seq gaps | closed | behind |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  );
  for (const r of config.transitRuns)
    for (const s of T.runs[runKey(r)]?.steps ?? []) {
      const label =
        s.clients < config.transitClients
          ? `${runLabel(r)} (only ${s.clients} clients connected)`
          : runLabel(r);
      out.push(
        `| ${label} | ${fmt(s.upsertsPerUpdate, s.upsertsPerUpdate % 1 === 0 ? 0 : 1)} | ${fmt(s.rate, 1)} | ${fmt(s.deliveredPerSec)} | ${fmt(s.deliveryRatio, 3)} | ` +
          `${fmt(s.vehicleUpdatesPerSec)} | ${fmt(s.latency.p50, 1)} | ${fmt(s.latency.p99, 1)} | ${fmt(s.latency.max, 1)} | ` +
          `${fmt(s.wireBytesPerFrame)} | ${fmt(s.bytesPerClientPerSec)} | ${fmt(s.serverCpuPct)} (${fmt(s.serverSysPct)}) | ` +
          `${fmt(s.rssMiB)} | ${fmt(s.loadgenCpuPct)} | ${fmt(s.otherCore0Pct)} / ${fmt(s.otherCore1Pct)} | ${s.seqGaps + s.seqDisorder} | ${s.closed} | ${s.behind ? 'yes' : ''} |`,
      );
    }
  out.push('');
  const at = (peer, deflate, batch) =>
    T.runs[runKey({ peer, deflate })]?.steps.find((s) => batch === null || s.batch === batch);
  const rows = [];
  const compare = (label, a, b, deflate) => {
    if (a === undefined || b === undefined) return;
    rows.push(
      `| ${label} | ${deflate ? 'deflate' : 'plain'} | ${ratio(a.deliveredPerSec, b.deliveredPerSec, 2)} | ` +
        `${ratio(a.latency.p99, b.latency.p99, 2)} | ${ratio(a.bytesPerClientPerSec, b.bytesPerClientPerSec, 2)} | ` +
        `${ratio(a.serverCpuPct, b.serverCpuPct, 2)} |`,
    );
  };
  for (const deflate of [false, true]) {
    const ref = deflate ? 'coalesce-deflate' : 'coalesce';
    for (const batch of config.transitBatches)
      compare(
        `citypulse, ${batch} per UPDATE`,
        at('citypulse', deflate, batch),
        at(ref, deflate, batch),
        deflate,
      );
    compare(
      `citypulse with the simulator producer ÷ reference at ${config.transitVehicles} per UPDATE`,
      at('citypulse-sim', deflate, null),
      at(ref, deflate, config.transitVehicles),
      deflate,
    );
  }
  if (rows.length > 0)
    out.push(
      '### citypulse ÷ coalescing reference (same run)',
      '',
      '| run | wire | delivered/s | p99 | bytes per client per s | server CPU |',
      '|---|---|---:|---:|---:|---:|',
      ...rows,
      '',
    );
  return out.join('\n');
}

/** Scenario E's section of the report (its own block of docs/performance.md). */
function renderE(E) {
  const out = [];
  out.push(
    `## E. Compressed fan-out: ${config.compressedClients} clients offering permessage-deflate as Chrome does, ${config.compressedEntities}-entity city UPDATEs`,
    '',
    'Bytes/msg: what the counting clients read per frame, headers included. Runs marked plain offer no extension.',
    '',
    STEP_HEADER.replace('| behind |', '| behind | bytes/msg |').replace(/\|---\|$/, '|---|---:|'),
  );
  for (const r of config.compressedRuns)
    for (const s of E.runs[runKey(r)]?.steps ?? [])
      out.push(`${stepRow(runLabel(r), s, config.compressedClients)} ${fmt(s.wireBytesPerFrame, 1)} |`);
  out.push('');
  const rate = config.compressedRates.includes(200) ? 200 : config.compressedRates.at(-1);
  const at = (key) => E.runs[key]?.steps.find((s) => s.rate === rate);
  const cp = at('citypulse:deflate');
  const plain = at('citypulse:plain');
  out.push(`### Targets at ${rate} msg/s (one run)`, '', '| target | measured | met |', '|---|---:|---|');
  const row = (what, value, ok) =>
    out.push(`| ${what} | ${value} | ${ok === null ? '-' : ok ? 'yes' : 'no'} |`);
  const r1 =
    cp && at('coalesce-deflate:deflate')
      ? cp.deliveredPerSec / at('coalesce-deflate:deflate').deliveredPerSec
      : null;
  const r2 =
    cp && at('deflate-ws:deflate') ? cp.deliveredPerSec / at('deflate-ws:deflate').deliveredPerSec : null;
  const r3 = cp && plain && plain.wireBytesPerFrame ? cp.wireBytesPerFrame / plain.wireBytesPerFrame : null;
  row('delivered/s ≥ 0.9× compress-once reference', fmt(r1, 2), r1 === null ? null : r1 >= 0.9);
  row('delivered/s ≥ 5× ws per-socket deflate', fmt(r2, 2), r2 === null ? null : r2 >= 5);
  row('bytes/msg ≤ 0.5× uncompressed', fmt(r3, 2), r3 === null ? null : r3 <= 0.5);
  row('p99 ≤ 100 ms', fmt(cp?.latency.p99, 1), cp ? cp.latency.p99 <= 100 : null);
  const idle = E.idle;
  const r4 = idle?.deflate && idle?.plain ? idle.deflate.heapPerConnKB / idle.plain.heapPerConnKB : null;
  row(
    `idle memory per compressed connection ≤ 1.1× plain (heap KB/conn ${fmt(idle?.deflate?.heapPerConnKB, 2)} vs ${fmt(idle?.plain?.heapPerConnKB, 2)}; RSS ${fmt(idle?.deflate?.rssPerConnKB, 2)} vs ${fmt(idle?.plain?.rssPerConnKB, 2)})`,
    fmt(r4, 2),
    r4 === null ? null : r4 <= 1.1,
  );
  out.push('');
  out.push(
    '![delivered/s](bench-compressed-delivered.svg) ![p99](bench-compressed-p99.svg) ![bytes per message](bench-compressed-bytes.svg)',
    '',
  );
  return out.join('\n');
}

function render(results, meta) {
  const out = [];
  out.push(`# citypulse benchmark — ${meta.date}${quick ? ' (quick)' : ''}`, '');
  out.push(
    `Machine: ${meta.machine.nproc} cores, ${meta.machine.cpu}; Node ${meta.machine.node}; ws ${meta.versions.ws}, ` +
      `socket.io ${meta.versions.socketio}. Server pinned to core 0, load generator to core 1 ` +
      `(taskset ${meta.machine.taskset ? 'yes' : 'not available'}). Counting clients: ${config.client} ` +
      `(Socket.IO: ${config.sioClient === 'lite' ? 'the same raw client speaking Engine.IO' : 'socket.io-client'}, websocket transport); ` +
      `${config.probes} parsing probe clients. ` +
      `Window ${config.durationMs / 1000} s after ${config.warmupMs / 1000} s warm-up; a step is "behind" when ` +
      `delivered/demanded < ${config.behindRatio}, p99 > 1 s, or the backlog does not drain within ${MAX_DRAIN_MS / 1000} s.`,
    '',
  );
  const cp = 'citypulse';
  if (results.A) {
    out.push(`## A. Fan-out: ${config.clients} clients on one topic, ${config.payload} B payload`, '');
    for (const mode of config.readModes) {
      const rows = [];
      for (const p of config.peers)
        for (const s of results.A[p]?.[mode]?.steps ?? [])
          rows.push(stepRow(PEERS[p].label, s, config.clients));
      if (rows.length === 0) continue;
      out.push(
        `### Read mode: ${mode}${mode === 'batch' ? ` (sockets paused ${config.batchPauseMs} ms, read ${config.batchRunMs} ms)` : ''}`,
        '',
        STEP_HEADER,
        ...rows,
        '',
      );
    }
    out.push('### Peak delivered/s and ratios (same run, same read mode)', '');
    out.push(
      'Peak: the best step, behind or not. Sustained: the best step that was not behind (everything delivered, p99 ' +
        'under 1 s, backlog drained).',
      '',
    );
    const modes = config.readModes;
    out.push(
      `| peer | ${modes.map((m) => `peak ${m} (p99 ms)`).join(' | ')} | ${modes.map((m) => `sustained ${m} (p99 ms)`).join(' | ')} | ` +
        `${modes.map((m) => `citypulse ÷ peer, peak (${m})`).join(' | ')} | ${modes.map((m) => `citypulse ÷ peer, sustained (${m})`).join(' | ')} |`,
    );
    out.push(`|---|${modes.map(() => '---:|---:|---:|---:').join('|')}|`);
    const stepsOf = (p, m) => results.A[p]?.[m]?.steps ?? [];
    const sustained = (steps) => peak(steps.filter((s) => !s.behind));
    const cell = (s) => (s ? `${fmt(s.deliveredPerSec)} (${fmt(s.latency.p99, 1)})` : '-');
    for (const p of config.peers) {
      const cells = [
        ...modes.map((m) => cell(peak(stepsOf(p, m)))),
        ...modes.map((m) => cell(sustained(stepsOf(p, m)))),
        ...modes.map((m) =>
          ratio(peak(stepsOf(cp, m))?.deliveredPerSec, peak(stepsOf(p, m))?.deliveredPerSec, 2),
        ),
        ...modes.map((m) =>
          ratio(sustained(stepsOf(cp, m))?.deliveredPerSec, sustained(stepsOf(p, m))?.deliveredPerSec, 2),
        ),
      ];
      out.push(`| ${PEERS[p].label} | ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  if (results.B) {
    out.push('## B. Idle subscribed clients: memory per connection', '');
    out.push(
      '| peer | clients | connected | RSS KB/conn | heap KB/conn | external+arrayBuffers KB/conn | RSS MiB total |',
    );
    // (RSS and heap are read after two forced GCs, before and after connecting.)
    out.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const p of config.peers)
      for (const r of results.B[p] ?? [])
        out.push(
          `| ${PEERS[p].label} | ${fmt(r.n)} | ${fmt(r.connected)} | ${fmt(r.rssPerConnKB, 2)} | ${fmt(r.heapPerConnKB, 2)} | ${fmt(r.externalPerConnKB, 2)} | ${fmt(r.rssMiB)} |`,
        );
    out.push('');
  }
  if (results.C) {
    out.push(
      `## C. Connect storm: ${config.stormClients} clients, ${config.stormConcurrency} in flight, until the snapshot arrives`,
      '',
    );
    out.push(
      '| peer | connected | connections/s | p50 ms | p99 ms | max ms | server CPU ms/conn | server CPU % | load-gen CPU % | others on core 0 / 1 % | citypulse ÷ peer |',
    );
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const p of config.peers) {
      const r = results.C[p];
      if (!r) continue;
      out.push(
        `| ${PEERS[p].label} | ${fmt(r.connected)} | ${fmt(r.perSecond)} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${fmt(r.max, 1)} | ${fmt(r.serverCpuMsPerConn, 3)} | ${fmt(r.serverCpuPct)} | ${fmt(r.loadgenCpuPct)} | ${fmt(r.otherCore0Pct)} / ${fmt(r.otherCore1Pct)} | ${ratio(results.C[cp]?.perSecond, r.perSecond, 2)} |`,
      );
    }
    out.push('');
  }
  if (results.D) {
    out.push(
      `## D. Mixed topics: ${config.mixedClients} clients with 1-4 of 4 topics, city-sized messages (cameras:weather:accidents:airQuality = 4:1:1:2)`,
      '',
      STEP_HEADER,
    );
    for (const p of config.peers)
      for (const s of results.D[p]?.steps ?? []) out.push(stepRow(PEERS[p].label, s, config.mixedClients));
    out.push('');
  }
  if (results.E) out.push(renderE(results.E));
  if (results.T) out.push(renderT(results.T));
  if (meta.errors.length > 0) {
    out.push('## Errors', '', ...meta.errors.map((e) => `- ${e}`), '');
  }
  return out.join('\n');
}

async function main() {
  if (flags.render) {
    // Re-render a saved run (its .json) with the current report code; --update-docs applies as usual.
    const saved = JSON.parse(readFileSync(flags.render, 'utf8'));
    Object.assign(config, saved.config);
    const md = render(saved.results, saved.meta);
    if (flags['update-docs']) updateDocs(md, saved.results);
    if (saved.results.E)
      writeCharts(
        saved.results.E,
        saved.meta,
        flags['update-docs'] ? join(root, 'docs') : dirname(flags.render),
      );
    console.log(md);
    return;
  }
  const date = new Date().toISOString();
  const pkg = (name) =>
    JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  const meta = {
    date,
    machine: machine(),
    versions: { ws: pkg('ws'), socketio: pkg('socket.io') },
    errors: [],
  };
  log(`config ${JSON.stringify(config)}`);
  const results = {};
  const guard = async (label, fn) => {
    try {
      return await fn();
    } catch (e) {
      meta.errors.push(`${label}: ${e?.message ?? e}`);
      log(`  ${label} FAILED: ${e?.stack ?? e}`);
      return undefined;
    }
  };
  for (const scenario of config.scenarios) {
    log(`scenario ${scenario}`);
    results[scenario] = {};
    for (const p of config.peers) {
      switch (scenario) {
        case 'A':
          results.A[p] = {};
          for (const mode of config.readModes)
            results.A[p][mode] = await guard(`A ${p} ${mode}`, () => scenarioA(p, mode));
          break;
        case 'B':
          results.B[p] = [];
          for (const n of config.idleClients) {
            const r = await guard(`B ${p} ${n}`, () => scenarioB(p, n));
            if (r) results.B[p].push(r);
          }
          break;
        case 'C':
          results.C[p] = await guard(`C ${p}`, () => scenarioC(p));
          break;
        case 'D':
          results.D[p] = await guard(`D ${p}`, () => scenarioD(p));
          break;
        case 'E':
        case 'T':
          break; // their own lists of runs, below
        default:
          throw new Error(`unknown scenario '${scenario}'`);
      }
    }
  }
  if (results.E) {
    results.E = { runs: {}, idle: {} };
    for (const r of config.compressedRuns) {
      const got = await guard(`E ${runKey(r)}`, () => scenarioE(r.peer, r.deflate));
      if (got) results.E.runs[runKey(r)] = got;
    }
    if (config.peers.includes('citypulse') || config.compressedRuns.some((r) => r.peer === 'citypulse'))
      for (const deflate of [false, true]) {
        const got = await guard(`E idle ${deflate}`, () =>
          scenarioB('citypulse', config.idleClients[0], deflate),
        );
        if (got) results.E.idle[deflate ? 'deflate' : 'plain'] = got;
      }
  }
  if (results.T) {
    // The machine's load before and after (a shared machine: what `uptime` says), for the report.
    results.T = { runs: {}, machine: meta.machine, loadBefore: loadavg() };
    for (const r of config.transitRuns) {
      const got = await guard(`T ${runKey(r)}`, () => scenarioT(r.peer, r.deflate));
      if (got) results.T.runs[runKey(r)] = got;
    }
    results.T.loadAfter = loadavg();
  }
  const md = render(results, meta);
  const day = date.slice(0, 10);
  const outFile = flags.out ?? join(here, 'results', `${day}${quick ? '-quick' : ''}.md`);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${md}\n`);
  writeFileSync(outFile.replace(/\.md$/, '.json'), `${JSON.stringify({ meta, config, results }, null, 2)}\n`);
  if (flags['update-docs']) updateDocs(md, results);
  if (results.E) writeCharts(results.E, meta, flags['update-docs'] ? join(root, 'docs') : dirname(outFile));
  console.log(md);
  log(`written ${outFile}`);
}

/** Writes scenario E's SVG charts into `dir`. */
function writeCharts(E, meta, dir) {
  for (const [name, svg] of Object.entries(compressedCharts(E, meta))) {
    writeFileSync(join(dir, name), `${svg}\n`);
    log(`chart ${join(dir, name)}`);
  }
}

/**
 * Replaces the text between the bench markers of docs/performance.md: `bench:begin/end` with the scenarios A-D of
 * this run (when it ran any), `bench-e:begin/end` with scenario E and `bench-t:begin/end` with scenario T (when
 * they ran).
 */
function updateDocs(md, results) {
  const file = join(root, 'docs', 'performance.md');
  if (!existsSync(file)) return;
  let text = readFileSync(file, 'utf8');
  const replace = (name, body) => {
    const begin = `<!-- ${name}:begin -->`;
    const end = `<!-- ${name}:end -->`;
    const a = text.indexOf(begin);
    const b = text.indexOf(end);
    if (a < 0 || b < a) return;
    text = `${text.slice(0, a + begin.length)}\n${body}\n${text.slice(b)}`;
  };
  const demote = (body) =>
    body.replace(/^## /gm, '### ').replace(/^### (?=Read mode|Peak|Targets)/gm, '#### ');
  if (['A', 'B', 'C', 'D'].some((k) => results[k] !== undefined)) {
    const main = md.split(/\n## [ET]\. /)[0] ?? md;
    replace('bench', demote(main.replace(/^# citypulse benchmark — (.*)\n/, 'Run of $1.\n')));
  }
  if (results.E !== undefined) {
    const date = /^# citypulse benchmark — (.*)$/m.exec(md)?.[1] ?? '';
    replace('bench-e', demote(`Run of ${date}.\n\n${renderE(results.E)}`));
  }
  if (results.T !== undefined) {
    const date = /^# citypulse benchmark — (.*)$/m.exec(md)?.[1] ?? '';
    replace(
      'bench-t',
      demote(`Run of ${date}.\n\n${renderT(results.T)}`).replace(/^### (?=citypulse ÷)/m, '#### '),
    );
  }
  writeFileSync(file, text);
}

const hardStop = setTimeout(() => {
  log('hard time limit reached; stopping');
  process.exit(2);
}, 60 * 60_000);
hardStop.unref();

main()
  .then(() => process.exit(0))
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
