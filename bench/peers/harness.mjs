// Shared process harness for every peer server of the benchmark.
//
// A peer module calls `runPeer(start)` where `start({ port, topics })` listens and resolves to an adapter
// `{ port, publish(topic, message), clientCount(), close() }`. The harness owns everything that must be identical
// across peers: the in-process publisher (a timer driven by IPC messages from bench/run.mjs, so no HTTP path is
// measured), the message factory (payload carries the publish time on the machine's monotonic clock) and the
// statistics the driver asks for. Every peer process exits by itself: on 'exit' from the driver, when the IPC
// channel closes, or after `BENCH_MAX_LIFETIME_MS` (default 30 min).

import { hrtime, memoryUsage } from 'node:process';
import { URLSearchParams } from 'node:url';

/** Microseconds on CLOCK_MONOTONIC: the same clock in every process of this machine. */
export function nowMicros() {
  return Number(hrtime.bigint() / 1000n);
}

const PUBLISH_TICK_MS = 1;
/**
 * Catch-up bound: one tick publishes at most this much of a second's worth of messages. When the server's event
 * loop is slower than the rate, the rest is skipped (counted in `lagTicks`); the driver charges skipped messages
 * as undelivered because it compares deliveries with the target rate.
 */
const MAX_CATCH_UP_SECONDS = 0.1;

/**
 * @typedef {{ name: string, weight: number, size: number, kind: 'pad' | 'city' | 'transit', fleet?: number }} TopicPlan
 * @typedef {{ type: 'UPDATE', topic: string, data: Record<string, unknown>, timestamp: string }} BenchMessage
 */

const CITY_SAMPLES = {
  cameras: (i) => ({
    id: `cam-${(i % 500).toString().padStart(4, '0')}`,
    updatedAt: new Date().toISOString(),
    source: 'simulator',
    name: `Camera ${i % 500} - Main St & ${(i % 90) + 1}th Ave`,
    location: { lat: 40.7128 + (i % 100) / 1000, lon: -74.006 - (i % 100) / 1000 },
    status: i % 17 === 0 ? 'offline' : 'online',
    imageUrl: `https://cams.example.city/images/cam-${i % 500}/latest.jpg`,
    area: 'Downtown',
  }),
  weather: (i) => ({
    id: `wx-${i % 40}`,
    updatedAt: new Date().toISOString(),
    source: 'open-meteo',
    name: `Station ${i % 40} Riverside Park`,
    location: { lat: 40.75 + (i % 40) / 100, lon: -73.98 },
    temperatureC: 12.4 + (i % 10) / 10,
    humidityPct: 61,
    windSpeedKmh: 14.2,
    windDirectionDeg: 230,
    precipitationMm: 0.2,
    condition: 'light rain',
    weatherCode: 61,
  }),
  accidents: (i) => ({
    id: `acc-${i}`,
    updatedAt: new Date().toISOString(),
    source: 'ingest',
    location: { lat: 40.73 + (i % 50) / 1000, lon: -73.99 + (i % 50) / 1000 },
    severity: (i % 5) + 1,
    description: 'Two-vehicle collision blocking the right lane; emergency services on scene, expect delays.',
    kind: 'collision',
    roadName: 'FDR Drive northbound near exit 7',
    lanesBlocked: 1,
    reportedAt: new Date().toISOString(),
  }),
  airQuality: (i) => ({
    id: `aq-${i % 60}`,
    updatedAt: new Date().toISOString(),
    source: 'simulator',
    name: `AQ monitor ${i % 60}`,
    location: { lat: 40.7 + (i % 60) / 1000, lon: -74.0 },
    aqi: 51 + (i % 50), // 51..100: 'moderate' (the category must match the AQI)
    category: 'moderate',
    pm25: 12.1,
    pm10: 20.4,
    no2: 31.0,
    o3: 48.2,
  }),
};

/** Scenario T's lines: [route id, label], as the simulator's Amsterdam fleet (src/aggregator/cities.ts). */
const TRANSIT_ROUTES = [
  ['ams-tram-2', 'Tram 2 to Nieuw Sloten'],
  ['ams-tram-5', 'Tram 5 to Amstelveen Stadshart'],
  ['ams-tram-14', 'Tram 14 to Slotermeer'],
  ['ams-tram-26', 'Tram 26 to IJburg'],
  ['ams-bus-22', 'Bus 22 to Station Sloterdijk'],
  ['ams-bus-48', 'Bus 48 to Borneo-eiland'],
];
const round6 = (x) => Math.round(x * 1e6) / 1e6;

