import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloseCode } from '../../src/protocol/messages.js';
import { createMetrics, serveMetrics, type Metrics } from '../../src/gateway/metrics.js';

/** The value of one sample line `name{labels} value` in an exposition, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const part of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[part[1]!] = part[2]!;
    if (
      Object.entries(labels).every(([k, v]) => found[k] === v) &&
      Object.keys(found).length === Object.keys(labels).length
    ) {
      return Number(match[3]);
    }
  }
  return undefined;
}

function withMetrics(t: { after: (fn: () => void) => void }, options = {}): Metrics {
  const metrics = createMetrics(options);
  t.after(() => metrics.close());
  return metrics;
}

describe('createMetrics', () => {
  it('two instances in one process do not clash and count separately', async (t) => {
    const a = withMetrics(t);
    const b = withMetrics(t);
    a.connectionOpened();
    a.connectionOpened();
    b.connectionOpened();
    assert.equal(sample(await a.render(), 'citypulse_connections'), 2);
    assert.equal(sample(await b.render(), 'citypulse_connections'), 1);
  });

  it('counts connections opened and closed by code; foreign codes are "other"', async (t) => {
    const m = withMetrics(t);
    for (let i = 0; i < 4; i++) m.connectionOpened();
    m.connectionClosed(CloseCode.Normal);
    m.connectionClosed(CloseCode.TokenExpired);
    m.connectionClosed(3999);
    const text = await m.render();
    assert.equal(sample(text, 'citypulse_connections'), 1);
    assert.equal(sample(text, 'citypulse_connections_opened_total'), 4);
    assert.equal(sample(text, 'citypulse_connections_closed_total', { code: '1000' }), 1);
    assert.equal(sample(text, 'citypulse_connections_closed_total', { code: '4401' }), 1);
    assert.equal(sample(text, 'citypulse_connections_closed_total', { code: 'other' }), 1);
    assert.equal(sample(text, 'citypulse_connections_closed_total', { code: '3999' }), undefined);
  });

  it('counts upgrade rejections; auth rejections also count as auth failures', async (t) => {
    const m = withMetrics(t);
    m.upgradeRejected('auth', 'expired');
    m.upgradeRejected('auth', 'expired');
    m.upgradeRejected('limit', 'max-connections-per-ip');
    m.authFailure('bad-signature');
    m.tokenExpired();
    const text = await m.render();
    assert.equal(sample(text, 'citypulse_upgrades_rejected_total', { stage: 'auth', reason: 'expired' }), 2);
    assert.equal(
      sample(text, 'citypulse_upgrades_rejected_total', { stage: 'limit', reason: 'max-connections-per-ip' }),
      1,
    );
    assert.equal(sample(text, 'citypulse_auth_failures_total', { reason: 'expired' }), 2);
    assert.equal(sample(text, 'citypulse_auth_failures_total', { reason: 'bad-signature' }), 1);
    assert.equal(
      sample(text, 'citypulse_auth_failures_total', { reason: 'max-connections-per-ip' }),
      undefined,
    );
    assert.equal(sample(text, 'citypulse_token_expired_closes_total'), 1);
  });

  it('counts messages out once per recipient and bytes per recipient', async (t) => {
    const m = withMetrics(t);
    m.messagesOut('UPDATE', 'weather', 3, 100);
    m.messagesOut('UPDATE', 'weather', 2, 50);
    m.messagesOut('ALERT', undefined, 4, 10);
    m.messagesOut('UPDATE', 'weather', 0, 1000); // nobody: nothing counted
    const text = await m.render();
    assert.equal(sample(text, 'citypulse_messages_out_total', { type: 'UPDATE', topic: 'weather' }), 5);
    assert.equal(sample(text, 'citypulse_messages_out_total', { type: 'ALERT', topic: '*' }), 4);
    assert.equal(sample(text, 'citypulse_bytes_out_total'), 3 * 100 + 2 * 50 + 4 * 10);
  });

  it('counts messages in by type, unknown types as "other"', async (t) => {
    const m = withMetrics(t);
    m.messageIn('subscribe');
    m.messageIn('subscribe');
    m.messageIn('invalid');
    m.messageIn('x'.repeat(1000));
    const text = await m.render();
    assert.equal(sample(text, 'citypulse_messages_in_total', { type: 'subscribe' }), 2);
    assert.equal(sample(text, 'citypulse_messages_in_total', { type: 'invalid' }), 1);
    assert.equal(sample(text, 'citypulse_messages_in_total', { type: 'other' }), 1);
  });

  it('caps distinct topic labels', async (t) => {
    const m = withMetrics(t, { maxTopicLabels: 3 });
    for (let i = 0; i < 10; i++) m.messagesOut('UPDATE', `t${i}`, 1, 1);
    const text = await m.render();
    assert.equal(sample(text, 'citypulse_messages_out_total', { type: 'UPDATE', topic: 't2' }), 1);
    assert.equal(sample(text, 'citypulse_messages_out_total', { type: 'UPDATE', topic: 't3' }), undefined);
    assert.equal(sample(text, 'citypulse_messages_out_total', { type: 'UPDATE', topic: 'other' }), 7);
  });

  it('counts drops, slow consumers, rate limiting and heartbeat terminations', async (t) => {
    const m = withMetrics(t);
    m.dropped('conflated', 'cameras', 5);
    m.dropped('overflow', 'cameras');
    m.dropped('conflated', 'cameras', 0);
    m.slowConsumer('snapshot');
    m.slowConsumer('close');
    m.rateLimited(false);
    m.rateLimited(true);
    m.heartbeatTerminated();
    const text = await m.render();
    assert.equal(
      sample(text, 'citypulse_messages_dropped_total', { reason: 'conflated', topic: 'cameras' }),
      5,
    );
    assert.equal(
      sample(text, 'citypulse_messages_dropped_total', { reason: 'overflow', topic: 'cameras' }),
      1,
    );
    assert.equal(sample(text, 'citypulse_slow_consumer_actions_total', { action: 'snapshot' }), 1);
    assert.equal(sample(text, 'citypulse_slow_consumer_actions_total', { action: 'close' }), 1);
    assert.equal(sample(text, 'citypulse_rate_limited_total'), 2);
    assert.equal(sample(text, 'citypulse_rate_limit_closes_total'), 1);
    assert.equal(sample(text, 'citypulse_heartbeat_terminations_total'), 1);
  });

  it('reads subscriptions per topic at scrape time and forgets topics that went away', async (t) => {
    const m = withMetrics(t);
    let counts: [string, number][] = [
      ['weather', 3],
      ['cameras', 1],
    ];
    m.bindSubscriptions(() => counts);
    let text = await m.render();
    assert.equal(sample(text, 'citypulse_subscriptions', { topic: 'weather' }), 3);
    assert.equal(sample(text, 'citypulse_subscriptions', { topic: 'cameras' }), 1);
    counts = [['weather', 2]];
    text = await m.render();
    assert.equal(sample(text, 'citypulse_subscriptions', { topic: 'weather' }), 2);
    assert.equal(sample(text, 'citypulse_subscriptions', { topic: 'cameras' }), undefined);
  });

  it('observes publish latency per topic', async (t) => {
    const m = withMetrics(t);
    const started = m.publishStarted();
    m.publishFinished('weather', started);
    m.publishFinished('weather', started - 2000); // 2 s ago: beyond the last bucket
    const text = await m.render();
    assert.equal(sample(text, 'citypulse_publish_latency_seconds_count', { topic: 'weather' }), 2);
    assert.equal(sample(text, 'citypulse_publish_latency_seconds_bucket', { topic: 'weather', le: '1' }), 1);
    assert.equal(
      sample(text, 'citypulse_publish_latency_seconds_bucket', { topic: 'weather', le: '+Inf' }),
      2,
    );
  });

  it('reports event-loop lag and source health (read at scrape time)', async (t) => {
    const m = withMetrics(t);
    const at = Date.now() - 5000;
    let sources = [
      { name: 'simulator', healthy: true, lastSuccessAt: at },
      { name: 'open-meteo', healthy: false, lastSuccessAt: null },
    ];
    m.bindSources(() => sources);
    // Block the loop a little so the monitor has samples.
    const end = Date.now() + 30;
    while (Date.now() < end) {
      /* spin */
    }
    await new Promise((r) => setTimeout(r, 50));
    const text = await m.render();
    for (const stat of ['mean', 'p50', 'p99', 'max']) {
      const value = sample(text, 'citypulse_event_loop_lag_seconds', { stat });
      assert.ok(value !== undefined && value >= 0 && Number.isFinite(value), `${stat}: ${value}`);
    }
    assert.equal(sample(text, 'citypulse_source_up', { source: 'simulator' }), 1);
    assert.equal(sample(text, 'citypulse_source_up', { source: 'open-meteo' }), 0);
    assert.equal(sample(text, 'citypulse_source_last_update_seconds', { source: 'simulator' }), at / 1000);
    assert.equal(sample(text, 'citypulse_source_last_update_seconds', { source: 'open-meteo' }), undefined);
    sources = [{ name: 'open-meteo', healthy: true, lastSuccessAt: at }];
    const later = await m.render();
    assert.equal(
      sample(later, 'citypulse_source_up', { source: 'simulator' }),
      undefined,
      'gone sources vanish',
    );
    assert.equal(sample(later, 'citypulse_source_up', { source: 'open-meteo' }), 1);
  });

  it('honours prefix and default labels, and adds process metrics on request', async (t) => {
    const m = withMetrics(t, { prefix: 'gw_', defaultLabels: { node: 'n1' }, processMetrics: true });
    m.connectionOpened();
    const text = await m.render();
    assert.equal(sample(text, 'gw_connections', { node: 'n1' }), 1);
    assert.match(text, /^process_cpu_user_seconds_total/m);
    assert.match(text, /^nodejs_heap_size_used_bytes/m);
    assert.doesNotMatch(text, /citypulse_/);
  });

  it('has the Prometheus content type; close is idempotent and empties the registry', async () => {
    const m = createMetrics();
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
    m.close();
    m.close();
    assert.equal(await m.render(), '\n');
    m.connectionOpened(); // still safe to call after close
  });
});

describe('serveMetrics', () => {
  it('answers GET /metrics over HTTP', async (t) => {
    const m = withMetrics(t);
    m.connectionOpened();
    const server = createServer((req, res) => void serveMetrics(m, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise((resolve) => server.close(resolve)));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), m.contentType);
    assert.equal(sample(await res.text(), 'citypulse_connections'), 1);
  });
});
