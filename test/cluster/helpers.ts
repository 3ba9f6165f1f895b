/**
 * Helpers of the cluster tests: a key prefix per test (deleted at the end), node processes started with the real
 * CLI, a throwaway Redis, and a recording client that checks per-topic order.
 */
import assert from 'node:assert/strict';
import { startCli, type CliProcess } from '../helpers/cli.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket, WebSocketServer } from 'ws';
import { RedisBroker } from '../../src/cluster/redis-broker.js';
import { WebSocketService, type WebSocketServiceOptions } from '../../src/gateway/websocket-service.js';
import {
  createServer,
  type CityPulseServer,
  type CityPulseServerOptions,
} from '../../src/app/create-server.js';

/** The machine's shared Redis (never restarted by these tests). */
export const REDIS_URL = process.env.CITYPULSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const KEY = 'cluster-test-key-0123456789';

/** Whether a `redis-server` binary is installed (the throwaway-Redis tests need one; CI installs it). */
export function redisServerInstalled(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('redis-server', ['--version'], { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

/** Whether a Redis answers at `url` (tests skip when none does). */
export async function redisUp(url = REDIS_URL): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** A fresh key prefix for this test; every key under it is deleted after the test. */
export function testPrefix(t: TestContext, url = REDIS_URL): string {
  const prefix = `citypulse-test:${randomBytes(6).toString('hex')}:`;
  // `after` hooks run in registration order, so this one would run before the nodes registered later are closed
  // (and a late write could recreate a key): delete once they are gone, twice to be sure.
  t.after(() => {
    setTimeout(() => void deletePrefix(url, prefix), 1000);
    setTimeout(() => void deletePrefix(url, prefix), 3000);
  });
  return prefix;
}

async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    let cursor = '0';
    let rounds = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0' && ++rounds < 10_000);
  } catch {
    // Redis gone (a throwaway one): nothing to clean.
  } finally {
    redis.disconnect();
  }
}

/** A Redis client for assertions, closed after the test. */
export function redisClient(t: TestContext, url = REDIS_URL): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  t.after(() => redis.disconnect());
  return redis;
}

/** An in-process cluster node. */
export async function startNode(t: TestContext, options: CityPulseServerOptions): Promise<CityPulseServer> {
  const server = await createServer({
    port: 0,
    source: 'none',
    publishKeys: [KEY],
    redisUrl: REDIS_URL,
    maxConnectionsPerIp: 10_000,
    ...options,
  });
  t.after(() => server.close());
  return server;
}

/**
 * A `WebSocketService` publishing through a `RedisBroker` on the machine's Redis under this test's key prefix, with
 * no HTTP server (for tests of the library publish path); closed after the test.
 */
export async function startRedisService(
  t: TestContext,
  options: Omit<WebSocketServiceOptions, 'broker'>,
): Promise<{ service: WebSocketService; broker: RedisBroker }> {
  const wss = new WebSocketServer({ noServer: true });
  const broker = new RedisBroker({ url: REDIS_URL, keyPrefix: testPrefix(t) });
  await broker.connect();
  const service = new WebSocketService(wss, { ...options, broker });
  t.after(async () => {
    await service.close();
    await broker.close();
    wss.close();
  });
  return { service, broker };
}

/** A node running as its own process (`citypulse serve` through tsx), so it can be SIGKILLed. */
export type NodeProcess = CliProcess;

