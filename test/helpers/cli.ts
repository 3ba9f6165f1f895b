/** Runs `citypulse serve` as a child process (through the tsx loader), for tests of the CLI and of killed nodes. */
import { spawn, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';

/** A running `citypulse serve` process. */
export interface CliProcess {
  readonly port: number;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** `ws://127.0.0.1:PORT/ws`. */
  readonly wsUrl: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** What the process wrote to stderr so far (the last 20 kB), for failure messages. */
  readonly stderr: () => string;
}

/**
 * Starts `citypulse serve --port 0 --host 127.0.0.1 --log-level <level> ...args` and waits (bounded) for its
 * "serving on" line. The process is SIGKILLed after the test unless it already exited.
 */
export async function startCli(
  t: TestContext,
  args: readonly string[],
  options: { timeoutMs?: number; logLevel?: string } = {},
): Promise<CliProcess> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/app/cli.ts',
      'serve',
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--log-level',
      options.logLevel ?? 'warn',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`citypulse did not start within ${timeoutMs} ms: ${err}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /serving on http:\/\/[^:]+:(\d+)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`citypulse exited with ${code}: ${err}`));
    });
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    child,
    exited,
    stderr: () => err,
  };
}
