/**
 * Issue 10 item 12: logs piped into a reader that goes away (`citypulse serve | head`) never hang or crash the
 * server. The CLI runs as a real child process with stdout on a pipe whose reader closes (after the first line, or
 * before anything is written); the server keeps serving while every log line meets EPIPE, and SIGINT still ends it
 * with code 0 within its forced-exit deadline.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { connect } from '../helpers/test-client.js';

/** The CLI's forced-exit deadline (src/app/cli.ts) plus room for a loaded machine: a bound, not a timing assertion. */
const EXIT_BOUND_MS = 20_000;

function spawnCli(t: TestContext, port: number): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/app/cli.ts',
      'serve',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--source',
      'simulator',
      '--log-level',
      'debug', // as many log lines as possible, each one an EPIPE once the reader is gone
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, exited };
}

async function freePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Polls `GET /healthz` until it answers 200 (bounded in count and time). */
async function waitHealthy(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    assert.equal(child.exitCode, null, 'the server exited');
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the server never became healthy');
}

/** Exit code within the bound, or a failure naming the bound. */
async function exitWithin(exited: Promise<number | null>, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  const outcome = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  assert.notEqual(outcome, 'timeout', `the process did not exit within ${ms} ms of SIGINT`);
  return outcome as number | null;
}

/** Traffic that logs (connects, disconnects), then proves the server still serves. */
async function exercise(port: number): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const { client, connected, snapshot } = await connect(`ws://127.0.0.1:${port}/ws`);
    assert.equal(connected.type, 'CONNECTED');
    assert.equal(snapshot.type, 'SNAPSHOT');
    client.ws.close();
    await client.closed;
  }
  const res = await fetch(`http://127.0.0.1:${port}/api/stats`);
  assert.equal(res.status, 200);
}

test('serve | head: the reader closes after the first line; the server keeps serving and SIGINT exits 0', async (t) => {
  const port = await freePort();
  const { child, exited } = spawnCli(t, port);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-10_000);
  });
  // `head -1`: read up to the first newline, then close the read end of the pipe.
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('\n')) {
        child.stdout?.off('data', onData);
        child.stdout?.destroy();
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code} before its first line: ${stderr}`)));
  });
  await waitHealthy(port, child);
  await exercise(port);
  assert.equal(child.exitCode, null, `the server died: ${stderr}`);
  child.kill('SIGINT');
  assert.equal(await exitWithin(exited, EXIT_BOUND_MS), 0, stderr);
});

test('serve with stdout already closed at start: no crash, it serves, and SIGINT exits 0', async (t) => {
  const port = await freePort();
  const { child, exited } = spawnCli(t, port);
  child.stdout?.destroy(); // before the process has written anything
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-10_000);
  });
  await waitHealthy(port, child);
  await exercise(port);
  assert.equal(child.exitCode, null, `the server died: ${stderr}`);
  child.kill('SIGINT');
  assert.equal(await exitWithin(exited, EXIT_BOUND_MS), 0, stderr);
});
