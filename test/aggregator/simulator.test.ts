import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonEqual } from '../../src/aggregator/equal.js';
import { validateEntity } from '../../src/aggregator/schema.js';
import { CitySimulation, SIMULATOR_TOPICS, createSimulator } from '../../src/aggregator/simulator.js';
import { AMSTERDAM } from '../../src/aggregator/cities.js';
import type { SourceBatch, SourceContext } from '../../src/aggregator/source.js';
import { silentLogger } from '../../src/shared/logger.js';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const TICKS = 400;

function run(seed: number, ticks = TICKS): Record<string, unknown[]>[] {
  const sim = new CitySimulation(AMSTERDAM, seed, 'simulator', 6);
  const out: Record<string, unknown[]>[] = [];
  for (let i = 0; i < ticks; i++) out.push(structuredClone(sim.step(T0 + i * 1000)));
  return out;
}

test('the simulation is deterministic for a seed and differs between seeds', () => {
  assert.deepEqual(run(11, 100), run(11, 100));
  assert.notDeepEqual(run(11, 100), run(12, 100));
});

test('every simulated reading is valid, the city is plausible, and every topic keeps changing', () => {
  const ticks = run(5);
  const changedTicks: Record<string, number> = { cameras: 0, weather: 0, accidents: 0, airQuality: 0 };
  const accidentIds = new Set<string>();
  let sawOffline = false;
  for (const [i, tick] of ticks.entries()) {
    for (const topic of SIMULATOR_TOPICS) {
      for (const entity of tick[topic] ?? []) {
        const result = validateEntity(topic, entity, { source: 'x', now: T0 });
        assert.ok(result.ok, `tick ${i} ${topic}: ${JSON.stringify(result)}`);
        const { lat, lon } = (entity as { location: { lat: number; lon: number } }).location;
        assert.ok(
          lat > 52.2 && lat < 52.5 && lon > 4.7 && lon < 5.1,
          `${topic} inside Amsterdam: ${lat},${lon}`,
        );
        if (topic === 'accidents') accidentIds.add((entity as { id: string }).id);
        if (topic === 'cameras' && (entity as { status: string }).status === 'offline') sawOffline = true;
      }
      if (i > 0 && !jsonEqual(tick[topic], ticks[i - 1]?.[topic]))
        changedTicks[topic] = (changedTicks[topic] ?? 0) + 1;
    }
    assert.ok((tick.accidents?.length ?? 0) <= 6, 'at most maxAccidents open');
  }
  assert.equal(ticks[0]?.cameras?.length, 12);
  assert.equal(ticks[0]?.weather?.length, 4);
  assert.equal(ticks[0]?.airQuality?.length, 7);
  // Cameras, weather and air quality change on every tick; accidents appear, change and clear often.
  assert.equal(changedTicks.cameras, TICKS - 1);
  assert.equal(changedTicks.weather, TICKS - 1);
  assert.equal(changedTicks.airQuality, TICKS - 1);
  assert.ok(
    (changedTicks.accidents ?? 0) > TICKS / 10,
    `accidents changed on ${changedTicks.accidents} ticks`,
  );
  assert.ok(accidentIds.size > 10, 'accidents come and go');
  assert.ok(sawOffline, 'cameras sometimes go offline');
  const last = ticks.at(-1)?.accidents ?? [];
  assert.ok(
    last.every(
      (a) => (a as { reportedAt: string }).reportedAt >= new Date(T0 + (TICKS - 181) * 1000).toISOString(),
    ),
    'accidents clear within 180 ticks',
  );
});

test('createSimulator emits a complete batch per chosen topic on start, then on its interval, and stops', async () => {
  const batches: SourceBatch[] = [];
  const context: SourceContext = {
    emit: (batch) => batches.push(batch),
    reportError: () => assert.fail('no errors'),
    reportSuccess: () => {},
    reject: () => assert.fail('no rejects'),
    now: () => T0,
    logger: silentLogger,
  };
  const simulator = createSimulator({ seed: 1, intervalMs: 10, topics: ['weather', 'airQuality'] });
  assert.deepEqual(simulator.topics, ['weather', 'airQuality']);
  await simulator.start(context);
  assert.deepEqual(
    batches.map((b) => [b.topic, b.complete]),
    [
      ['weather', true],
      ['airQuality', true],
    ],
  );
  for (let i = 0; i < 200 && batches.length < 6; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  await simulator.stop();
  await simulator.stop();
  const count = batches.length;
  assert.ok(count >= 6, 'ticks on its interval');
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(batches.length, count, 'nothing after stop');
});

test('an unknown city is refused', () => {
  assert.throws(() => createSimulator({ city: 'atlantis' }), /unknown city "atlantis"/);
});
