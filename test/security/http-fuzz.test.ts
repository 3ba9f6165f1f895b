/**
 * Issue 10 item 1: nothing a stranger sends over HTTP reaches the process. The request-target parser is checked
 * against a table; then the real CLI is run in single-node and in cluster mode and fed, over raw sockets, a table
 * of hostile request lines, targets, headers, methods and bodies (the classes of `HARDENING.md`) and a bounded
 * random generator of requests, after which the process must still be alive and serving.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { parseRequestTarget } from '../../src/adapters/http-guard.js';
import { startCli, type CliProcess } from '../helpers/cli.js';
import { REDIS_URL, redisUp, testPrefix } from '../cluster/helpers.js';
import { SECRET } from './tokens.js';

const KEY = 'fuzz-publish-key-123';

describe('parseRequestTarget', () => {
  const cases: [string | undefined, string | null][] = [
    ['/', '/'],
    ['/api/stats?scope=cluster', '/api/stats'],
    ['//[', '//['],
    ['//evil.example/api/snapshot', '//evil.example/api/snapshot'],
    ['/%zz', '/%zz'],
    ['/ü', '/%C3%BC'],
    ['http://localhost:8080/api/stats', '/api/stats'],
    ['HTTPS://x/ws?token=1', '/ws'],
    ['http://[', null],
    ['http://x:70000/api/stats', null],
    ['http://%zz/', null],
    ['http://[::1/api', null],
    ['*', null],
    ['', null],
    [undefined, null],
    ['api/stats', null],
    ['ftp://x/', null],
    ['localhost:80', null],
  ];
  for (const [target, pathname] of cases) {
    it(`${JSON.stringify(target)} -> ${pathname ?? 'null (400)'}`, () => {
      assert.equal(parseRequestTarget(target)?.pathname ?? null, pathname);
    });
  }

  it('never throws, whatever the string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.webUrl()), (target) => {
        parseRequestTarget(target);
        parseRequestTarget(`/${target}`);
        parseRequestTarget(`http://${target}`);
      }),
      { numRuns: 2000 },
    );
  });
});

/** Whether `data` holds a complete HTTP response head and (by `Content-Length`) body. */
function completeResponse(data: Buffer): boolean {
  const end = data.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const head = data.subarray(0, end).toString('latin1');
  if (/^HTTP\/1\.1 101/.test(head)) return true;
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  return length !== null && data.length - end - 4 >= Number(length[1]);
}

/**
 * Sends `bytes` on a fresh socket and resolves with what came back: once a complete response arrived, or the
 * server closed the connection. A request the server is still waiting on after `graceMs` is half-closed (the
 * server then answers what it can and closes). Bounded by `ms`.
 */
function exchange(
  port: number,
  bytes: Buffer,
  ms = 5000,
  graceMs = 300,
): Promise<{ response: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      socket.destroy();
      resolve({ response: Buffer.concat(chunks).toString('latin1'), timedOut });
    };
    const timer = setTimeout(() => done(true), ms);
    const grace = setTimeout(() => socket.end(), graceMs);
    socket.on('data', (chunk: Buffer) => {
      if (size < 64 * 1024) chunks.push(chunk);
      size += chunk.length;
      if (completeResponse(Buffer.concat(chunks))) done(false);
    });
    socket.on('error', () => {});
    socket.on('close', () => done(false));
    socket.on('connect', () => socket.write(bytes));
  });
}

const CRLF = '\r\n';
const req = (line: string, headers: string[] = ['Host: x'], body = ''): Buffer =>
  Buffer.from(`${line}${CRLF}${headers.map((h) => h + CRLF).join('')}${CRLF}${body}`, 'latin1');
const UPGRADE = [
  'Host: x',
  'Upgrade: websocket',
  'Connection: Upgrade',
  'Sec-WebSocket-Version: 13',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
];
const json = '{"topic":"weather","type":"ALERT","data":{"m":1}}';
const auth = `Authorization: Bearer ${KEY}`;

