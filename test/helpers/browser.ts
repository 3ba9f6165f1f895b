/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core, against dist/web built from web/
 * when the bundle is missing or older than its sources. Shared by the dashboard's browser tests.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import type { CityPulseServer } from '../../src/app/create-server.js';

/** The browser: `CHROMIUM_PATH`, default Debian's `/usr/bin/chromium` (`apt-get install -y chromium`). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ROOT = process.cwd();
/** The built dashboard. */
export const WEB_ROOT = join(ROOT, 'dist', 'web');

type After = { after(fn: () => unknown): void };

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

/** Builds the bundle when it is missing or older than web/ and the client SDK. */
export function ensureWebBundle(): void {
  const bundle = join(WEB_ROOT, 'app.js');
  const sources = ['web', 'src/client', 'src/protocol', 'src/shared'].map((p) => newestMtime(join(ROOT, p)));
  if (
    existsSync(join(WEB_ROOT, 'index.html')) &&
    existsSync(bundle) &&
    statSync(bundle).mtimeMs >= Math.max(...sources)
  ) {
    return;
  }
  const result = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-web.mjs')], { encoding: 'utf8' });
  assert.equal(result.status, 0, `building the dashboard failed:\n${result.stdout}\n${result.stderr}`);
}

/** Builds the bundle if needed and launches headless chromium (close it in `after`). */
export async function launchBrowser(): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)`,
  );
  ensureWebBundle();
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Options of {@link openDashboard}. */
export interface OpenOptions {
  /** Query string of the page (`?tiles=...`). */
  readonly query?: string;
  /** Default 1440 x 900. */
  readonly viewport?: { readonly width: number; readonly height: number };
  /** Runs on the page before it loads (routes, init scripts). */
  readonly prepare?: (page: Page) => Promise<unknown>;
}

/** Opens the dashboard in a new context; collects page errors and the origins of every request. */
export async function openDashboard(
  t: After,
  browser: Browser,
  server: CityPulseServer,
  options: OpenOptions = {},
) {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1440, height: 900 },
    deviceScaleFactor: 1,
  });
  t.after(() => context.close());
  const page = await context.newPage();
  const pageErrors: string[] = [];
  const origins = new Set<string>();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('request', (request) => origins.add(new URL(request.url()).origin));
  await options.prepare?.(page);
  await page.goto(`${server.url}/${options.query ?? ''}`);
  return { page, pageErrors, origins };
}

/** The connection-state badge in state `state` (wait for it). */
export function connection(page: Page, state: string) {
  return page.locator(`[data-testid="connection-state"][data-state="${state}"]`);
}

/** `POST /api/publish` with `key`; asserts 202. */
export async function publish(server: CityPulseServer, key: string, body: unknown): Promise<void> {
  const res = await fetch(`${server.url}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 202, await res.text());
}