/**
 * Vehicle `v` of a transit fleet at its `round`-th report: the entity the simulator's transit fleet reports (same
 * fields, same id, route, trip and label formats, positions moving ~8 m per report around central Amsterdam).
 */
function transitVehicle(v, round, at) {
  const [routeId, label] = TRANSIT_ROUTES[v % TRANSIT_ROUTES.length];
  const number = String(v + 1).padStart(4, '0');
  const phase = v * 0.37 + round * 0.0004;
  return {
    id: `simulator-veh-${number}`,
    updatedAt: at,
    source: 'simulator',
    location: {
      lat: round6(52.3676 + 0.025 * Math.sin(phase)),
      lon: round6(4.9041 + 0.045 * Math.cos(phase)),
    },
    routeId,
    tripId: `${routeId}-${number}-${1 + Math.floor(round / 900)}`,
    label,
    bearing: Math.round(((((phase * 180) / Math.PI + 90) % 360) + 360) % 360) % 360,
    speed: Math.round(60 + ((v * 13 + round * 7) % 50)) / 10,
    observedAt: at,
    delaySec: ((v * 37 + round * 3) % 300) - 60,
  };
}

/**
 * Builds the message a publish carries. `pad` plans fill `data.pad` so that the JSON of the whole message
 * (as the careful peer sends it) is about `size` bytes; `city` plans carry realistic entity upserts (`size` of
 * them, or one when `size` is 0).
 * @param {TopicPlan} plan
 * @param {number} n running publish number
 * @returns {BenchMessage}
 */
export function makeMessage(plan, n) {
  const timestamp = new Date().toISOString();
  const t = nowMicros();
  if (plan.kind === 'transit') {
    // `size` vehicles of a fleet of `fleet`, the next ones in turn: at `fleet / size` publishes per second every
    // vehicle reports once a second. The probe's `_t`/`_n` ride on the first vehicle.
    const fleet = Math.max(1, plan.fleet ?? 1000);
    const first = ((n - 1) * plan.size) % fleet;
    const round = Math.floor(((n - 1) * plan.size) / fleet);
    return {
      type: 'UPDATE',
      topic: plan.name,
      data: {
        upserts: Array.from({ length: plan.size }, (_, k) => {
          const index = first + k;
          const vehicle = transitVehicle(index % fleet, round + Math.floor(index / fleet), timestamp);
          return k === 0 ? { ...vehicle, _t: t, _n: n } : vehicle;
        }),
        removes: [],
      },
      timestamp,
    };
  }
  if (plan.kind === 'city') {
    const sample = CITY_SAMPLES[/** @type {keyof typeof CITY_SAMPLES} */ (plan.name)] ?? CITY_SAMPLES.cameras;
    return {
      type: 'UPDATE',
      topic: plan.name,
      // `size` > 0: that many entities per UPDATE (the compressed scenario's city-shaped batches); else one.
      // A valid change by the state model (no keys beside upserts/removes): the probe's `_t`/`_n` ride on the
      // first entity (entities may carry extra fields).
      data: {
        upserts: (plan.size > 0
          ? Array.from({ length: plan.size }, (_, k) => sample(n * plan.size + k))
          : [sample(n)]
        ).map((entity, k) => (k === 0 ? { ...entity, _t: t, _n: n } : entity)),
        removes: [],
      },
      timestamp,
    };
  }
  const base = { type: 'UPDATE', topic: plan.name, data: { _t: t, _n: n, pad: '' }, timestamp };
  const without = JSON.stringify(base).length;
  base.data.pad = 'x'.repeat(Math.max(0, plan.size - without));
  return base;
}

/**
 * Runs a peer: parses `--port`, starts it, wires IPC.
 * @param {(opts: { port: number, topics: string[] }) => Promise<{ port: number, publish: (topic: string, msg: BenchMessage) => void, clientCount: () => number, close: () => Promise<void> }>} start
 */
