/**
 * The dashboard renders any topic (issue 12, item 6), in a real browser against the real server: a topic defined
 * only as a `TopicDefinition` (`parking`: schema, location field, display hints), which the
 * dashboard has no code for gets a map layer that can be switched off and a list of its fields; alerts raised before
 * the page opened are in the alerts panel, then follow live; entity data stays text; the page fits a 390 px phone
 * (screenshot in test-output/dashboard-phone.png).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { CityPulseServer } from '../../src/app/create-server.js';
import { DEFAULT_TOPICS } from '../../src/protocol/messages.js';
import { LOCATION, TEXT, integer } from '../../src/protocol/catalog/fields.js';
import type { TopicDefinition } from '../../src/protocol/topic-definition.js';
import { WEB_ROOT, connection, launchBrowser, openDashboard, publish } from '../helpers/browser.js';
import { isoNow, startServer } from '../helpers/servers.js';

const KEY = 'e2e-registry-key';
const OUTPUT = join(process.cwd(), 'test-output');
const HOSTILE = '<img src=x onerror="window.__pwned=1">';

/** A topic the dashboard has no code for, defined only as data: its schema, location field and display hints. */
const PARKING: TopicDefinition = {
  name: 'parking',
  idField: 'id',
  locationField: 'location',
  display: {
    label: 'Parking garages',
    color: '#336699',
    icon: 'P',
    fields: [
      { field: 'free', label: 'Free', unit: 'spaces' },
      { field: 'capacity', label: 'Capacity' },
    ],
  },
  schema: {
    type: 'object',
    required: ['name', 'location', 'free'],
    // The catalog's field schemas: bounded text, non-negative integers, a {lat, lon} location.
    properties: { name: TEXT, free: integer(0), capacity: integer(0), location: LOCATION },
  },
  ttlMs: 0,
  alerts: [],
};

let browser: Browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

function garage(id: string, name: string, free: number, lat: number, lon: number) {
  return { id, updatedAt: isoNow(), source: 'e2e', name, location: { lat, lon }, free, capacity: 300 };
}

const garages = [
  garage('p1', 'Central Garage', 42, 52.3791, 4.9003),
  garage('p2', HOSTILE, 7, 52.3676, 4.9041),
  garage('p3', 'Museum Garage', 120, 52.3584, 4.8811),
];

function station(aqi: number) {
  const category = aqi > 300 ? 'hazardous' : 'good';
  return {
    id: 'aq-stadhouderskade',
    updatedAt: isoNow(),
    source: 'e2e',
    name: 'Stadhouderskade',
    location: { lat: 52.358, lon: 4.8906 },
    aqi,
    category,
  };
}

/** A server with the `parking` topic next to the city topics, garages in it and a critical AQI alert raised. */
async function startParkingServer(t: TestContext): Promise<CityPulseServer> {
  const server = await startServer(t, {
    topics: [...DEFAULT_TOPICS, PARKING],
    publishKeys: [KEY],
    webRoot: WEB_ROOT,
  });
  const parked = server.aggregator.ingest('parking', garages, []);
  assert.ok(parked.ok, JSON.stringify(parked));
  const aq = server.aggregator.ingest('airQuality', [station(350)], []);
  assert.ok(aq.ok, JSON.stringify(aq));
  assert.equal(
    server.aggregator.activeAlerts().length,
    1,
    'the AQI rule raised its alert before the page opens',
  );
  return server;
}

function markers(page: Page, topic: string) {
  return page.locator(`[data-testid^="marker-"][data-topic="${topic}"]`);
}

function row(page: Page, topic: string, id: string) {
  return page.locator(`[data-testid="list-${topic}"] [data-testid="topic-row"][data-id="${id}"]`);
}

async function textOf(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).textContent()) ?? '';
}

