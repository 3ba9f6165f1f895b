/**
 * Issue 10 item 13: the defaults let legitimate use through: 200 dashboards behind one address connect, and a
 * client may send 100 frames back to back; tightening stays one flag away.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, ServerMessageType } from '../../src/protocol/messages.js';
import { parseServeArgs } from '../../src/app/cli-args.js';
import { DEFAULT_LIMITS } from '../../src/security/limits.js';
import { startServer } from '../helpers/servers.js';
import { openClient } from './helpers.js';

describe('default limits', () => {
  it('200 WebSocket connections from one address, opened at once, are all accepted', async (t) => {
    const server = await startServer(t);
    const clients = await Promise.all(Array.from({ length: 200 }, () => openClient(t, server.wsUrl)));
    assert.equal(clients.length, 200);
    assert.equal(server.service.getClientCount(), 200);
  });

  it('a burst of 100 frames back to back is answered in full, none RATE_LIMITED', async (t) => {
    const server = await startServer(t);
    const client = await openClient(t, server.wsUrl);
    await client.nextOfType(ServerMessageType.Snapshot);
    for (let id = 0; id < 100; id++) client.send({ type: 'ping', id });
    const replies = await client.nextOfType(ServerMessageType.Pong, 100);
    assert.deepEqual(
      replies.map((m) => (m.data as { id: number }).id),
      Array.from({ length: 100 }, (_, id) => id),
    );
    const limited = client.received.filter(
      (m) =>
        m.type === ServerMessageType.Error && (m.data as { code?: string }).code === ErrorCode.RateLimited,
    );
    assert.equal(limited.length, 0);
  });

  it('the CLI defaults match, and one flag tightens each', () => {
    const defaults = parseServeArgs([], {});
    assert.equal(defaults.help, false);
    if (defaults.help) return;
    assert.equal(defaults.options.maxConnectionsPerIp, undefined, 'the library default applies');
    assert.ok(DEFAULT_LIMITS.maxConnectionsPerIp >= 1000);
    const rate = defaults.options.rateLimit;
    assert.ok(rate !== false && rate !== undefined && (rate.burst ?? 0) >= 100, JSON.stringify(rate));
    const tight = parseServeArgs(
      ['--max-connections-per-ip', '5', '--rate-burst', '10', '--max-pending-per-ip', '8'],
      {},
    );
    if (tight.help) return assert.fail('help');
    assert.equal(tight.options.maxConnectionsPerIp, 5);
    assert.deepEqual(tight.options.rateLimit, { ratePerSec: DEFAULT_LIMITS.ratePerSec, burst: 10 });
    assert.equal(tight.options.maxPendingPerIp, 8);
    const env = parseServeArgs([], { CITYPULSE_MAX_CONNECTIONS_PER_IP: '7', CITYPULSE_METRICS_PORT: '9100' });
    if (env.help) return assert.fail('help');
    assert.equal(env.options.maxConnectionsPerIp, 7);
    assert.equal(env.options.metricsPort, 9100);
  });
});