/** One case per line: a name, the bytes, and the statuses an answer may have ([] = any, or none at all). */
const TABLE: [string, Buffer, number[]][] = [
  // Request lines and targets.
  ['origin-form //[', req('GET //[ HTTP/1.1'), [404]],
  ['absolute-form http://[', req('GET http://[ HTTP/1.1'), [400]],
  ['absolute-form bad port', req('GET http://x:70000/api/stats HTTP/1.1'), [400]],
  ['absolute-form bad percent-escape in host', req('GET http://%zz/ HTTP/1.1'), [400]],
  ['absolute-form unclosed IPv6', req('GET http://[::1/api/snapshot HTTP/1.1'), [400]],
  ['absolute-form good', req('GET http://localhost/healthz HTTP/1.1'), [200]],
  ['asterisk-form', req('OPTIONS * HTTP/1.1'), [400]],
  ['authority-form CONNECT', req('CONNECT localhost:80 HTTP/1.1'), []],
  ['bad percent-escape in path', req('GET /%zz HTTP/1.1'), [400, 404]],
  ['traversal', req('GET /..%2f..%2f..%2fetc%2fpasswd HTTP/1.1'), [400, 403, 404]],
  ['NUL in target', req('GET /api/stats\0 HTTP/1.1'), [400]],
  ['very long target', req(`GET /${'a'.repeat(70_000)} HTTP/1.1`), [400, 414, 431]],
  [
    'non-ASCII target',
    Buffer.concat([
      Buffer.from('GET /'),
      Buffer.from('ü€😀', 'utf8'),
      Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n'),
    ]),
    [400, 404],
  ],
  [
    'raw high bytes',
    Buffer.concat([
      Buffer.from('GET /'),
      Buffer.from([0xff, 0xfe, 0x80]),
      Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n'),
    ]),
    [400, 404],
  ],
  ['no version (HTTP/0.9 style)', Buffer.from('GET /healthz\r\n\r\n'), [200, 400]],
  ['HTTP/0.9', req('GET /healthz HTTP/0.9'), [200, 400, 505]],
  ['HTTP/2.0 line', req('GET /healthz HTTP/2.0'), [200, 400, 505]],
  ['garbage line', Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'), [400]],
  ['empty lines then request', Buffer.from('\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'), [200, 400]],
  // Methods.
  ['lower-case method', req('get /healthz HTTP/1.1'), [400]],
  ['unknown method', req('FOO /healthz HTTP/1.1'), [400, 405]],
  ['DELETE on a route', req('DELETE /api/snapshot HTTP/1.1'), [405]],
  ['very long method', req(`${'A'.repeat(5000)} / HTTP/1.1`), [400]],
  // Upgrades with hostile targets and headers.
  ['upgrade //[', req('GET //[ HTTP/1.1', UPGRADE), [404]],
  ['upgrade http://[', req('GET http://[ HTTP/1.1', UPGRADE), [400]],
  ['upgrade bad port', req('GET http://x:70000/ws HTTP/1.1', UPGRADE), [400]],
  ['upgrade absolute-form good', req('GET http://localhost/ws HTTP/1.1', UPGRADE), [101, 401]],
  ['upgrade %zz token', req('GET /ws?token=%zz HTTP/1.1', UPGRADE), [101, 401]],
  [
    'upgrade bad key',
    req('GET /ws HTTP/1.1', [
      'Host: x',
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: !!',
    ]),
    [400, 401],
  ],
  ['upgrade with a body', req('GET /ws HTTP/1.1', [...UPGRADE, 'Content-Length: 5'], 'hello'), []],
  [
    'upgrade with a huge Origin',
    req('GET /ws HTTP/1.1', [...UPGRADE, `Origin: http://${'a'.repeat(10_000)}`]),
    [101, 401, 403, 431],
  ],
  ['upgrade bad Origin', req('GET /ws HTTP/1.1', [...UPGRADE, 'Origin: http://[']), [101, 401, 403]],
  [
    'upgrade bad X-Forwarded-For',
    req('GET /ws HTTP/1.1', [...UPGRADE, 'X-Forwarded-For: [[,,%zz']),
    [101, 401],
  ],
  // Headers.
  [
    'duplicate Content-Length',
    req('POST /api/publish HTTP/1.1', ['Host: x', auth, 'Content-Length: 5', 'Content-Length: 6'], json),
    [400],
  ],
  [
    'CL + TE',
    req(
      'POST /api/publish HTTP/1.1',
      ['Host: x', auth, 'Content-Length: 4', 'Transfer-Encoding: chunked'],
      '0\r\n\r\n',
    ),
    [400],
  ],
  [
    'TE twice',
    req(
      'POST /api/publish HTTP/1.1',
      ['Host: x', auth, 'Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
      '0\r\n\r\n',
    ),
    [400],
  ],
  ['TE gzip', req('POST /api/publish HTTP/1.1', ['Host: x', auth, 'Transfer-Encoding: gzip'], 'xx'), [400]],
  [
    'negative Content-Length',
    req('POST /api/publish HTTP/1.1', ['Host: x', auth, 'Content-Length: -1'], json),
    [400],
  ],
  [
    'huge Content-Length',
    req('POST /api/publish HTTP/1.1', ['Host: x', auth, 'Content-Length: 99999999999999999999999'], json),
    [400, 413],
  ],
  ['obs-fold', req('GET /api/stats HTTP/1.1', ['Host: x', 'X-A: a', ' folded']), [200, 400, 401]],
  ['missing Host', req('GET /healthz HTTP/1.1', []), [200, 400]],
  ['duplicate Host', req('GET /healthz HTTP/1.1', ['Host: a', 'Host: b']), [200, 400]],
  ['header without colon', req('GET /healthz HTTP/1.1', ['Host: x', 'garbage']), [400]],
  ['NUL in header', req('GET /healthz HTTP/1.1', ['Host: x', 'X-A: a\0b']), [400]],
  ['huge header', req('GET /healthz HTTP/1.1', ['Host: x', `X-A: ${'a'.repeat(100_000)}`]), [431]],
  [
    'thousands of headers',
    req('GET /healthz HTTP/1.1', ['Host: x', ...Array.from({ length: 3000 }, (_, i) => `X-${i}: ${i}`)]),
    [200, 431],
  ],
  [
    'duplicate Authorization',
    req('GET /api/snapshot HTTP/1.1', ['Host: x', auth, 'Authorization: Bearer other']),
    [200, 401, 403],
  ],
  [
    'huge Authorization',
    req('GET /api/snapshot HTTP/1.1', ['Host: x', `Authorization: Bearer ${'a'.repeat(15_000)}`]),
    [200, 401, 431],
  ],
  [
    'Authorization without credential',
    req('GET /api/snapshot HTTP/1.1', ['Host: x', 'Authorization: Bearer']),
    [200, 401],
  ],
  // Bodies.
  ['invalid JSON', req('POST /api/publish HTTP/1.1', ['Host: x', auth, 'Content-Length: 5'], '{{{{{'), [400]],
  [
    'invalid UTF-8',
    Buffer.concat([
      req('POST /api/publish HTTP/1.1', ['Host: x', auth, 'Content-Length: 4']),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
    ]),
    [400],
  ],
  [
    'wrong content type',
    req(
      'POST /api/publish HTTP/1.1',
      ['Host: x', auth, 'Content-Type: text/plain', `Content-Length: ${json.length}`],
      json,
    ),
    [202, 400, 415],
  ],
  [
    'bad chunk size',
    req(
      'POST /api/publish HTTP/1.1',
      ['Host: x', auth, 'Transfer-Encoding: chunked'],
      'zz\r\nhello\r\n0\r\n\r\n',
    ),
    [400],
  ],
  [
    'chunked without end',
    req('POST /api/publish HTTP/1.1', ['Host: x', auth, 'Transfer-Encoding: chunked'], '5\r\n{"a":'),
    [400, 408],
  ],
  [
    'body shorter than declared',
    req('POST /api/publish HTTP/1.1', ['Host: x', auth, 'Content-Length: 500'], json),
    [400, 408],
  ],
  [
    'body without a key',
    req('POST /api/publish HTTP/1.1', ['Host: x', 'Content-Length: 100000000000'], json),
    [401],
  ],
  [
    'pipelined requests',
    Buffer.concat([req('GET /healthz HTTP/1.1'), req('GET //[ HTTP/1.1'), req('GET http://[ HTTP/1.1')]),
    [200],
  ],
];

function statusOf(response: string): number | null {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(response);
  return match === null ? null : Number(match[1]);
}

/** The random requests: a method, target, version, headers and body, each from hostile fragments or noise. */
const arbitraryRequest = fc
  .record({
    method: fc.oneof(
      fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'OPTIONS', 'DELETE', 'CONNECT', 'PATCH'),
      fc.string({ maxLength: 12 }),
    ),
    target: fc.oneof(
      fc.constantFrom(
        '/',
        '/ws',
        '/api/stats?scope=cluster',
        '/api/snapshot',
        '/api/alerts',
        '/metrics',
        '/api/publish',
        '/readyz',
        '*',
      ),
      fc
        .tuple(
          fc.constantFrom('/', '//', 'http://', 'https://', 'http://[', 'http://x:', '/ws?token=', '/api/'),
          fc.string({ unit: 'binary', maxLength: 40 }),
        )
        .map(([a, b]) => a + b),
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc.string({ unit: 'grapheme', maxLength: 60 }),
    ),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/9.9', ''),
    headers: fc.array(
      fc.oneof(
        fc.constantFrom(
          'Host: x',
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Connection: close',
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          'Transfer-Encoding: chunked',
          'Content-Length: 10',
          'Content-Length: 99999999999',
          auth,
          'Authorization: bearer x',
          'Expect: 100-continue',
          ' obs-fold',
          'Origin: null',
          'X-Forwarded-For: ::ffff:1.2.3.4',
        ),
        fc
          .tuple(fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 200 }))
          .map(([k, v]) => `${k}: ${v}`),
      ),
      { maxLength: 12 },
    ),
    body: fc.oneof(
      fc.constant(''),
      fc.constant(json),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.constant('0\r\n\r\n'),
    ),
  })
  .map(({ method, target, version, headers, body }) =>
    Buffer.from(
      `${method} ${target} ${version}\r\n${headers.map((h) => h + CRLF).join('')}\r\n${body}`,
      'utf8',
    ),
  );

