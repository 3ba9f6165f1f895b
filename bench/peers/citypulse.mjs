// Peer 5: citypulse itself, run from source through the tsx loader (`node --import tsx`). The publisher runs in
// this process and goes through `server.service.broadcastToTopic(...)`, so the HTTP publish path is not measured.
// BENCH_PRODUCER=simulator (scenario T): each harness publish is a tick of the simulator's transit fleet
// (BENCH_TRANSIT_VEHICLES vehicles) reported through the aggregator (validation, diff, fold) as `citypulse serve`
// runs it; the harness's own message is ignored. The aggregator's UPDATEs and their upserts are counted for the
// driver (`extra` in stats).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runPeer } from './harness.mjs';

// CITYPULSE_ROOT points at another checkout (a branch, a prototype) to compare it with this one in the same run.
const root =
  process.env.CITYPULSE_ROOT ?? join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..');
const { createServer } = await import(pathToFileURL(join(root, 'src/app/create-server.ts')).href);
const { silentLogger } = await import(pathToFileURL(join(root, 'src/shared/logger.ts')).href);
const simulatorProducer = process.env.BENCH_PRODUCER === 'simulator';
/** Scenario T's producer: the simulator's transit fleet, stepped once per harness publish. */
let producer = null;
if (simulatorProducer) {
  const { TransitSimulation } = await import(
    pathToFileURL(join(root, 'src/aggregator/simulator-transit.ts')).href
  );
  const { AMSTERDAM } = await import(pathToFileURL(join(root, 'src/aggregator/cities.ts')).href);
  const fleet = new TransitSimulation(
    AMSTERDAM,
    1,
    'simulator',
    Number(process.env.BENCH_TRANSIT_VEHICLES ?? 1000),
  );
  /** @type {{ emit: (batch: unknown) => void } | null} */
  let context = null;
  producer = {
    // A source like the simulator's (`createSimulator` with topics ['transit']), ticked by the harness's clock.
    source: {
      name: 'simulator',
      kind: 'simulator',
      topics: ['transit'],
      start(c) {
        context = c;
        context.emit({ topic: 'transit', upserts: fleet.step(Date.now()), complete: true });
      },
      async stop() {
        context = null;
      },
    },
    tick() {
      context?.emit({ topic: 'transit', upserts: fleet.step(Date.now()), complete: true });
    },
  };
}
const sources = producer === null ? undefined : [producer.source];

await runPeer(async ({ port, topics }) => {
  // CITYPULSE_OPTIONS: JSON merged into the createServer options (e.g. {"highWaterBytes":131072}).
  const extra = JSON.parse(process.env.CITYPULSE_OPTIONS ?? '{}');
  const server = await createServer({
    port,
    host: '127.0.0.1',
    // The driver's topics (BENCH_TOPICS): the four city topics, or `transit` for scenario T.
    topics,
    source: 'none',
    ...(sources === undefined ? {} : { sources }),
    publishKeys: ['bench-key'],
    logger: silentLogger,
    // The load generator opens every client from 127.0.0.1: lift the per-IP and total connection caps.
    maxConnections: Number.POSITIVE_INFINITY,
    maxConnectionsPerIp: Number.POSITIVE_INFINITY,
    ...extra,
  });
  // What the aggregator publishes (the simulator producer's UPDATEs), counted on the way to the service.
  const produced = { published: 0, publishedByTopic: {}, upserts: 0 };
  if (simulatorProducer) {
    const publish = server.service.publish.bind(server.service);
    server.service.publish = (topic, message) => {
      if (message.type === 'UPDATE') {
        produced.published += 1;
        produced.publishedByTopic[topic] = (produced.publishedByTopic[topic] ?? 0) + 1;
        produced.upserts += message.data?.upserts?.length ?? 0;
      }
      return publish(topic, message);
    };
  }
  return {
    port: server.port,
    publish(topic, message) {
      if (producer === null) server.service.broadcastToTopic(topic, message);
      else producer.tick();
    },
    extraStats: simulatorProducer ? () => structuredClone(produced) : undefined,
    clientCount: () => server.service.getClientCount(),
    close: () => server.close(),
  };
});
