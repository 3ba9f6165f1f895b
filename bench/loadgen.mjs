// The load generator: one process (pinned by bench/run.mjs to its own core) that opens the benchmark's clients and
// reports to the driver over IPC. Counting clients only count frames; a few probe clients parse every frame and
// measure end-to-end latency from the publish time in the payload (`data._t`, CLOCK_MONOTONIC microseconds, the
// same clock as the server process) and check that `seq` grows by one per topic.
//
// Commands (IPC, each answered with { reply: id, ... }):
//   connect { url, kind: 'ws'|'lite'|'sio', n, probes, subs: 'single:<topic>'|'mixed', topics, concurrency,
//             timeoutMs, readMode: 'immediate'|'batch', batchPauseMs, batchRunMs }
//   reset                      zero the counters (start of a measuring window)
//   report                     counters of the window
//   close                      close every client
//   exit
// The process exits by itself when the IPC channel closes or after BENCH_MAX_LIFETIME_MS.

import { hrtime } from 'node:process';
import { WebSocket } from 'ws';
import { io as ioClient } from 'socket.io-client';
import { LiteClient, wire } from './lib/lite-client.mjs';
import { summarize } from './lib/stats.mjs';

const MAX_SAMPLES = 400_000;
const nowMicros = () => Number(hrtime.bigint() / 1000n);

/**
 * @typedef {{ close: () => void, pause: () => void, resume: () => void, topics: string[] }} Client
 */

/** @type {Client[]} */
let clients = [];
let frames = 0;
let closedDuringRun = 0;
let samples = new Float64Array(1024);
let sampleCount = 0;
let seqGaps = 0;
let seqDisorder = 0;
let probeFrames = 0;
/** Frames counted by lite clients (whose bytes `wire.bytes` counts). */
let liteFrames = 0;
/** @type {Map<string, number>[]} */
let probeSeqs = [];
let batchTimer = /** @type {NodeJS.Timeout | null} */ (null);

function record(latencyMicros) {
  if (sampleCount >= MAX_SAMPLES) return;
  if (sampleCount === samples.length) {
    const grown = new Float64Array(Math.min(MAX_SAMPLES, samples.length * 2));
    grown.set(samples);
    samples = grown;
  }
  samples[sampleCount] = latencyMicros;
  sampleCount += 1;
}

/** @param {unknown} msg @param {Map<string, number>} seqs */
function probe(msg, seqs) {
  probeFrames += 1;
  if (msg === null || typeof msg !== 'object') return;
  const m =
    /** @type {{ type?: string, topic?: string, seq?: number, data?: { _t?: number, upserts?: { _t?: number, observedAt?: string }[] } }} */ (
      msg
    );
  if (m.type !== 'UPDATE' && m.type !== 'ALERT') return;
  // Padded messages carry `_t` in `data`; city-shaped changes on their first entity.
  const t = m.data?._t ?? m.data?.upserts?.[0]?._t;
  if (typeof t === 'number') record(nowMicros() - t);
  else {
    // A producer that does not stamp `_t` (the simulator of scenario T): its entity's observedAt, on the wall clock.
    const observed = Date.parse(m.data?.upserts?.[0]?.observedAt ?? '');
    if (Number.isFinite(observed)) record((Date.now() - observed) * 1000);
  }
  if (typeof m.topic === 'string' && typeof m.seq === 'number') {
    const last = seqs.get(m.topic);
    if (last !== undefined) {
      if (m.seq <= last) seqDisorder += 1;
      else if (m.seq !== last + 1) seqGaps += 1;
    }
    seqs.set(m.topic, m.seq);
  }
}

/** Topics of client `i`: one topic, or for 'mixed' 1-4 of the topics, deterministic and balanced. */
function topicsFor(spec, all, i) {
  if (spec.startsWith('single:')) return [spec.slice(7)];
  const k = 1 + (((i * 2654435761) >>> 0) % all.length);
  const out = [];
  for (let j = 0; j < k; j += 1) out.push(all[(i + j) % all.length]);
  return out;
}

/**
 * Opens one client; resolves with the time from start to its second frame (the snapshot) or rejects.
 * @returns {Promise<{ client: Client, micros: number }>}
 */
