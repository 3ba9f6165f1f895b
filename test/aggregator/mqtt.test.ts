/**
 * The mqtt source against the real Mosquitto on 127.0.0.1:1883. Every test uses MQTT topics under a prefix
 * unique to this run, so runs (and retained messages) never meet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { DataAggregator } from '../../src/aggregator/data-aggregator.js';
import { createMqttSource, mqttTopicMatches } from '../../src/aggregator/sources/mqtt.js';
import { waitFor } from './fixture-server.js';
import { RecordingPublisher, camera } from './helpers.js';

const BROKER = 'mqtt://127.0.0.1:1883';
const prefix = (): string => `citypulse-test/${randomBytes(6).toString('hex')}`;

async function publisherClient(): Promise<MqttClient> {
  return connectAsync(BROKER, {
    clientId: `citypulse-test-pub-${randomBytes(4).toString('hex')}`,
    reconnectPeriod: 0,
  });
}

test('mqttTopicMatches follows MQTT wildcard rules', () => {
  const cases: [string, string, boolean][] = [
    ['city/cameras/+', 'city/cameras/c1', true],
    ['city/cameras/+', 'city/cameras/c1/extra', false],
    ['city/cameras/+', 'city/cameras', false],
    ['city/#', 'city/cameras/c1', true],
    ['city/#', 'city', true],
    ['city/+/c1', 'city/cameras/c1', true],
    ['#', '$SYS/broker/load', false],
    ['city/cameras/c1', 'city/cameras/c1', true],
    ['city/cameras/c1', 'city/cameras/c2', false],
  ];
  for (const [filter, topic, expected] of cases)
    assert.equal(mqttTopicMatches(filter, topic), expected, `${filter} ~ ${topic}`);
});

test('mqtt: entities, arrays, envelopes, empty payloads and bad JSON from the real broker', async (t) => {
  const base = prefix();
  const source = createMqttSource({
    name: 'mqtt',
    url: BROKER,
    topics: { cameras: `${base}/cameras/+`, accidents: [`${base}/accidents/#`] },
    reconnectPeriodMs: 50,
  });
  const aggregator = new DataAggregator({ sources: [source], alerts: false });
  const publisher = new RecordingPublisher();
  aggregator.attach(publisher);
  const pub = await publisherClient();
  t.after(async () => {
    await aggregator.stop();
    await pub.endAsync(true);
  });
  await aggregator.start();
  await waitFor(() => aggregator.sourceStatus()[0]?.lastSuccessAt !== null, 'subscribed');

  const { id: _id, ...noId } = camera('x');
  await pub.publishAsync(`${base}/cameras/cam-7`, JSON.stringify(noId));
  await pub.publishAsync(
    `${base}/cameras/batch`,
    JSON.stringify([camera('cam-8'), camera('cam-9', { status: 'bad' })]),
  );
  await pub.publishAsync(
    `${base}/cameras/env`,
    JSON.stringify({ upserts: [camera('cam-10')], removes: ['cam-8'] }),
  );
  await pub.publishAsync(`${base}/cameras/junk`, '{not json');
  await pub.publishAsync(`${base}/cameras/cam-10`, '');
  await pub.publishAsync(`${base}/other/ignored`, JSON.stringify(camera('nope')));
  await waitFor(
    () => (aggregator.sourceStatus()[0]?.rejected ?? 0) >= 2 && publisher.of('cameras').length >= 4,
    'all messages',
  );

  assert.deepEqual(
    aggregator.getTopicSnapshot('cameras').entities.map((e) => e.id),
    ['cam-7'],
  );
  const status = aggregator.sourceStatus()[0];
  assert.equal(status?.readings, 3, 'cam-7, cam-8, cam-10');
  assert.equal(status?.rejected, 2, 'cam-9 (bad status) and the non-JSON payload');
  assert.equal(status?.state, 'running');
});

test('mqtt: reconnects after the broker drops the connection and resubscribes', async (t) => {
  const base = prefix();
  const clientId = `citypulse-test-src-${randomBytes(4).toString('hex')}`;
  const source = createMqttSource({
    name: 'mqtt',
    url: BROKER,
    clientId,
    topics: { cameras: `${base}/cameras/+` },
    reconnectPeriodMs: 50,
  });
  const aggregator = new DataAggregator({ sources: [source], alerts: false });
  const pub = await publisherClient();
  t.after(async () => {
    await aggregator.stop();
    await pub.endAsync(true);
  });
  await aggregator.start();
  await waitFor(() => aggregator.sourceStatus()[0]?.lastSuccessAt !== null, 'subscribed');
  await pub.publishAsync(`${base}/cameras/c1`, JSON.stringify(camera('c1')));
  await waitFor(() => aggregator.getTopicSnapshot('cameras').entities.length === 1, 'first message');

  // A second connection with the same client id makes the broker drop ours (session takeover).
  const usurper = await connectAsync(BROKER, { clientId, reconnectPeriod: 0 });
  await waitFor(
    () => aggregator.sourceStatus()[0]?.lastError === 'connection to the broker lost',
    'disconnect seen',
  );
  await usurper.endAsync(true);

  // Publish until the source, back and subscribed again, receives (bounded: 200 attempts).
  for (let i = 0; i < 200 && aggregator.getTopicSnapshot('cameras').entities.length < 2; i++) {
    await pub.publishAsync(`${base}/cameras/c2`, JSON.stringify(camera('c2')));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(
    aggregator
      .getTopicSnapshot('cameras')
      .entities.map((e) => e.id)
      .sort(),
    ['c1', 'c2'],
  );
  assert.equal(aggregator.sourceStatus()[0]?.state, 'running');
});

test('mqtt: an unreachable broker leaves the source failing, the aggregator ready, and stop() clean', async () => {
  const source = createMqttSource({
    name: 'down',
    url: 'mqtt://127.0.0.1:1',
    topics: { cameras: 'x/+' },
    reconnectPeriodMs: 20,
  });
  const aggregator = new DataAggregator({ sources: [source], alerts: false });
  await aggregator.start();
  assert.equal(aggregator.isReady(), true, 'start does not wait for the connection');
  try {
    await waitFor(() => aggregator.sourceStatus()[0]?.state === 'failing', 'failing');
    assert.match(String(aggregator.sourceStatus()[0]?.lastError), /ECONNREFUSED|cannot connect/);
  } finally {
    await aggregator.stop();
  }
  assert.equal(aggregator.sourceStatus()[0]?.state, 'stopped');
});