/** Starts a cluster node process and waits for the line telling its port (bounded). */
export function startNodeProcess(
  t: TestContext,
  args: readonly string[],
  timeoutMs = 60_000,
): Promise<NodeProcess> {
  return startCli(t, ['--max-connections-per-ip', '10000', ...args], { timeoutMs });
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The shell that runs a throwaway `redis-server`: prints its pid, then waits for its own stdin to close (the test
 * closes it, or the test process dies) and kills it, so no redis-server outlives the test process even when that
 * process is killed before its cleanup runs.
 */
const WATCHDOG =
  'redis-server "$@" & r=$!; echo $r; read _; kill -CONT $r 2>/dev/null; kill -9 $r 2>/dev/null; wait $r';

/**
 * A throwaway `redis-server` (no automatic persistence) on its own port, which the test may kill (data lost), stop
 * keeping its data (`SHUTDOWN SAVE` to its own directory), freeze (SIGSTOP) and thaw, and restart. After the test it
 * is thawed, killed and its directory removed; a watchdog kills it if the test process dies first.
 */
export class ThrowawayRedis {
  #watchdog: ChildProcess | null = null;
  #pid = 0;
  readonly #dir = mkdtempSync(join(tmpdir(), 'citypulse-redis-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(t: TestContext): Promise<ThrowawayRedis> {
    const redis = new ThrowawayRedis(await freePort());
    t.after(async () => {
      await redis.kill();
      rmSync(redis.#dir, { recursive: true, force: true });
    });
    await redis.restart();
    return redis;
  }

  /** Starts it (again) and waits until it answers (bounded). */
  async restart(): Promise<void> {
    const args = [
      ...['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      ...['--dir', this.#dir, '--dbfilename', 'dump.rdb'],
    ];
    const watchdog = spawn('sh', ['-c', WATCHDOG, 'sh', ...args], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.#watchdog = watchdog;
    this.#pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      watchdog.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(Number.parseInt(out, 10));
      });
      watchdog.once('exit', () => reject(new Error('throwaway redis watchdog exited')));
    });
    const deadline = Date.now() + 10_000;
    while (!(await redisUp(this.url))) {
      if (Date.now() > deadline) throw new Error('throwaway redis did not start');
      await sleep(50);
    }
  }

  /** Kills it (SIGCONT, SIGKILL; no-op when not running); its data is lost: the next start is empty. */
  async kill(): Promise<void> {
    rmSync(join(this.#dir, 'dump.rdb'), { force: true });
    await this.#endWatchdog();
  }

  /** Stops it keeping its data (`SHUTDOWN SAVE`): the next `restart()` loads it. */
  async stopKeepingData(): Promise<void> {
    const admin = new Redis(this.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    admin.on('error', () => {});
    await admin.call('SHUTDOWN', 'SAVE').catch(() => {}); // the connection closes as it exits
    admin.disconnect();
    const deadline = Date.now() + 10_000;
    while (await redisUp(this.url)) {
      if (Date.now() > deadline) throw new Error('throwaway redis did not shut down');
      await sleep(25);
    }
    await this.#endWatchdog();
  }

  /** SIGSTOPs it: connections stay open, nothing is answered. */
  freeze(): void {
    if (this.#alive()) process.kill(this.#pid, 'SIGSTOP');
  }

  /** SIGCONTs it. */
  thaw(): void {
    if (this.#alive()) process.kill(this.#pid, 'SIGCONT');
  }

  #alive(): boolean {
    if (this.#watchdog === null || this.#pid === 0) return false;
    try {
      process.kill(this.#pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the watchdog's stdin: it thaws and kills redis, waits for it, and exits. */
  async #endWatchdog(): Promise<void> {
    const watchdog = this.#watchdog;
    this.#watchdog = null;
    this.#pid = 0;
    if (watchdog === null || watchdog.exitCode !== null || watchdog.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => watchdog.once('exit', () => resolve()));
    watchdog.stdin?.end();
    await exited;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 25 ms until it holds, failing after `ms`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** A server frame as the recording client keeps it. */
export interface Frame {
  readonly type: string;
  readonly topic?: string;
  readonly seq?: number;
  readonly epoch?: string;
  readonly recovered?: boolean;
  readonly data?: unknown;
}

/**
 * A client that records every frame and, per topic, the seqs of the UPDATE/ALERT frames it got (across
 * reconnects), failing on the spot on a duplicate, a gap or a foreign topic. Per-topic SNAPSHOT frames
 * (`recovered: false`) restart a topic at their seq and epoch.
 */
export class RecordingClient {
  ws: WebSocket | null = null;
  readonly frames: Frame[] = [];
  readonly seqs = new Map<string, number[]>();
  readonly position = new Map<string, { epoch: string | undefined; seq: number }>();
  readonly errors: string[] = [];
  /** Frames sent to everyone (no topic). */
  readonly broadcasts: Frame[] = [];
  snapshots = 0;
  connections = 0;
  #closed: Promise<void> = Promise.resolve();

  /**
   * @param topics the topics whose frames it accepts
   * @param connectTopics the `?topics=` of the first connection (default `topics`; the rest by a subscribe frame)
   */
  constructor(
    readonly topics: readonly string[],
    readonly connectTopics: readonly string[] = topics,
  ) {}

  /** Connects to `wsUrl` (with `?resume=` of what it has, or `?topics=` the first time) and waits for the snapshot. */
  async connect(wsUrl: string, timeoutMs = 30_000): Promise<void> {
    const resume = this.connections > 0;
    const query = resume
      ? `resume=${this.topics.map((t) => `${t}:${this.position.get(t)?.epoch ?? 'none'}:${this.position.get(t)?.seq ?? 0}`).join(',')}`
      : `topics=${this.connectTopics.join(',')}`;
    this.connections++;
    const ws = new WebSocket(`${wsUrl}?${query}`);
    this.ws = ws;
    ws.on('error', () => {});
    this.#closed = new Promise((resolve) => ws.once('close', () => resolve()));
    let sawSnapshot = false;
    ws.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as Frame;
      this.frames.push(frame);
      if (frame.type === 'SNAPSHOT' && frame.topic === undefined) {
        sawSnapshot = true;
        for (const [topic, state] of Object.entries(
          (frame.data ?? {}) as Record<string, { seq: number; epoch?: string }>,
        )) {
          if (this.topics.includes(topic)) this.position.set(topic, { epoch: state.epoch, seq: state.seq });
        }
      } else if (frame.type === 'SNAPSHOT' && frame.topic !== undefined) {
        this.snapshots++;
        this.position.set(frame.topic, { epoch: frame.epoch, seq: frame.seq ?? 0 });
        this.seqs.get(frame.topic)?.push(-(frame.seq ?? 0)); // a restart marker: -seq
      } else if ((frame.type === 'UPDATE' || frame.type === 'ALERT') && frame.topic === undefined) {
        this.broadcasts.push(frame);
      } else if (frame.type === 'UPDATE' || frame.type === 'ALERT') {
        this.#onTopicFrame(frame);
      } else if (frame.type === 'ERROR') {
        this.errors.push(JSON.stringify(frame.data));
      }
    });
    const deadline = Date.now() + timeoutMs;
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', () => reject(new Error('closed before open')));
      setTimeout(() => reject(new Error('open timed out')), timeoutMs).unref();
    });
    while (!sawSnapshot) {
      if (Date.now() > deadline) throw new Error('no snapshot');
      await sleep(5);
    }
  }

  #onTopicFrame(frame: Frame): void {
    const topic = frame.topic ?? '';
    if (!this.topics.includes(topic)) {
      this.errors.push(`frame of foreign topic ${topic}`);
      return;
    }
    const at = this.position.get(topic) ?? { epoch: undefined, seq: 0 };
    if (at.epoch !== undefined && frame.epoch !== at.epoch) {
      this.errors.push(`${topic}: frame of epoch ${frame.epoch} while at ${at.epoch}`);
    } else if (frame.seq !== at.seq + 1) {
      this.errors.push(`${topic}: seq ${frame.seq} after ${at.seq}`);
    }
    this.position.set(topic, { epoch: frame.epoch, seq: frame.seq ?? 0 });
    let list = this.seqs.get(topic);
    if (list === undefined) {
      list = [];
      this.seqs.set(topic, list);
    }
    list.push(frame.seq ?? 0);
  }

  /** The topic's last seq seen. */
  seqOf(topic: string): number {
    return this.position.get(topic)?.seq ?? 0;
  }

  /** Resolves when the current connection closes. */
  closed(): Promise<void> {
    return this.#closed;
  }

  close(): void {
    this.ws?.terminate();
  }
}

/** Asserts that `list` is exactly `from..to`. */
export function assertRange(list: readonly number[], from: number, to: number, what: string): void {
  assert.equal(
    list.length,
    Math.max(0, to - from + 1),
    `${what}: ${list.length} frames, expected ${to - from + 1}`,
  );
  for (let i = 0; i < list.length; i++) assert.equal(list[i], from + i, `${what}: position ${i}`);
}

/** The topic's seq in Redis (what the cluster has published). */
export async function redisSeq(redis: Redis, prefix: string, topic: string): Promise<number> {
  return Number((await redis.hget(`${prefix}{${topic}}:meta`, 'seq')) ?? 0);
}
