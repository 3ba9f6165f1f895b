/**
 * Test helpers for permessage-deflate on the wire: a raw `node:net` WebSocket client that sends any
 * `Sec-WebSocket-Extensions` offer, reads the answer, and decodes server frames itself (RSV1 -> raw inflate with the
 * agreed window), so a test sees exactly which frames were compressed.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';

/** One server frame as it came off the wire. */
export interface WireFrame {
  readonly opcode: number;
  readonly rsv1: boolean;
  /** Payload bytes on the wire (compressed when `rsv1`). */
  readonly wireLength: number;
  /** Decoded payload (inflated when `rsv1`). */
  readonly payload: Buffer;
}

/** A raw WebSocket client over `node:net`. */
export class RawClient {
  readonly frames: WireFrame[] = [];
  status = 0;
  headers: Record<string, string> = {};
  closed = false;
  #buffer = Buffer.alloc(0);
  #headerDone = false;
  #windowBits = 15;
  #waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  /** Opens a TCP connection, sends the upgrade request with `extensions` (when given) and waits for the answer. */
  static async open(port: number, path: string, extensions?: string): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    const client = new RawClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
    ];
    if (extensions !== undefined) lines.push(`Sec-WebSocket-Extensions: ${extensions}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    await client.until(() => client.#headerDone || client.closed, 'handshake answer');
    return client;
  }

  /** The agreed extension header (`undefined` when none). */
  get extension(): string | undefined {
    return this.headers['sec-websocket-extensions'];
  }

  /** Waits (bounded) for `condition`, re-checked on every frame. */
  async until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Text frames decoded as JSON, in order. */
  messages(): unknown[] {
    return this.frames
      .filter((f) => f.opcode === 1)
      .map((f) => JSON.parse(f.payload.toString('utf8')) as unknown);
  }

  /**
   * Sends a masked frame; `compress` sets RSV1 and deflates `payload` (unless `raw` gives the bytes to send, RSV1
   * set). `fin: false`, `opcode: 0` and `rsv1` build fragments by hand.
   */
  sendFrame(
    payload: Buffer,
    options: { compress?: boolean; raw?: Buffer; opcode?: number; fin?: boolean; rsv1?: boolean } = {},
  ): void {
    const body =
      options.raw ??
      (options.compress === true
        ? stripTrailer(deflateRawSync(payload, { finishFlush: zlibConstants.Z_SYNC_FLUSH }))
        : payload);
    const rsv1 = options.rsv1 ?? (options.compress === true || options.raw !== undefined);
    const first = (options.fin === false ? 0 : 0x80) | (rsv1 ? 0x40 : 0) | (options.opcode ?? 1);
    const length = body.length;
    const header = Buffer.alloc(length < 126 ? 6 : length < 65536 ? 8 : 14);
    header[0] = first;
    let offset: number;
    if (length < 126) {
      header[1] = 0x80 | length;
      offset = 2;
    } else if (length < 65536) {
      header[1] = 0x80 | 126;
      header.writeUInt16BE(length, 2);
      offset = 4;
    } else {
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(length), 2);
      offset = 10;
    }
    const mask = randomBytes(4);
    mask.copy(header, offset);
    const masked = Buffer.from(body);
    for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] as number) ^ (mask[i % 4] as number);
    this.socket.write(Buffer.concat([header, masked]));
  }

  /** The close code of a received close frame, if any. */
  closeCode(): number | undefined {
    const close = this.frames.find((f) => f.opcode === 8);
    return close === undefined || close.payload.length < 2 ? undefined : close.payload.readUInt16BE(0);
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters.splice(0);
    for (const wake of waiters) wake();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    if (!this.#headerDone) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine = '', ...headerLines] = this.#buffer
        .subarray(0, end)
        .toString('latin1')
        .split('\r\n');
      this.status = Number(statusLine.split(' ')[1]);
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        this.headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const bits = /server_max_window_bits=(\d+)/.exec(this.extension ?? '');
      if (bits !== null) this.#windowBits = Number(bits[1]);
      this.#buffer = this.#buffer.subarray(end + 4);
      this.#headerDone = true;
    }
    for (;;) {
      if (this.#buffer.length < 2) break;
      const first = this.#buffer[0] as number;
      const len7 = (this.#buffer[1] as number) & 0x7f;
      let offset = 2;
      let length = len7;
      if (len7 === 126) {
        if (this.#buffer.length < 4) break;
        length = this.#buffer.readUInt16BE(2);
        offset = 4;
      } else if (len7 === 127) {
        if (this.#buffer.length < 10) break;
        length = Number(this.#buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.#buffer.length < offset + length) break;
      const wire = this.#buffer.subarray(offset, offset + length);
      const rsv1 = (first & 0x40) !== 0;
      const payload = rsv1
        ? inflateRawSync(Buffer.concat([wire, Buffer.from([0, 0, 0xff, 0xff])]), {
            windowBits: this.#windowBits,
            finishFlush: zlibConstants.Z_SYNC_FLUSH,
          })
        : Buffer.from(wire);
      this.frames.push({ opcode: first & 0x0f, rsv1, wireLength: length, payload });
      this.#buffer = this.#buffer.subarray(offset + length);
    }
    this.#wake();
  }
}

/** Removes the `00 00 ff ff` a sync flush ends with. */
export function stripTrailer(deflated: Buffer): Buffer {
  return deflated.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff])) ? deflated.subarray(0, -4) : deflated;
}

/** A city-shaped UPDATE payload: entities with names, coordinates and readings. */
export function cityUpdate(i: number, entities = 8): { upserts: unknown[]; removes: string[] } {
  const upserts = [];
  for (let k = 0; k < entities; k++) {
    upserts.push({
      id: `station-${(i * entities + k) % 50}`,
      name: `Weather station ${['Centraal', 'Zuid', 'Noord', 'Oost', 'West'][k % 5]} ${k}`,
      location: { lat: 52.37 + k / 100, lon: 4.89 + i / 1000 },
      temperatureC: 10 + ((i * 7 + k) % 100) / 10,
      humidityPct: 40 + ((i + k * 3) % 50),
      windKph: (i * 13 + k) % 60,
      condition: ['clear', 'cloudy', 'rain', 'fog'][(i + k) % 4],
      updatedAt: new Date(Date.UTC(2026, 10, 26, 8, 0, i % 60, k)).toISOString(),
      source: 'test',
    });
  }
  return { upserts, removes: [] };
}
