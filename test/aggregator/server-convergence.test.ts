/**
 * The "done when": a real citypulse server running `examples/city.json` (simulator + HTTP feeds from the
 * bundled feeds server + MQTT), and a WebSocket client whose SNAPSHOT + UPDATE/ALERT fold converges on the
 * server's state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { aggregatorOptionsFromConfig, loadConfig } from '../../src/aggregator/config.js';
import { applyFrame, fromSnapshot, toTopicState } from '../../src/aggregator/fold.js';
import type { FoldedTopic } from '../../src/aggregator/fold.js';
import { createServer } from '../../src/app/create-server.js';
import type { TopicState } from '../../src/protocol/topics.js';
import { waitFor } from './fixture-server.js';

const TOPICS = ['cameras', 'weather', 'accidents', 'airQuality'];

test('a WebSocket client of a server running examples/city.json converges on the server state', async (t) => {
  const { startFeedsServer } = (await import(
    new URL('../../examples/feeds-server.mjs', import.meta.url).href
  )) as {
    startFeedsServer(o: object): Promise<{ port: number; close(): Promise<void> }>;
  };
  const prefix = `citypulse-test/${randomBytes(6).toString('hex')}`;
  const feeds = await startFeedsServer({ port: 0, mqttPrefix: prefix, intervalMs: 50, log: () => {} });
  t.after(() => feeds.close());
  const config = await loadConfig(fileURLToPath(new URL('../../examples/city.json', import.meta.url)), {
    FEEDS_PORT: String(feeds.port),
    CITYPULSE_MQTT_PREFIX: prefix,
  });
  const { sources } = aggregatorOptionsFromConfig(config);
  const server = await createServer({ port: 0, sources: sources ?? [] });
  t.after(() => server.close());

  const ws = new WebSocket(`${server.wsUrl}?topics=${TOPICS.join(',')}`);
  t.after(() => ws.terminate());
  const states = new Map<string, FoldedTopic>();
  const problems: string[] = [];
  ws.on('message', (raw) => {
    const frame = JSON.parse(String(raw)) as {
      type: string;
      topic?: string;
      seq?: number;
      epoch?: string;
      data: unknown;
    };
    if (frame.type === 'SNAPSHOT') {
      if (frame.topic === undefined) {
        for (const [topic, state] of Object.entries(frame.data as Record<string, TopicState>))
          states.set(topic, fromSnapshot(state));
      } else {
        states.set(frame.topic, fromSnapshot({ ...(frame.data as TopicState), seq: frame.seq ?? 0 }));
      }
    } else if ((frame.type === 'UPDATE' || frame.type === 'ALERT') && frame.topic !== undefined) {
      const state = states.get(frame.topic);
      if (state === undefined) return void problems.push(`${frame.type} before SNAPSHOT on ${frame.topic}`);
      const result = applyFrame(state, frame);
      if (!result.ok) return void problems.push(`${frame.topic} seq ${frame.seq}: ${result.reason}`);
      states.set(frame.topic, result.state);
    }
  });

  const sourcesOf = (topic: string) =>
    new Set(server.aggregator.getTopicSnapshot(topic).entities.map((e) => e.source));
  await waitFor(
    () =>
      sourcesOf('accidents').has('amsterdam-incidents') &&
      sourcesOf('cameras').has('ndw-cameras') &&
      sourcesOf('airQuality').has('ggd-air') &&
      states.size === TOPICS.length,
    'every source to report and the client to have its snapshot',
    10_000,
  );
  // Freeze the data, then let the client catch up with the last frames.
  await server.aggregator.stop();
  await waitFor(
    () => TOPICS.every((topic) => states.get(topic)?.seq === server.aggregator.getTopicSnapshot(topic).seq),
    'the client to reach the server seq on every topic',
  );
  assert.deepEqual(problems, []);
  for (const topic of TOPICS) {
    const folded = toTopicState(states.get(topic) as FoldedTopic);
    assert.deepEqual(folded.entities, server.aggregator.getTopicSnapshot(topic).entities, topic);
  }
  const response = await fetch(`${server.url}/api/snapshot`);
  const body = (await response.json()) as Record<string, TopicState>;
  assert.equal(body.airQuality?.entities.length, 3);
});