test('a topic without dashboard code: layer, list, markers, alerts from before the page opened, live, text only', async (t) => {
  const server = await startParkingServer(t);
  const { page, pageErrors } = await openDashboard(t, browser, server, {
    viewport: { width: 1280, height: 800 },
  });
  await connection(page, 'connected').waitFor({ timeout: 5000 });

  // A layer switch, a list and a marker per garage.
  const toggle = page.getByTestId('layer-toggle-parking');
  await toggle.waitFor({ timeout: 5000 });
  assert.equal(await toggle.isChecked(), true);
  await row(page, 'parking', 'p3').waitFor({ timeout: 5000 });
  assert.equal(await page.locator('[data-testid="list-parking"] [data-testid="topic-row"]').count(), 3);
  assert.equal(await textOf(page, '[data-testid="list-count-parking"]'), '3');
  // The hinted fields: label as heading, value with its unit.
  const headings = await page.locator('[data-testid="list-parking"] th').allTextContents();
  assert.deepEqual(headings, ['Name', 'Free', 'Capacity']);
  assert.deepEqual(await row(page, 'parking', 'p1').locator('td').allTextContents(), [
    'Central Garage',
    '42 spaces',
    '300',
  ]);
  assert.match(await textOf(page, '[data-testid="list-parking"] h3'), /Parking garages/);
  await markers(page, 'parking').nth(2).waitFor({ state: 'attached', timeout: 5000 });
  assert.equal(await markers(page, 'parking').count(), 3);
  const marker = page.locator('[data-testid="marker-entity"][data-topic="parking"][data-id="p1"]');
  assert.equal(await marker.locator('circle').getAttribute('fill'), '#336699', 'in the hinted colour');
  assert.equal(await marker.locator('text').textContent(), 'P', 'with the hinted icon');

  // A hostile name is text: in the list, in the marker's title, and nothing ran.
  assert.equal(await row(page, 'parking', 'p2').locator('.entity-name').textContent(), HOSTILE);
  assert.equal(await page.locator('[data-testid="list-parking"] img').count(), 0);
  const title = await page
    .locator('[data-testid^="marker-"][data-topic="parking"][data-id="p2"] title')
    .textContent();
  assert.match(title ?? '', /<img src=x onerror=/);
  assert.equal(await page.evaluate(() => (window as { __pwned?: unknown }).__pwned), undefined);

  // The critical AQI alert was raised before the page opened: it is in the panel on open.
  const aqiAlert = page.locator('[data-testid="alert-item"]', { hasText: 'AQI 350' });
  await aqiAlert.waitFor({ timeout: 5000 });
  assert.equal(await aqiAlert.getAttribute('data-severity'), 'critical');
  assert.equal(await aqiAlert.getAttribute('data-state'), 'raised');
  assert.equal(await textOf(page, '[data-testid="summary-alerts"]'), '1');

  // Live: a new garage and a changed one.
  await publish(server, KEY, {
    topic: 'parking',
    type: 'UPDATE',
    data: {
      upserts: [
        garage('p4', 'Station Garage', 3, 52.3889, 4.8383),
        garage('p1', 'Central Garage', 10, 52.3791, 4.9003),
      ],
    },
  });
  await row(page, 'parking', 'p4').waitFor({ timeout: 5000 });
  await row(page, 'parking', 'p1').locator('td', { hasText: '10 spaces' }).waitFor({ timeout: 5000 });
  await page
    .locator('[data-testid^="marker-"][data-topic="parking"][data-id="p4"]')
    .waitFor({ state: 'attached' });
  assert.equal(await markers(page, 'parking').count(), 4);

  // A published alert with hostile text is text too (a transient one: no id).
  await publish(server, KEY, {
    topic: 'parking',
    type: 'ALERT',
    data: { message: HOSTILE, severity: 'info' },
  });
  await page.locator('[data-testid="alert-item"]', { hasText: '<img src=x' }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('[data-testid="alerts-feed"] img').count(), 0);
  assert.equal(await page.evaluate(() => (window as { __pwned?: unknown }).__pwned), undefined);

  // The alert resolves: the same entry turns resolved and nothing is active any more.
  assert.ok(server.aggregator.ingest('airQuality', [station(30)], []).ok);
  await page
    .locator('[data-testid="alert-item"][data-state="resolved"]', { hasText: 'AQI 350' })
    .waitFor({ timeout: 5000 });
  assert.equal(await page.locator('[data-testid="alert-item"]', { hasText: 'AQI 350' }).count(), 1);
  await page.waitForFunction(
    () => document.querySelector('[data-testid="summary-alerts"]')?.textContent === '0',
    undefined,
    { timeout: 5000 },
  );

  // Switching the layer off hides its markers only, and the choice survives a reload.
  await toggle.uncheck();
  await markers(page, 'parking').first().waitFor({ state: 'detached', timeout: 5000 });
  assert.equal(await markers(page, 'parking').count(), 0);
  assert.equal(await markers(page, 'airQuality').count(), 1, 'other layers stay');
  await page.reload();
  await connection(page, 'connected').waitFor({ timeout: 5000 });
  await row(page, 'parking', 'p4').waitFor({ timeout: 5000 });
  await row(page, 'parking', 'p1').locator('td', { hasText: '10 spaces' }).waitFor({ timeout: 5000 });
  assert.equal(await page.getByTestId('layer-toggle-parking').isChecked(), false);
  await markers(page, 'airQuality').first().waitFor({ state: 'attached', timeout: 5000 });
  assert.equal(await markers(page, 'parking').count(), 0);
  assert.deepEqual(pageErrors, []);
});

test('without GET /api/topics (an older server, a 401) every topic of CONNECTED is shown with default hints', async (t) => {
  const server = await startParkingServer(t);
  const { page, pageErrors } = await openDashboard(t, browser, server, {
    prepare: (p) => p.route('**/api/topics', (route) => route.fulfill({ status: 401, body: '{}' })),
  });
  await connection(page, 'connected').waitFor({ timeout: 5000 });
  for (const topic of [...DEFAULT_TOPICS, 'parking']) {
    await page.getByTestId(`layer-toggle-${topic}`).waitFor({ timeout: 5000 });
  }
  await row(page, 'parking', 'p1').waitFor({ timeout: 5000 });
  assert.equal(await row(page, 'parking', 'p1').locator('.entity-name').textContent(), 'Central Garage');
  await markers(page, 'parking').nth(2).waitFor({ state: 'attached', timeout: 5000 });
  await page.locator('[data-testid="alert-item"]', { hasText: 'AQI 350' }).waitFor({ timeout: 5000 });
  assert.deepEqual(pageErrors, []);
});

