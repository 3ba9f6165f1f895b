#!/usr/bin/env node
/**
 * Soak test (not part of CI): a citypulse server in a child process, and in this process up to `--clients`
 * WebSocket clients churning connect / subscribe / unsubscribe / disconnect for `--minutes`, with faults injected
 * (abrupt terminates, garbage frames, paused readers, oversize frames) while the simulator and an ingest loop
 * publish UPDATEs throughout. The server's RSS, heap, active handles and connection count are printed at start,
 * every `--report` seconds, and at the end after every client left (and a GC). Exits by itself; exit code 0 when
 * the server ended with no connection and as many active handles as it started with, 1 otherwise.
 *
 *   node scripts/soak.mjs [--minutes 2] [--clients 1000] [--report 15] [--dist] [--seed 1]
 *
 * `--dist` runs the built server (`npm run build` first); by default the TypeScript sources run through tsx.
 *
 * @module
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const SELF = fileURLToPath(import.meta.url);
const TOPICS = ['cameras', 'weather', 'accidents', 'airQuality'];
const MAX_PAYLOAD = 64 * 1024;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    clients: { type: 'string', default: '1000' },
    report: { type: 'string', default: '15' },
    seed: { type: 'string', default: '1' },
    dist: { type: 'boolean', default: false },
    server: { type: 'boolean', default: false },
  },
});

if (values.server) await runServer(values.dist);
else await runSoak();

// ---------------------------------------------------------------------------------------------------------------
// The server side (child process): serves, publishes, and answers `stats` over IPC.
// ---------------------------------------------------------------------------------------------------------------

/** @param {boolean} useDist */
async function runServer(useDist) {
  const modulePath = useDist ? '../dist/app/create-server.js' : '../src/app/create-server.ts';
  /** @type {typeof import('../src/app/create-server.ts')} */
  const { createServer } = await import(modulePath);
  const server = await createServer({
    port: 0,
    source: 'simulator',
    simulatorIntervalMs: 500,
    maxConnections: 100_000,
    maxConnectionsPerIp: 100_000,
    maxPayloadBytes: MAX_PAYLOAD,
    heartbeatIntervalMs: 2000,
    heartbeatTimeoutMs: 5000,
    drainMs: 0,
  });
  // Extra UPDATEs on `accidents`, a bounded set of entities, on top of the simulator.
  let version = 0;
  const ingest = setInterval(() => {
    for (let i = 0; i < 2; i++) {
      version++;
      const id = version % 200;
      server.aggregator.ingest('accidents', [
        {
          id: `soak-${id}`,
          location: { lat: 52.3 + id / 1000, lon: 4.9 },
          severity: (version % 5) + 1,
          description: `soak incident ${id} v${version}`.padEnd(400, '.'),
          kind: 'collision',
          reportedAt: '2026-11-26T08:00:00.000Z',
          updatedAt: new Date().toISOString(),
        },
      ]);
    }
  }, 100);

  let lastElu = performance.eventLoopUtilization();
  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  /** @param {{ gc?: boolean }} request */
  const stats = async (request) => {
    // Event-loop utilisation and CPU share since the previous report: a server that is busy (elu near 1) but gets
    // little CPU is starved by the machine, not slow by itself.
    const elu = performance.eventLoopUtilization(lastElu).utilization;
    const cpu = process.cpuUsage(lastCpu);
    const cpuShare = (cpu.user + cpu.system) / 1000 / Math.max(1, performance.now() - lastAt);
    lastElu = performance.eventLoopUtilization();
    lastCpu = process.cpuUsage();
    lastAt = performance.now();
    if (request.gc === true && typeof globalThis.gc === 'function') {
      for (let i = 0; i < 3; i++) {
        globalThis.gc();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const memory = process.memoryUsage();
    const counters = server.service.counters();
    return {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      handles: process.getActiveResourcesInfo().length,
      resources: countBy(process.getActiveResourcesInfo()),
      connections: server.service.getClientCount(),
      subscriptions: TOPICS.reduce((n, t) => n + server.service.getTopicSubscribers(t), 0),
      queuedBytes: counters.queuedBytes,
      connectionsTotal: counters.connectionsTotal,
      framesIn: counters.framesIn,
      framesOut: counters.framesOut,
      errors: counters.errors,
      heartbeatTerminations: counters.heartbeatTerminations,
      conflatedFrames: counters.conflatedFrames,
      slowConsumerCloses: counters.slowConsumerCloses,
      elu,
      cpuShare,
    };
  };

  process.on('message', (message) => {
    const request = /** @type {{ id: number, type: string, gc?: boolean }} */ (message);
    if (request.type === 'stats') {
      void stats(request).then((data) => process.send?.({ id: request.id, data }));
    } else if (request.type === 'stop') {
      clearInterval(ingest);
      void server.close().then(() => {
        process.send?.({ id: request.id, data: { stopped: true } });
        process.disconnect();
      });
    }
  });
  // Take the idle baseline only once the server has settled (first simulator ticks done).
  await new Promise((resolve) => setTimeout(resolve, 500));
  process.send?.({ id: 0, data: { wsUrl: server.wsUrl } });
}

/** @param {string[]} items */
function countBy(items) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const item of items) out[item] = (out[item] ?? 0) + 1;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The client side (this process): churn and faults.
// ---------------------------------------------------------------------------------------------------------------

/** A small deterministic PRNG (mulberry32) so a run can be repeated. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function runSoak() {
  const minutes = Number(values.minutes);
  const target = Number(values.clients);
  const reportEveryMs = Number(values.report) * 1000;
  if (!(minutes > 0) || !(target > 0) || !(reportEveryMs > 0)) {
    process.stderr.write(
      'usage: node scripts/soak.mjs [--minutes 2] [--clients 1000] [--report 15] [--dist]\n',
    );
    process.exit(2);
  }
  const random = prng(Number(values.seed));
  const pick = (/** @type {readonly any[]} */ list) => list[Math.floor(random() * list.length)];
  const between = (/** @type {number} */ lo, /** @type {number} */ hi) => lo + random() * (hi - lo);

  // Hard bound on the whole run, whatever happens.
  const hardLimitMs = minutes * 60_000 + 120_000;
  const hardLimit = setTimeout(() => {
    process.stderr.write(`soak: hard time limit (${hardLimitMs} ms) reached, aborting\n`);
    child.kill('SIGKILL');
    process.exit(1);
  }, hardLimitMs);
  hardLimit.unref();

  const child = fork(SELF, ['--server', ...(values.dist ? ['--dist'] : [])], {
    execArgv: [...(values.dist ? [] : ['--import', 'tsx']), '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  /** @type {Map<number, (data: any) => void>} */
  const pending = new Map();
  let nextId = 1;
  child.on('message', (message) => {
    const { id, data } = /** @type {{ id: number, data: any }} */ (message);
    pending.get(id)?.(data);
    pending.delete(id);
  });
  child.on('exit', (code, signal) => {
    if (!finished) {
      process.stderr.write(`soak: server exited early (${code ?? signal})\n`);
      process.exit(1);
    }
  });
  /** @returns {Promise<any>} */
  const ask = (/** @type {object} */ request, ms = 20_000) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`server did not answer ${JSON.stringify(request)} within ${ms} ms`));
      }, ms);
      pending.set(id, (data) => {
        clearTimeout(timer);
        resolve(data);
      });
      child.send({ id, ...request });
    });
  let finished = false;
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start within 30 s')), 30_000);
    pending.set(0, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
  const wsUrl = /** @type {string} */ (ready.wsUrl);

  const counts = {
    opened: 0,
    refused: 0,
    closedNormal: 0,
    terminated: 0,
    garbage: 0,
    paused: 0,
    oversize: 0,
    closeCodes: /** @type {Record<string, number>} */ ({}),
    messages: 0,
    backoffs: 0,
    errors: /** @type {Record<string, number>} */ ({}),
  };
  /** @type {Set<WebSocket>} */
  const live = new Set();
  /** @type {Set<NodeJS.Timeout>} */
  const timers = new Set();
  let churning = true;

  /** A timer tracked so the end of the run can clear every one. */
  const later = (/** @type {() => void} */ fn, /** @type {number} */ ms) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
    return timer;
  };

  let lastClientElu = performance.eventLoopUtilization();
  const formatStats = (/** @type {string} */ label, /** @type {any} */ s) => {
    const mb = (/** @type {number} */ n) => `${(n / 1048576).toFixed(1)} MiB`;
    const local = process.memoryUsage();
    const clientElu = performance.eventLoopUtilization(lastClientElu).utilization;
    lastClientElu = performance.eventLoopUtilization();
    return (
      `[${label.padEnd(7)}] server rss ${mb(s.rss)} heap ${mb(s.heapUsed)}/${mb(s.heapTotal)} ` +
      `ext ${mb(s.external)} handles ${s.handles} conns ${s.connections} subs ${s.subscriptions} ` +
      `queued ${s.queuedBytes} B | total conns ${s.connectionsTotal} in ${s.framesIn} out ${s.framesOut} ` +
      `hb-kills ${s.heartbeatTerminations} conflated ${s.conflatedFrames} slow-closes ${s.slowConsumerCloses} ` +
      `elu ${s.elu.toFixed(2)} cpu ${(s.cpuShare * 100).toFixed(0)}% ` +
      `| clients open ${openCount()} connecting ${live.size - openCount()} opened ${counts.opened} | client rss ${mb(local.rss)} ` +
      `handles ${process.getActiveResourcesInfo().length} elu ${clientElu.toFixed(2)}`
    );
  };

  const openCount = () => {
    let n = 0;
    for (const ws of live) if (ws.readyState === WebSocket.OPEN) n++;
    return n;
  };

  /**
   * One client's life: connect, a few subscribe/unsubscribe rounds, then an end picked at random; then the slot's
   * next client. A handshake that fails (timeout, refusal) makes the slot back off like the SDK does (full jitter,
   * doubling up to 30 s), so a server that falls behind is not stormed by instant retries.
   * @param {{ failures: number }} slot
   */
  const startClient = (slot) => {
    if (!churning) return;
    let opened = false;
    const initial = TOPICS.filter(() => random() < 0.4);
    const url = initial.length > 0 && random() < 0.6 ? `${wsUrl}?topics=${initial.join(',')}` : wsUrl;
    const ws = new WebSocket(url, { handshakeTimeout: 10_000 });
    live.add(ws);
    /** @type {NodeJS.Timeout | undefined} */
    let lifeTimer;
    ws.on('error', (error) => {
      const cause = /** @type {NodeJS.ErrnoException} */ (error).code ?? error.message.slice(0, 48);
      const key = `${churning ? 'during run' : 'wind-down'}: ${cause}`;
      counts.errors[key] = (counts.errors[key] ?? 0) + 1;
    });
    ws.on('unexpected-response', (_req, res) => {
      counts.refused++;
      res.resume();
      ws.terminate();
    });
    ws.on('message', () => counts.messages++);
    ws.once('close', (code) => {
      counts.closeCodes[code] = (counts.closeCodes[code] ?? 0) + 1;
      live.delete(ws);
      if (lifeTimer !== undefined) {
        clearTimeout(lifeTimer);
        timers.delete(lifeTimer);
      }
      if (!opened) {
        slot.failures++;
        counts.backoffs++;
      }
      // Keep the population near the target: the slot's next client after a little jitter, or a backoff.
      const delay = opened ? between(0, 200) : between(0, Math.min(30_000, 500 * 2 ** slot.failures));
      if (churning) later(() => startClient(slot), delay);
    });
    ws.once('open', () => {
      opened = true;
      slot.failures = 0;
      counts.opened++;
      const rounds = Math.floor(between(0, 4));
      let round = 0;
      const step = () => {
        if (ws.readyState !== WebSocket.OPEN) return;
        if (round < rounds) {
          round++;
          const topics = TOPICS.filter(() => random() < 0.5);
          if (topics.length > 0)
            ws.send(JSON.stringify({ type: random() < 0.6 ? 'subscribe' : 'unsubscribe', topics }));
          if (random() < 0.3) ws.send(JSON.stringify({ type: 'ping', id: round }));
          lifeTimer = later(step, between(1000, 8000));
          return;
        }
        finish();
      };
      lifeTimer = later(step, between(500, 5000));
    });

    const finish = () => {
      const roll = random();
      if (roll < 0.55) {
        counts.closedNormal++;
        ws.close(1000, 'bye');
        // A peer that never answers the close is dropped.
        later(() => ws.terminate(), 5000);
      } else if (roll < 0.7) {
        counts.terminated++;
        ws.terminate();
      } else if (roll < 0.82) {
        counts.garbage++;
        const junk = [
          '{',
          'null',
          '[]',
          '{"type":42}',
          '{"type":"subscribe","topics":"weather"}',
          '{"type":"nope"}',
          '{"type":"subscribe","topics":["no-such-topic"]}',
          '{"type":"resume","topics":{"weather":{"epoch":"","seq":-1}}}',
          '{"type":"refresh","token":"x"}',
          '\u0000\u0001',
        ];
        const n = Math.floor(between(3, 60));
        for (let i = 0; i < n && ws.readyState === WebSocket.OPEN; i++) {
          if (random() < 0.1) ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
          else ws.send(pick(junk));
        }
        later(() => (random() < 0.5 ? ws.terminate() : ws.close(1000)), between(100, 1500));
        later(() => ws.terminate(), 6000);
      } else if (roll < 0.94) {
        counts.paused++;
        ws.pause();
        // Some pauses outlast the server's heartbeat timeout (5 s) and get the client terminated there.
        later(
          () => {
            ws.resume();
            ws.terminate();
          },
          between(1000, 8000),
        );
      } else {
        counts.oversize++;
        ws.send('x'.repeat(MAX_PAYLOAD + 1024 + Math.floor(random() * 65536)));
        later(() => ws.terminate(), 5000); // the server closes it with 1009 first
      }
    };
  };

  const start = await ask({ type: 'stats', gc: true });
  process.stdout.write(
    `soak: ${target} clients, ${minutes} min, server ${values.dist ? 'dist' : 'src (tsx)'}, ${wsUrl}\n`,
  );
  process.stdout.write(`${formatStats('start', start)}\n`);
  const startedAt = Date.now();

  // Ramp up over about 10 s.
  for (let i = 0; i < target; i++) later(() => startClient({ failures: 0 }), (i / target) * 10_000);

  const report = setInterval(() => {
    const elapsed = Math.round((Date.now() - startedAt) / 1000);
    ask({ type: 'stats', gc: true }).then(
      (s) => process.stdout.write(`${formatStats(`${elapsed}s`, s)}\n`),
      (error) => process.stderr.write(`soak: ${error.message}\n`),
    );
  }, reportEveryMs);

  await new Promise((resolve) => setTimeout(resolve, minutes * 60_000));
  clearInterval(report);

  // Wind down: no new clients, every client leaves (close, then terminate stragglers).
  churning = false;
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  for (const ws of live) {
    if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'soak over');
    else ws.terminate();
  }
  const leaveDeadline = Date.now() + 10_000;
  while (live.size > 0 && Date.now() < leaveDeadline)
    await new Promise((resolve) => setTimeout(resolve, 100));
  for (const ws of live) ws.terminate();

  // Wait until the server saw every client go (bounded), then let it settle and collect garbage.
  let end = await ask({ type: 'stats' });
  const serverDeadline = Date.now() + 20_000;
  while (end.connections > 0 && Date.now() < serverDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    end = await ask({ type: 'stats' });
  }
  // Sockets the server has not yet read the end of (a backlog of abandoned handshakes) still count as handles: poll,
  // bounded, until the count is back where it started.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  end = await ask({ type: 'stats', gc: true });
  const settleDeadline = Date.now() + 30_000;
  while (end.handles > start.handles && Date.now() < settleDeadline) {
    process.stdout.write(`${formatStats('settle', end)} ${JSON.stringify(end.resources)}\n`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    end = await ask({ type: 'stats', gc: true });
  }
  process.stdout.write(`${formatStats('end', end)}\n`);
  process.stdout.write(
    `clients: opened ${counts.opened}, refused ${counts.refused}, frames received ${counts.messages}; ends: ` +
      `normal ${counts.closedNormal}, terminate ${counts.terminated}, garbage ${counts.garbage}, ` +
      `paused ${counts.paused}, oversize ${counts.oversize}\n` +
      `close codes seen by clients: ${JSON.stringify(counts.closeCodes)}\n` +
      `client errors: ${JSON.stringify(counts.errors)}\n` +
      `server resources start: ${JSON.stringify(start.resources)}\n` +
      `server resources end:   ${JSON.stringify(end.resources)}\n` +
      `delta end-start: rss ${signedMiB(end.rss - start.rss)}, heapUsed ${signedMiB(end.heapUsed - start.heapUsed)}, ` +
      `handles ${end.handles - start.handles}, connections ${end.connections}, queued ${end.queuedBytes} B\n`,
  );

  const flat = end.connections === 0 && end.handles <= start.handles && end.queuedBytes === 0;
  finished = true;
  await ask({ type: 'stop' }).catch(() => {});
  if (child.exitCode === null) {
    const exited = once(child, 'exit');
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(kill);
  }
  clearTimeout(hardLimit);
  process.stdout.write(flat ? 'soak: OK (no connection, no handle left over)\n' : 'soak: NOT FLAT\n');
  process.exitCode = flat ? 0 : 1;
}

/** @param {number} bytes */
function signedMiB(bytes) {
  return `${bytes >= 0 ? '+' : ''}${(bytes / 1048576).toFixed(1)} MiB`;
}
