/**
 * `httpGet` (the pollers' HTTP client) over real sockets: the caller's headers follow a redirect on the same origin
 * only, and hostile `Location` headers are errors, not crashes.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { HttpError, httpGet } from '../../src/aggregator/sources/http-get.js';

interface Seen {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** A server answering each path with `answer` (default: 200 "ok"), recording every request. */
async function serve(
  t: TestContext,
  answer: (path: string, res: http.ServerResponse) => boolean = () => false,
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push({ path, headers: req.headers });
    if (!answer(path, res)) res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const SECRET_HEADERS = { 'x-api-key': 'operator-key', authorization: 'Bearer operator-token' };

test('configured headers follow same-origin redirects only', async (t) => {
  const other = await serve(t);
  const home = await serve(t, (path, res) => {
    const to: Record<string, string> = {
      '/same': '/final',
      '/cross': `${other.url}/landing`,
      '/cross-then-back': `${other.url}/back`,
    };
    const location = to[path];
    if (location === undefined) return false;
    res.writeHead(302, { location }).end();
    return true;
  });

  const same = await httpGet(`${home.url}/same`, { headers: SECRET_HEADERS });
  assert.equal(same.status, 200);
  assert.equal(same.url, `${home.url}/final`);
  const final = home.seen.find((s) => s.path === '/final');
  assert.equal(final?.headers['x-api-key'], 'operator-key');
  assert.equal(final?.headers.authorization, 'Bearer operator-token');

  const cross = await httpGet(`${home.url}/cross`, { headers: SECRET_HEADERS });
  assert.equal(cross.status, 200);
  assert.equal(cross.url, `${other.url}/landing`);
  const landing = other.seen.find((s) => s.path === '/landing');
  assert.ok(landing !== undefined);
  assert.equal(landing.headers['x-api-key'], undefined, 'no API key to another origin');
  assert.equal(landing.headers.authorization, undefined, 'no credentials to another origin');
  assert.equal(landing.headers['accept-encoding'], 'gzip, deflate, br');
});

test('hostile Location headers and redirect loops are HttpErrors', async (t) => {
  const locations: Record<string, string> = {
    '/bad-host': 'http://[',
    '/bad-port': 'http://127.0.0.1:99999/x',
    '/file': 'file:///etc/passwd',
    '/javascript': 'javascript:alert(1)',
    '/loop': '/loop',
  };
  const home = await serve(t, (path, res) => {
    const location = locations[path];
    if (location === undefined) return false;
    res.writeHead(301, { location }).end();
    return true;
  });
  for (const path of Object.keys(locations)) {
    await assert.rejects(httpGet(`${home.url}${path}`), HttpError, path);
  }
  // Still serving afterwards.
  assert.equal((await httpGet(`${home.url}/fine`)).status, 200);
});
