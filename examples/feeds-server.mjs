#!/usr/bin/env node
// The example feeds for `examples/city.json`: a tiny static HTTP server for the bundled files in
// examples/feeds/ (with ETag, so pollers get 304s), plus an MQTT publisher of air-quality readings for a few
// Amsterdam stations, so the example mixes the simulator, an HTTP feed and MQTT. For `examples/transit.json` it
// also serves live fixtures (examples/feeds-live.mjs): a GTFS-Realtime VehiclePositions feed at
// /gtfs-rt/vehicles.pb whose trams move on every request, and GBFS trees at /gbfs/2.3/gbfs.json and
// /gbfs/3.0/gbfs.json whose availability changes; it prints the environment lines to use.
//
// Usage: npm run example:feeds   (or: node examples/feeds-server.mjs)
// Environment: FEEDS_PORT (default 8090), MQTT_URL (default mqtt://127.0.0.1:1883),
//              CITYPULSE_MQTT_PREFIX (default citypulse/example), FEEDS_MQTT_INTERVAL_MS (default 2000).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { connect } from 'mqtt';
import { gbfsDocument, vehiclePositions } from './feeds-live.mjs';

const FEEDS_DIR = fileURLToPath(new URL('./feeds/', import.meta.url));
const FILE_NAME = /^[A-Za-z0-9_-]+\.(json|geojson)$/;

/** Air-quality stations the MQTT side reports on (real Amsterdam locations). */
const STATIONS = [
  { id: 'ggd-nieuwendammerdijk', name: 'Nieuwendammerdijk', lat: 52.389, lon: 4.943, basePm25: 9 },
  { id: 'ggd-van-diemenstraat', name: 'Van Diemenstraat', lat: 52.3887, lon: 4.8818, basePm25: 13 },
  { id: 'ggd-sportpark-ookmeer', name: 'Sportpark Ookmeer', lat: 52.3605, lon: 4.7905, basePm25: 8 },
];

/**
 * Starts the static server (and, unless `mqttUrl` is null, the MQTT publisher).
 * @param {{ port?: number, host?: string, mqttUrl?: string | null, mqttPrefix?: string, intervalMs?: number, log?: (msg: string) => void }} options
 * @returns {Promise<{ url: string, port: number, close: () => Promise<void> }>}
 */
export async function startFeedsServer(options = {}) {
  const log = options.log ?? ((msg) => console.log(msg));
  const steps = { vehicles: 0, gbfs: 0 };
  let baseUrl = '';
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const nowSec = Math.floor(Date.now() / 1000);
    if (req.method === 'GET' && path === '/gtfs-rt/vehicles.pb') {
      steps.vehicles += 1;
      const body = vehiclePositions(steps.vehicles, nowSec);
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'cache-control': 'no-cache' }).end(body);
      return;
    }
    const gbfs = /^\/gbfs\/(2\.3|3\.0)\/([a-z_]+)\.json$/.exec(path);
    if (req.method === 'GET' && gbfs !== null) {
      if (gbfs[2] === 'station_status') steps.gbfs += 1;
      const doc = gbfsDocument(gbfs[1], gbfs[2], steps.gbfs, baseUrl, nowSec);
      if (doc === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      res
        .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' })
        .end(JSON.stringify(doc));
      return;
    }
    const name = decodeURIComponent(path.replace(/^\/+/, ''));
    if (req.method !== 'GET' || !FILE_NAME.test(name)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    let body;
    try {
      body = await readFile(`${FEEDS_DIR}${name}`);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const etag = `"${createHash('sha1').update(body).digest('hex').slice(0, 20)}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    const type = name.endsWith('.geojson') ? 'application/geo+json' : 'application/json';
    res.writeHead(200, { 'content-type': type, etag, 'cache-control': 'no-cache' }).end(body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8090, options.host ?? '127.0.0.1', () => resolve(undefined));
  });
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  baseUrl = url;
  log(`feeds: serving ${FEEDS_DIR} at ${url}/`);
  log('feeds: for examples/transit.json, set:');
  log(`  export GTFS_RT_VEHICLES_URL=${url}/gtfs-rt/vehicles.pb`);
  log(`  export GBFS_URL=${url}/gbfs/2.3/gbfs.json   # or ${url}/gbfs/3.0/gbfs.json`);

  let timer = null;
  let client = null;
  const prefix = options.mqttPrefix ?? 'citypulse/example';
  if (options.mqttUrl !== null) {
    const mqttUrl = options.mqttUrl ?? 'mqtt://127.0.0.1:1883';
    client = connect(mqttUrl, { reconnectPeriod: 2000, connectTimeout: 5000 });
    client.on('connect', () =>
      log(`feeds: publishing air quality to ${mqttUrl} under ${prefix}/air/<station>`),
    );
    client.on('error', (error) => log(`feeds: mqtt error: ${error.message}`));
    // A deterministic drift per station (no randomness needed for a demo).
    let step = 0;
    const publish = () => {
      step += 1;
      for (const [i, s] of STATIONS.entries()) {
        const pm25 = Math.round((s.basePm25 + 4 * Math.sin((step + i * 3) / 5)) * 10) / 10;
        const reading = {
          name: s.name,
          location: { lat: s.lat, lon: s.lon },
          pm25,
          updatedAt: new Date().toISOString(),
        };
        client.publish(`${prefix}/air/${s.id}`, JSON.stringify(reading), { retain: true });
      }
    };
    client.on('connect', publish);
    timer = setInterval(() => client.connected && publish(), options.intervalMs ?? 2000);
  }

  return {
    url,
    port,
    async close() {
      if (timer !== null) clearInterval(timer);
      if (client !== null) {
        // Clear the retained readings so the broker does not keep them after the feed is gone.
        if (client.connected) {
          await Promise.all(
            STATIONS.map((s) => client.publishAsync(`${prefix}/air/${s.id}`, '', { retain: true })),
          );
        }
        await client.endAsync();
      }
      await new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve(undefined));
      });
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const feeds = await startFeedsServer({
    port: Number(process.env.FEEDS_PORT ?? 8090),
    mqttUrl: process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883',
    mqttPrefix: process.env.CITYPULSE_MQTT_PREFIX ?? 'citypulse/example',
    intervalMs: Number(process.env.FEEDS_MQTT_INTERVAL_MS ?? 2000),
  });
  const shutdown = () => {
    feeds.close().then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
