/**
 * Issue 10 item 3 (and 11): with auth on, every HTTP read of topic data needs a credential: a connection JWT
 * (filtered to its topics) or a publish key; `/metrics` on the main port needs a key; `/healthz` and `/readyz` stay
 * public. Every protected surface x every class of credential, in single-node and in cluster mode.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { CityPulseServer } from '../../src/app/create-server.js';
import { startServer } from '../helpers/servers.js';
import { REDIS_URL, redisUp, startNode, testPrefix } from '../cluster/helpers.js';
import { tryUpgrade } from '../ops/helpers.js';
import { SECRET, mint } from './tokens.js';

const KEY = 'read-access-publish-key';
const TOPICS = ['accidents', 'airQuality', 'cameras', 'weather'];

type Credential =
  | 'none'
  | 'wrong'
  | 'expired'
  | 'bad-signature'
  | 'other-topic'
  | 'weather-only'
  | 'all-topics'
  | 'all-topics, lower-case scheme'
  | 'publish key'
  | 'publish key, upper-case scheme';

/** The Authorization header of each credential class. */
async function credentials(): Promise<Record<Credential, string | undefined>> {
  const token = (
    topics: string[],
    options: Parameters<typeof mint>[2] = {},
    secret = SECRET,
  ): Promise<string> => mint({ topics }, { secret }, options);
  return {
    none: undefined,
    wrong: 'Bearer not-a-token-nor-a-key',
    expired: `Bearer ${await token(['*'], { expiresAt: Date.now() - 60_000 })}`,
    'bad-signature': `Bearer ${await token(['*'], {}, `${SECRET.slice(1)}x`)}`,
    'other-topic': `Bearer ${await token(['parking*'])}`,
    'weather-only': `Bearer ${await token(['weather'])}`,
    'all-topics': `Bearer ${await token(['*'])}`,
    'all-topics, lower-case scheme': `bearer ${await token(['*'])}`,
    'publish key': `Bearer ${KEY}`,
    'publish key, upper-case scheme': `BEARER ${KEY}`,
  };
}

/** What a topic-data read answers for each credential: a status, and for 200 the topics it may show. */
const EXPECTED: Record<Credential, { status: number; topics?: string[] }> = {
  none: { status: 401 },
  wrong: { status: 401 },
  expired: { status: 401 },
  'bad-signature': { status: 401 },
  'other-topic': { status: 403 },
  'weather-only': { status: 200, topics: ['weather'] },
  'all-topics': { status: 200, topics: TOPICS },
  'all-topics, lower-case scheme': { status: 200, topics: TOPICS },
  'publish key': { status: 200, topics: TOPICS },
  'publish key, upper-case scheme': { status: 200, topics: TOPICS },
};

/** `/metrics` on the main port with auth on: a publish key only. */
const EXPECTED_METRICS: Record<Credential, number> = {
  none: 401,
  wrong: 403,
  expired: 403,
  'bad-signature': 403,
  'other-topic': 403,
  'weather-only': 403,
  'all-topics': 403,
  'all-topics, lower-case scheme': 403,
  'publish key': 200,
  'publish key, upper-case scheme': 200,
};

/** The protected reads, and the topics a 200 answer shows. */
const SURFACES: Record<string, (body: Record<string, unknown>) => string[]> = {
  '/api/snapshot': (body) => Object.keys(body).sort(),
  '/api/stats': (body) => Object.keys(body.topics as Record<string, number>).sort(),
  '/api/alerts': () => [], // no alert rules here: only the status is checked
  '/api/topics': (body) => (body.topics as { name: string }[]).map((info) => info.name).sort(),
};

