/**
 * A queue-based WebSocket test client: every frame the server sends is parsed and queued, and tests take them in
 * order with `next()`, so assertions read like the protocol. Every wait has a deadline.
 */
import { WebSocket } from 'ws';
import type { ServerMessage } from '../../src/protocol/messages.js';

/** Default deadline of a wait. Tests fail, never hang. */
export const WAIT_MS = 5000;

export class TestClient {
  readonly ws: WebSocket;
  readonly #queue: ServerMessage[] = [];
  #waiter: (() => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  /** Every frame received, in order (also those already taken). */
  readonly received: ServerMessage[] = [];

  constructor(url: string, options: { headers?: Record<string, string>; protocols?: string[] } = {}) {
    this.ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers });
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      this.ws.once('close', () => reject(new Error('closed before open')));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.#waiter?.();
      });
    });
    this.ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as ServerMessage;
      this.received.push(message);
      this.#queue.push(message);
      this.#waiter?.();
    });
  }

  /** Sends a value as JSON (or a raw string/Buffer as is). */
  send(value: unknown): void {
    this.ws.send(typeof value === 'string' || Buffer.isBuffer(value) ? value : JSON.stringify(value));
  }

  /** Takes the next frame (optionally the next matching one, skipping others), failing after `ms`. */
  async next(match?: (m: ServerMessage) => boolean, ms = WAIT_MS): Promise<ServerMessage> {
    const deadline = Date.now() + ms;
    for (;;) {
      while (this.#queue.length > 0) {
        const message = this.#queue.shift() as ServerMessage;
        if (match === undefined || match(message)) return message;
      }
      if (this.ws.readyState === WebSocket.CLOSED)
        throw new Error('connection closed while waiting for a frame');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          this.#waiter = null;
          resolve();
        };
      });
    }
  }

  /** Takes the next `count` frames of `type`. */
  async nextOfType(type: string, count = 1, ms = WAIT_MS): Promise<ServerMessage[]> {
    const out: ServerMessage[] = [];
    while (out.length < count) out.push(await this.next((m) => m.type === type, ms));
    return out;
  }

  /** Frames queued and not yet taken. */
  pending(): readonly ServerMessage[] {
    return this.#queue;
  }

  /** Resolves with the close code, failing after `ms`. */
  async waitForClose(ms = WAIT_MS): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not closed within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.terminate();
  }
}

/** Connects and takes the CONNECTED and SNAPSHOT frames. */
export async function connect(
  url: string,
  query = '',
): Promise<{ client: TestClient; connected: ServerMessage; snapshot: ServerMessage }> {
  const client = new TestClient(query === '' ? url : `${url}?${query}`);
  await client.opened;
  const connected = await client.next();
  const snapshot = await client.next();
  return { client, connected, snapshot };
}

/** Polls `condition` until true, failing after `ms`. For state that has no event to wait on. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  ms = WAIT_MS,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