function openClient(opts, index, isProbe) {
  const topics = topicsFor(opts.subs, opts.topics, index);
  const start = nowMicros();
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => fail(new Error('connect timeout')), opts.timeoutMs);
    const fail = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        client?.close();
      } catch {
        /* already closed */
      }
      reject(err);
    };
    const ready = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ client, micros: nowMicros() - start });
    };
    const onClose = () => {
      if (done) closedDuringRun += 1;
      else fail(new Error('closed before snapshot'));
    };
    /** @type {Client | undefined} */
    let client;
    if (opts.kind === 'sio' && (isProbe || opts.sioClient !== 'lite')) {
      const socket = ioClient(opts.url, {
        transports: ['websocket'],
        query: { topics: topics.join(',') },
        reconnection: false,
        forceNew: true,
        timeout: opts.timeoutMs,
      });
      const raw = () => socket.io.engine?.transport?.ws?._socket;
      client = {
        topics,
        close: () => socket.close(),
        pause: () => raw()?.pause(),
        resume: () => raw()?.resume(),
      };
      if (isProbe) {
        const seqs = new Map();
        probeSeqs.push(seqs);
        socket.on('message', (m) => {
          frames += 1;
          probe(m, seqs);
        });
      } else socket.on('message', () => (frames += 1));
      socket.once('snapshot', ready);
      socket.on('connect_error', (e) => fail(e));
      socket.on('disconnect', onClose);
      return;
    }
    const sio = opts.kind === 'sio';
    const url = sio
      ? `${opts.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket&topics=${encodeURIComponent(topics.join(','))}`
      : `${opts.url}?topics=${encodeURIComponent(topics.join(','))}`;
    let seen = 0;
    // The snapshot is the second frame (CONNECTED, SNAPSHOT); on Socket.IO the third (open, connect ack, snapshot).
    const snapshotFrame = sio ? 3 : 2;
    if ((opts.kind === 'lite' || sio) && !isProbe) {
      const lite = new LiteClient(
        new URL(url),
        {
          onOpen: () => {},
          onMessage: () => {
            frames += 1;
            liteFrames += 1;
            seen += 1;
            if (seen === snapshotFrame) ready();
          },
          onClose,
        },
        { engineIo: sio, deflate: opts.deflate === true },
      );
      client = {
        topics,
        close: () => lite.close(),
        pause: () => lite.socket.pause(),
        resume: () => lite.socket.resume(),
      };
      return;
    }
    // `perMessageDeflate: true` makes ws offer exactly what Chrome offers (permessage-deflate; client_max_window_bits).
    const ws = new WebSocket(url, { perMessageDeflate: opts.deflate === true, skipUTF8Validation: !isProbe });
    client = {
      topics,
      close: () => ws.terminate(),
      pause: () => ws._socket?.pause(),
      resume: () => ws._socket?.resume(),
    };
    const seqs = new Map();
    if (isProbe) probeSeqs.push(seqs);
    ws.on('message', (data) => {
      frames += 1;
      seen += 1;
      if (seen === 2) ready();
      if (isProbe) {
        let parsed;
        try {
          parsed = JSON.parse(String(data));
        } catch {
          return;
        }
        probe(parsed, seqs);
      }
    });
    ws.on('error', (e) => fail(e));
    ws.on('close', onClose);
  });
}

async function connectAll(opts) {
  const started = nowMicros();
  const latencies = [];
  let failed = 0;
  let next = 0;
  const firstError = [];
  const deadline = Date.now() + opts.totalTimeoutMs;
  const worker = async () => {
    while (next < opts.n && Date.now() < deadline) {
      const i = next;
      next += 1;
      try {
        // Probes are spread across the population so they do not all sit at the head of the topic's set.
        const isProbe =
          opts.probes > 0 &&
          i % Math.floor(opts.n / opts.probes) === 0 &&
          i / Math.floor(opts.n / opts.probes) < opts.probes;
        const { client, micros } = await openClient(opts, i, isProbe);
        clients.push(client);
        latencies.push(micros);
      } catch (e) {
        failed += 1;
        if (firstError.length === 0) firstError.push(String(e?.message ?? e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.n) }, worker));
  const elapsedMs = (nowMicros() - started) / 1000;
  const subscribers = {};
  for (const c of clients) for (const t of c.topics) subscribers[t] = (subscribers[t] ?? 0) + 1;
  if (opts.readMode === 'batch') startBatching(opts.batchPauseMs, opts.batchRunMs);
  return {
    connected: clients.length,
    failed,
    error: firstError[0] ?? null,
    elapsedMs,
    perSecond: (clients.length / elapsedMs) * 1000,
    latency: summarize(Float64Array.from(latencies), latencies.length),
    subscribers,
  };
}

/** Batch read mode: every client's socket is paused for `pauseMs`, then read for `runMs`, in a loop. */
function startBatching(pauseMs, runMs) {
  stopBatching();
  const pauseAll = () => {
    for (const c of clients) c.pause();
    batchTimer = setTimeout(resumeAll, pauseMs);
  };
  const resumeAll = () => {
    for (const c of clients) c.resume();
    batchTimer = setTimeout(pauseAll, runMs);
  };
  pauseAll();
}

function stopBatching() {
  if (batchTimer !== null) clearTimeout(batchTimer);
  batchTimer = null;
  for (const c of clients) c.resume();
}

function closeAll() {
  stopBatching();
  for (const c of clients) {
    try {
      c.close();
    } catch {
      /* ignore */
    }
  }
  clients = [];
  probeSeqs = [];
}

const lifetime = setTimeout(() => process.exit(3), Number(process.env.BENCH_MAX_LIFETIME_MS ?? 30 * 60_000));
lifetime.unref();
process.on('disconnect', () => process.exit(0));
process.on('message', async (msg) => {
  switch (msg.cmd) {
    case 'connect': {
      const result = await connectAll(msg.opts);
      process.send({ reply: msg.id, ...result });
      break;
    }
    case 'reset':
      frames = 0;
      closedDuringRun = 0;
      sampleCount = 0;
      seqGaps = 0;
      seqDisorder = 0;
      probeFrames = 0;
      liteFrames = 0;
      wire.bytes = 0;
      process.send({ reply: msg.id });
      break;
    case 'report':
      process.send({
        reply: msg.id,
        frames,
        probeFrames,
        closed: closedDuringRun,
        latency: summarize(samples, sampleCount),
        seqGaps,
        seqDisorder,
        open: clients.length,
        wireBytes: wire.bytes,
        liteFrames,
      });
      break;
    case 'close':
      closeAll();
      process.send({ reply: msg.id });
      break;
    case 'exit':
      closeAll();
      setTimeout(() => process.exit(0), 200);
      break;
    default:
      break;
  }
});
process.send({ ready: true, pid: process.pid });