async function get(
  url: string,
  authorization?: string,
): Promise<{ status: number; body: Record<string, unknown>; wwwAuthenticate: string | null }> {
  const res = await fetch(url, {
    headers: authorization === undefined ? {} : { authorization },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  const body = res.headers.get('content-type')?.includes('json')
    ? (JSON.parse(text) as Record<string, unknown>)
    : {};
  return { status: res.status, body, wwwAuthenticate: res.headers.get('www-authenticate') };
}

async function checkSurfaces(server: CityPulseServer, cluster: boolean): Promise<void> {
  const creds = await credentials();
  const surfaces = { ...SURFACES };
  if (cluster) {
    surfaces['/api/stats?scope=cluster'] = (body) => {
      const perNode = body.perNode as { topics: Record<string, number> }[];
      const keys = Object.keys(body.topics as Record<string, number>).sort();
      for (const node of perNode)
        assert.deepEqual(Object.keys(node.topics).sort(), keys, 'perNode is filtered too');
      return keys;
    };
  }
  for (const [path, topicsOf] of Object.entries(surfaces)) {
    for (const [credential, header] of Object.entries(creds) as [Credential, string | undefined][]) {
      const expected = EXPECTED[credential];
      const res = await get(`${server.url}${path}`, header);
      const label = `${cluster ? 'cluster' : 'single-node'} ${path} with ${credential}`;
      assert.equal(res.status, expected.status, label);
      if (res.status === 401)
        assert.match(res.wwwAuthenticate ?? '', /^Bearer/, `${label}: WWW-Authenticate`);
      if (res.status !== 200) {
        assert.equal(typeof (res.body.error as { code?: unknown } | undefined)?.code, 'string', label);
        assert.equal(JSON.stringify(res.body).includes('"entities"'), false, `${label}: no data leaks`);
        continue;
      }
      if (path !== '/api/alerts') assert.deepEqual(topicsOf(res.body), expected.topics, label);
      else assert.ok(Array.isArray(res.body.alerts), label);
    }
  }
  for (const [credential, header] of Object.entries(creds) as [Credential, string | undefined][]) {
    const res = await get(`${server.url}/metrics`, header);
    assert.equal(res.status, EXPECTED_METRICS[credential], `/metrics with ${credential}`);
  }
  for (const path of ['/healthz', '/readyz']) {
    const res = await get(`${server.url}${path}`);
    assert.ok(res.status === 200 || res.status === 503, `${path} is public (got ${res.status})`);
  }
}

async function clusterNode(t: TestContext): Promise<CityPulseServer> {
  return startNode(t, { redisKeyPrefix: testPrefix(t), auth: { secret: SECRET }, publishKeys: [KEY] });
}

describe('HTTP reads with auth on', () => {
  it('single-node: every read surface x every credential class', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET }, publishKeys: [KEY] });
    await checkSurfaces(server, false);
  });

  it('cluster mode: the same rights on the endpoints cluster mode answers', async (t) => {
    if (!(await redisUp(REDIS_URL))) return t.skip(`no Redis at ${REDIS_URL}`);
    await checkSurfaces(await clusterNode(t), true);
  });

  it('/metrics on its own port needs no credential and is gone from the main port', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET }, publishKeys: [KEY], metricsPort: 0 });
    assert.ok(server.metricsUrl !== undefined);
    const scraped = await get(server.metricsUrl);
    assert.equal(scraped.status, 200);
    assert.equal((await get(`${server.url}/metrics`, `Bearer ${KEY}`)).status, 404);
    assert.equal(
      (await get(new URL('/api/snapshot', server.metricsUrl).href)).status,
      404,
      'nothing else there',
    );
  });

  it('the WebSocket upgrade takes every case of the Bearer scheme too (one parser)', async (t) => {
    const server = await startServer(t, { auth: { secret: SECRET } });
    const token = await mint({ topics: ['*'] }, { secret: SECRET });
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      const outcome = await tryUpgrade(server.wsUrl, [], {
        headers: { authorization: `${scheme} ${token}` },
      });
      assert.equal(outcome.opened, true, scheme);
    }
    const refused = await tryUpgrade(server.wsUrl, [], { headers: { authorization: `Basic ${token}` } });
    assert.equal(refused.opened, false, 'another scheme is no bearer token');
  });
});

describe('HTTP reads with auth off', () => {
  it('are public, with every topic, in single-node and cluster mode', async (t) => {
    const servers = [await startServer(t)];
    if (await redisUp(REDIS_URL)) servers.push(await startNode(t, { redisKeyPrefix: testPrefix(t) }));
    for (const server of servers) {
      for (const path of ['/api/snapshot', '/api/alerts', '/api/stats', '/metrics', '/healthz']) {
        assert.equal((await get(`${server.url}${path}`)).status, 200, path);
      }
      assert.deepEqual(Object.keys((await get(`${server.url}/api/snapshot`)).body).sort(), TOPICS);
    }
  });
});
