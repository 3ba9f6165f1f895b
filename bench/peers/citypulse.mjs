// Peer 5: citypulse itself, run from source through the tsx loader (`node --import tsx`). The publisher runs in
// this process and goes through `server.service.broadcastToTopic(...)`, so the HTTP publish path is not measured.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runPeer } from './harness.mjs';

// CITYPULSE_ROOT points at another checkout (a branch, a prototype) to compare it with this one in the same run.
const root =
  process.env.CITYPULSE_ROOT ?? join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..');
const { createServer } = await import(pathToFileURL(join(root, 'src/app/create-server.ts')).href);
const { silentLogger } = await import(pathToFileURL(join(root, 'src/shared/logger.ts')).href);

await runPeer(async ({ port, topics }) => {
  // CITYPULSE_OPTIONS: JSON merged into the createServer options (e.g. {"highWaterBytes":131072}).
  const extra = JSON.parse(process.env.CITYPULSE_OPTIONS ?? '{}');
  const server = await createServer({
    port,
    host: '127.0.0.1',
    // The driver's topics (BENCH_TOPICS): the four city topics, or `transit` for scenario T.
    topics,
    source: 'none',
    publishKeys: ['bench-key'],
    logger: silentLogger,
    // The load generator opens every client from 127.0.0.1: lift the per-IP and total connection caps.
    maxConnections: Number.POSITIVE_INFINITY,
    maxConnectionsPerIp: Number.POSITIVE_INFINITY,
    ...extra,
  });
  return {
    port: server.port,
    publish(topic, message) {
      server.service.broadcastToTopic(topic, message);
    },
    clientCount: () => server.service.getClientCount(),
    close: () => server.close(),
  };
});
