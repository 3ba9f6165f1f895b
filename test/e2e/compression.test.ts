/**
 * permessage-deflate with a real browser: Chromium (driven by playwright-core) offers the extension as every
 * browser does, gets our answer (`server_no_context_takeover; client_no_context_takeover`), and decodes the
 * compressed snapshot and UPDATEs exactly as a plain `ws` client reads the uncompressed frames. Also a compressed
 * client->server frame (Chrome compresses what it sends) is answered.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`) or CHROMIUM_PATH.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { WebSocket } from 'ws';
import { createServer, type CityPulseServer } from '../../src/app/create-server.js';
import { eventually } from '../helpers/test-client.js';
import { cityUpdate } from '../server/compression-wire.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOPIC = 'weather';
const COUNT = 20;

let browser: Browser;

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)`,
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
});

/** What the page's WebSocket saw. */
interface PageResult {
  extensions: string;
  messages: string[];
}

test('Chromium negotiates permessage-deflate and decodes compressed frames like a plain client', async (t) => {
  const server: CityPulseServer = await createServer({ port: 0, source: 'none', topics: [TOPIC, 'cameras'] });
  t.after(() => server.close());
  const page = await browser.newPage();
  t.after(() => page.close());
  await page.goto(`${server.url}/healthz`);

  const plain = new WebSocket(`${server.wsUrl}?topics=${TOPIC}`, { perMessageDeflate: false });
  plain.on('error', () => {});
  t.after(() => plain.terminate());
  const plainMessages: string[] = [];
  plain.on('message', (data) => plainMessages.push(data.toString()));
  await new Promise<void>((resolve, reject) => {
    plain.once('open', () => resolve());
    plain.once('error', reject);
  });

  // The page opens a socket and keeps what it decodes on `window.__cp`.
  await page.evaluate((url) => {
    const w = window as unknown as { __cp: PageResult & { ws: WebSocket } };
    const ws = new WebSocket(url);
    w.__cp = { extensions: '', messages: [], ws };
    ws.onopen = () => {
      w.__cp.extensions = ws.extensions;
    };
    ws.onmessage = (event) => {
      w.__cp.messages.push(String(event.data));
    };
  }, `${server.wsUrl}?topics=${TOPIC}`);
  await eventually(() => server.service.getTopicSubscribers(TOPIC) === 2, 10_000, 'both subscribed');

  const compressionsBefore = server.service.counters().compressions;
  for (let i = 0; i < COUNT; i++)
    server.service.publish(TOPIC, {
      type: 'UPDATE',
      data: cityUpdate(i, 10),
      timestamp: new Date(0).toISOString(),
    });
  const topicFrames = (messages: readonly string[]): string[] =>
    messages.filter((m) => m.includes(`"topic":"${TOPIC}"`));
  await eventually(() => topicFrames(plainMessages).length === COUNT, 10_000, 'plain client got the UPDATEs');
  let seen: PageResult = { extensions: '', messages: [] };
  await eventually(
    async () => {
      seen = await page.evaluate(() => {
        const { extensions, messages } = (window as unknown as { __cp: PageResult }).__cp;
        return { extensions, messages: [...messages] };
      });
      return topicFrames(seen.messages).length === COUNT;
    },
    10_000,
    'the browser got the UPDATEs',
  );
  assert.equal(seen.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  assert.deepEqual(
    topicFrames(seen.messages),
    topicFrames(plainMessages),
    'decoded exactly as the plain frames',
  );
  assert.equal(
    server.service.counters().compressions - compressionsBefore,
    COUNT,
    'every UPDATE went compressed to the browser, compressed once',
  );
  const snapshot = JSON.parse(seen.messages[1] ?? '{}') as { type?: string };
  assert.equal(snapshot.type, 'SNAPSHOT');

  // Chrome compresses what it sends: a large ping is inflated (within maxPayload) and answered.
  await page.evaluate(() => {
    const { ws } = (window as unknown as { __cp: { ws: WebSocket } }).__cp;
    ws.send(JSON.stringify({ type: 'ping', id: 'browser', pad: 'city '.repeat(2000) }));
  });
  await eventually(
    async () =>
      page.evaluate(() =>
        (window as unknown as { __cp: PageResult }).__cp.messages.some((m) => m.includes('"id":"browser"')),
      ),
    10_000,
    'PONG to a compressed browser frame',
  );
});
