/** Helpers of the operations tests: upgrade refusals as HTTP statuses, metric values from the exposition text. */
import { WebSocket, type ClientOptions } from 'ws';
import { TestClient, WAIT_MS } from '../helpers/test-client.js';

/** How an upgrade attempt ended: opened (then closed by us), or refused with an HTTP status. */
export type UpgradeOutcome =
  { opened: true; protocol: string } | { opened: false; status: number; body: string };

/**
 * Attempts a WebSocket upgrade and reports how it ended. An opened socket is terminated at once. Fails after `ms`.
 */
export function tryUpgrade(
  url: string,
  protocols: string[] = [],
  options: ClientOptions = {},
  ms = WAIT_MS,
): Promise<UpgradeOutcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`upgrade neither opened nor refused within ${ms} ms`));
    }, ms);
    ws.on('error', () => {});
    ws.once('open', () => {
      clearTimeout(timer);
      const protocol = ws.protocol;
      ws.terminate();
      resolve({ opened: true, protocol });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('error', () => {});
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ opened: false, status: res.statusCode ?? 0, body: body.trim() });
      });
    });
    ws.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed before open or HTTP answer'));
    });
  });
}

/** The HTTP status an upgrade was refused with; fails if it opened. */
export async function refusedStatus(
  url: string,
  protocols: string[] = [],
  options: ClientOptions = {},
): Promise<number> {
  const outcome = await tryUpgrade(url, protocols, options);
  if (outcome.opened) throw new Error('the upgrade was accepted, expected a refusal');
  return outcome.status;
}

/** Opens a TestClient and registers it for cleanup. */
export async function openClient(
  t: { after: (fn: () => unknown) => void },
  url: string,
  options: { headers?: Record<string, string>; protocols?: string[] } = {},
): Promise<TestClient> {
  const client = new TestClient(url, options);
  t.after(() => client.close());
  await client.opened;
  return client;
}

/**
 * The value of one sample in Prometheus text: `name` with exactly `labels` (order-insensitive). `undefined` when
 * the series is absent.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = (match[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter((s) => s !== '')
      .sort()
      .join(',');
    if (have === wanted) return Number(match[3]);
  }
  return undefined;
}

/** `GET /metrics` of a server. */
export async function scrape(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(WAIT_MS) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}
