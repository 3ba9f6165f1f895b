/**
 * The package as a user imports it: the built `dist/` through the `exports` map (`citypulse`, `citypulse/client`,
 * `citypulse/protocol`), in a plain Node process without the TypeScript loader. `npm test` builds first.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

test('the exports map serves the library, the client SDK and the protocol from dist/', () => {
  assert.ok(existsSync('dist/index.js'), 'dist/ is missing: run `npm run build` first');
  const script = `
    const lib = await import('citypulse');
    const client = await import('citypulse/client');
    const protocol = await import('citypulse/protocol');
    const out = {
      lib: ['WebSocketService', 'createServer', 'DataAggregator', 'createSimulator', 'parseClientMessage']
        .filter((name) => typeof lib[name] !== 'function'),
      client: typeof client.createClient,
      protocol: protocol.PROTOCOL_VERSION,
    };
    const server = await lib.createServer({ port: 0, source: 'simulator', simulatorIntervalMs: 50 });
    const { WebSocket } = await import('ws');
    const c = client.createClient({ url: server.wsUrl, WebSocket, topics: ['weather'] });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no weather state')), 10000);
      c.subscribe('weather', () => {
        if (c.state('weather').size > 0) { clearTimeout(timer); resolve(); }
      });
    });
    c.close();
    await server.close();
    console.log(JSON.stringify(out));
  `;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}'), {
    lib: [],
    client: 'function',
    protocol: 1,
  });
});