async function assertServing(cli: CliProcess, label: string): Promise<void> {
  assert.equal(
    cli.child.exitCode,
    null,
    `${label}: the process is alive (stderr: ${cli.stderr().slice(-2000)})`,
  );
  assert.equal(cli.child.signalCode, null, `${label}: not killed`);
  const health = await fetch(`${cli.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(health.status, 200, `${label}: /healthz`);
  const ws = new WebSocket(`${cli.wsUrl}?topics=weather`, { headers: { authorization: `Bearer ${KEY}` } });
  ws.on('error', () => {});
  const outcome = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 10_000);
    ws.once('message', () => (clearTimeout(timer), resolve('frame')));
    ws.once(
      'unexpected-response',
      (_r, res) => (clearTimeout(timer), resolve(`http ${res.statusCode ?? 0}`)),
    );
    ws.once('close', () => (clearTimeout(timer), resolve('closed')));
  });
  ws.terminate();
  // With auth on the publish key is no connection token: the upgrade is answered 401, by a server that serves.
  assert.ok(
    outcome === 'frame' || outcome === 'http 401',
    `${label}: the WebSocket endpoint answers (${outcome})`,
  );
}

async function fuzzProcess(cli: CliProcess, label: string): Promise<void> {
  const mismatches: string[] = [];
  for (const [name, bytes, statuses] of TABLE) {
    const { response, timedOut } = await exchange(cli.port, bytes);
    const status = statusOf(response);
    if (timedOut) mismatches.push(`${name}: the server did not close the connection`);
    else if (statuses.length > 0 && (status === null || !statuses.includes(status))) {
      mismatches.push(
        `${name}: got ${String(status)} ${JSON.stringify(response.slice(0, 80))}, want ${statuses.join('|')}`,
      );
    }
    assert.equal(
      cli.child.exitCode,
      null,
      `${label} ${name}: the process survived (stderr: ${cli.stderr().slice(-2000)})`,
    );
  }
  assert.deepEqual(mismatches, [], label);
  await assertServing(cli, `${label} after the table`);
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(arbitraryRequest, async (bytes) => {
      runs += 1;
      const { timedOut } = await exchange(cli.port, bytes);
      assert.equal(timedOut, false, 'every connection ends within the request deadline');
      assert.equal(cli.child.exitCode, null, `the process survived (stderr: ${cli.stderr().slice(-2000)})`);
    }),
    { numRuns: 150, seed: 1010, endOnFailure: true },
  );
  assert.equal(runs >= 150, true);
  await assertServing(cli, `${label} after ${runs} random requests`);
}

const HARDENED = [
  '--source',
  'none',
  '--publish-key',
  KEY,
  '--headers-timeout',
  '1000',
  '--request-timeout',
  '2000',
];

describe('the HTTP surface of the real process, fuzzed over raw sockets', () => {
  it('single-node, auth off', async (t) => {
    const cli = await startCli(t, HARDENED);
    await fuzzProcess(cli, 'single-node');
  });

  it('cluster mode, auth on', async (t) => {
    if (!(await redisUp(REDIS_URL))) return t.skip(`no Redis at ${REDIS_URL}`);
    const cli = await startCli(t, [
      ...HARDENED,
      '--redis',
      REDIS_URL,
      '--redis-prefix',
      testPrefix(t),
      '--auth-secret',
      SECRET,
    ]);
    await fuzzProcess(cli, 'cluster');
  });
});
