import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { CloseCode } from '../../src/protocol/messages.js';
import { TestClient, connect } from '../helpers/test-client.js';
import { startServer } from '../helpers/servers.js';
import { startCli } from '../helpers/cli.js';

const CLI = ['--import', 'tsx', 'src/app/cli.ts'];

test('close() tells every client 1001 and is idempotent', async (t) => {
  const server = await startServer(t, { source: 'simulator', simulatorIntervalMs: 20 });
  const clients = await Promise.all([connect(server.wsUrl), connect(server.wsUrl, 'topics=weather')]);
  const first = server.close();
  assert.equal(server.close(), first);
  await first;
  for (const { client } of clients) assert.equal((await client.waitForClose()).code, CloseCode.GoingAway);
  assert.equal(server.service.getClientCount(), 0);
  await assert.rejects(fetch(`${server.url}/healthz`));
});

test('citypulse serve: starts, serves, and on SIGTERM closes clients with 1001 and exits 0', async (t) => {
  const cli = await startCli(t, ['--simulator-interval', '50'], { logLevel: 'silent', timeoutMs: 20_000 });
  const client = new TestClient(`${cli.wsUrl}?topics=weather`);
  await client.opened;
  assert.equal((await client.next()).type, 'CONNECTED');
  assert.equal((await client.next()).type, 'SNAPSHOT');
  assert.equal(
    (await client.next((m) => m.type === 'UPDATE', 5000)).type,
    'UPDATE',
    'the simulator publishes',
  );
  cli.child.kill('SIGTERM');
  assert.equal((await client.waitForClose()).code, CloseCode.GoingAway);
  assert.equal(await cli.exited, 0);
});

test('citypulse: bad flags exit 2 with a clear message; --help exits 0', () => {
  for (const args of [
    ['serve', '--port', 'abc'],
    ['serve', '--bogus'],
    ['serve', '--source', 'moon'],
    ['launch'],
    ['serve', '--heartbeat-interval', '100', '--heartbeat-timeout', '50'],
  ]) {
    const result = spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.status, 2, args.join(' '));
    assert.match(result.stderr, /^citypulse: .+\nRun "citypulse --help" for usage\.\n$/, args.join(' '));
  }
  const badConfig = spawnSync(
    process.execPath,
    [...CLI, 'serve', '--config', 'test/fixtures/no-such-config.json'],
    {
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  assert.equal(badConfig.status, 2);
  assert.match(
    badConfig.stderr,
    /^citypulse: test\/fixtures\/no-such-config\.json: cannot read the config file/,
  );
  const help = spawnSync(process.execPath, [...CLI, '--help'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--publish-key/);
  assert.match(help.stdout, /CITYPULSE_PUBLISH_KEY/);
});