export async function runPeer(start) {
  const portArg = process.argv.indexOf('--port');
  const port = portArg >= 0 ? Number(process.argv[portArg + 1]) : 0;
  const topics = (process.env.BENCH_TOPICS ?? 'cameras,weather,accidents,airQuality').split(',');
  const adapter = await start({ port, topics });

  let plans = /** @type {TopicPlan[]} */ ([]);
  let rate = 0;
  let timer = /** @type {NodeJS.Timeout | null} */ (null);
  let startedAt = 0;
  let due = 0;
  let published = 0;
  let lagTicks = 0;
  let counter = 0;
  const publishedByTopic = new Map();

  const pick = () => {
    // Deterministic weighted round robin: topic i gets weight_i of every sum(weights) messages.
    const total = plans.reduce((s, p) => s + p.weight, 0);
    let k = counter % total;
    for (const p of plans) {
      if (k < p.weight) return p;
      k -= p.weight;
    }
    return /** @type {TopicPlan} */ (plans[0]);
  };

  const tick = () => {
    const elapsedMs = Number(hrtime.bigint() / 1000n) / 1000 - startedAt;
    const target = Math.floor((elapsedMs * rate) / 1000);
    let n = target - due;
    const maxPerTick = Math.max(1, Math.ceil(rate * MAX_CATCH_UP_SECONDS));
    if (n > maxPerTick) {
      lagTicks += 1;
      due += n - maxPerTick; // skip what we cannot catch up with; never published
      n = maxPerTick;
    }
    for (let i = 0; i < n; i += 1) {
      const plan = pick();
      counter += 1;
      adapter.publish(plan.name, makeMessage(plan, counter));
      publishedByTopic.set(plan.name, (publishedByTopic.get(plan.name) ?? 0) + 1);
    }
    due += n;
    published += n;
  };

  const stopPublishing = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
  };

  let closed = false;
  const shutdown = async (code) => {
    if (closed) return;
    closed = true;
    stopPublishing();
    clearTimeout(lifetime);
    try {
      await adapter.close();
    } finally {
      process.exit(code);
    }
  };
  const lifetime = setTimeout(
    () => void shutdown(3),
    Number(process.env.BENCH_MAX_LIFETIME_MS ?? 30 * 60_000),
  );
  lifetime.unref();

  process.on('disconnect', () => void shutdown(0));
  process.on('message', (msg) => {
    switch (msg.cmd) {
      case 'publish': {
        stopPublishing();
        plans = msg.plans;
        rate = msg.rate;
        startedAt = Number(hrtime.bigint() / 1000n) / 1000;
        due = 0;
        if (rate > 0) timer = setInterval(tick, PUBLISH_TICK_MS);
        process.send({ reply: msg.id });
        break;
      }
      case 'stop':
        stopPublishing();
        process.send({ reply: msg.id });
        break;
      case 'stats': {
        if (msg.gc && typeof globalThis.gc === 'function') {
          globalThis.gc();
          globalThis.gc();
        }
        process.send({
          reply: msg.id,
          at: nowMicros(),
          published,
          publishedByTopic: Object.fromEntries(publishedByTopic),
          lagTicks,
          dropped: typeof adapter.dropped === 'function' ? adapter.dropped() : 0,
          clients: adapter.clientCount(),
          memory: memoryUsage(),
          // A peer whose own producer publishes (citypulse with BENCH_PRODUCER=simulator) counts it here.
          extra: typeof adapter.extraStats === 'function' ? adapter.extraStats() : null,
        });
        break;
      }
      case 'heap': {
        // A heap snapshot for bench/heap-per-connection.mjs (after two forced GCs when --expose-gc).
        if (typeof globalThis.gc === 'function') {
          globalThis.gc();
          globalThis.gc();
        }
        void import('node:v8').then((v8) =>
          process.send({ reply: msg.id, file: v8.writeHeapSnapshot(msg.path) }),
        );
        break;
      }
      case 'exit':
        void shutdown(0);
        break;
      default:
        break;
    }
  });
  process.send({ ready: true, port: adapter.port, pid: process.pid });
}

/**
 * Topics a connecting client asks for, from `?topics=a,b` on the upgrade URL.
 * @param {string | undefined} url
 */
export function topicsFromUrl(url) {
  const q = (url ?? '').indexOf('?');
  if (q < 0) return [];
  const value = new URLSearchParams(url.slice(q + 1)).get('topics');
  return value ? value.split(',').filter((t) => t.length > 0) : [];
}