test('fits a 390 px phone without sideways scrolling, and keeps the multi-panel layout at 1280 px', async (t) => {
  const server = await startParkingServer(t);
  const phone = await openDashboard(t, browser, server, { viewport: { width: 390, height: 844 } });
  await connection(phone.page, 'connected').waitFor({ timeout: 5000 });
  await row(phone.page, 'parking', 'p1').waitFor({ timeout: 5000 });
  await phone.page.locator('[data-testid="alert-item"]').first().waitFor({ timeout: 5000 });
  const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page is ${width} px wide at 390`);
  mkdirSync(OUTPUT, { recursive: true });
  await phone.page.screenshot({ path: join(OUTPUT, 'dashboard-phone.png') });

  const desk = await openDashboard(t, browser, server, { viewport: { width: 1280, height: 800 } });
  await connection(desk.page, 'connected').waitFor({ timeout: 5000 });
  await row(desk.page, 'parking', 'p1').waitFor({ timeout: 5000 });
  const boxes = await desk.page.evaluate(() =>
    ['map-panel', 'weather-panel', 'alerts-panel', 'topics-panel'].map((id) => {
      const box = document.querySelector(`[data-testid="${id}"]`)?.getBoundingClientRect();
      return { id, left: box?.left ?? -1, top: box?.top ?? -1 };
    }),
  );
  const [map, weather, alerts, topics] = boxes;
  assert.ok(map && weather && alerts && topics);
  assert.ok(weather.left > map.left && topics.left > weather.left, `side by side: ${JSON.stringify(boxes)}`);
  assert.ok(weather.top < 200, `the weather panel is beside the map, not below it: ${JSON.stringify(boxes)}`);
  assert.equal(await desk.page.evaluate(() => document.documentElement.scrollWidth), 1280);
  assert.deepEqual([...phone.pageErrors, ...desk.pageErrors], []);
});

test('a big topic: 1,000 transit vehicles render at most 100 list rows, and moving them reuses the markers', async (t) => {
  const server = await startServer(t, { topics: [...DEFAULT_TOPICS, 'transit'], webRoot: WEB_ROOT });
  const fleet = (step: number) =>
    Array.from({ length: 1000 }, (_, i) => ({
      id: `bus-${String(i).padStart(4, '0')}`,
      updatedAt: isoNow(),
      source: 'e2e',
      label: `Bus ${i}`,
      routeId: `r${i % 12}`,
      speed: 5 + step,
      // Every other vehicle moves (moving all by the same step would leave the fitted map unchanged).
      location: {
        lat: 52.3 + (i % 40) * 0.003 + (i % 2 === 0 ? step * 0.001 : 0),
        lon: 4.8 + Math.floor(i / 40) * 0.006,
      },
    }));
  assert.ok(server.aggregator.ingest('transit', fleet(0), []).ok);
  const { page, pageErrors } = await openDashboard(t, browser, server, {
    viewport: { width: 1280, height: 800 },
  });
  await connection(page, 'connected').waitFor({ timeout: 5000 });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="list-count-transit"]')?.textContent === '1000',
    undefined,
    { timeout: 10_000 },
  );
  assert.equal(await page.locator('[data-testid="list-transit"] [data-testid="topic-row"]').count(), 100);
  assert.equal(await textOf(page, '[data-testid="list-transit"] .list-more'), 'showing 100 of 1000');
  const vehicle = page.locator('[data-testid="marker-entity"][data-topic="transit"][data-id="bus-0007"]');
  await vehicle.waitFor({ state: 'attached', timeout: 5000 });
  assert.equal(await markers(page, 'transit').count(), 1000);

  // Tag one marker element, move every vehicle, and wait for that marker to move: it is the same element.
  const before = await vehicle.evaluate((el) => {
    (el as Element & { e2eTag?: string }).e2eTag = 'kept';
    return el.getAttribute('transform');
  });
  assert.ok(server.aggregator.ingest('transit', fleet(1), []).ok);
  await page.waitForFunction(
    (old) =>
      document
        .querySelector('[data-testid="marker-entity"][data-topic="transit"][data-id="bus-0007"]')
        ?.getAttribute('transform') !== old,
    before,
    { timeout: 5000 },
  );
  assert.equal(await vehicle.evaluate((el) => (el as Element & { e2eTag?: string }).e2eTag), 'kept');
  assert.equal(await markers(page, 'transit').count(), 1000);
  assert.deepEqual(pageErrors, []);
});
