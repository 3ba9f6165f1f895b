// A minimal WebSocket client for counting clients: raw TCP, the RFC 6455 handshake, then a frame walker that
// reads only frame headers and skips payloads (no copy, no UTF-8 decode, no JSON). It answers pings (so heartbeats
// do not drop it) and closes. It exists so one load-generator core can absorb millions of frames per second; the
// probe clients that measure latency are full `ws` clients that parse every frame.

import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';

const MAX_HANDSHAKE_BYTES = 16 * 1024;

/** Bytes every lite client of this process read after its handshake (frames on the wire, compressed or not). */
export const wire = { bytes: 0 };

/** The permessage-deflate offer Chrome sends. */
export const CHROME_DEFLATE_OFFER = 'permessage-deflate; client_max_window_bits';

/**
 * @typedef {{ onMessage: () => void, onOpen: () => void, onClose: (reason: string) => void }} LiteHandlers
 */

export class LiteClient {
  /**
   * @param {URL} url ws://host:port/path?query
   * @param {LiteHandlers} handlers
   * @param {{ engineIo?: boolean, deflate?: boolean }} [options] `engineIo`: speak just enough Engine.IO v4 /
   *   Socket.IO v5 to stay connected to a Socket.IO server: answer the open packet with a namespace connect (`40`)
   *   and pings (`2`) with pongs (`3`). `deflate`: offer permessage-deflate as Chrome does (frames are counted, never
   *   inflated: the walker skips payloads either way).
   */
  constructor(url, handlers, options = {}) {
    this.handlers = handlers;
    this.engineIo = options.engineIo === true;
    this.engineOpen = false;
    this.open = false;
    this.closed = false;
    /** Bytes of payload still to skip in the current frame. */
    this.skip = 0;
    /** Unconsumed start of a frame header split across chunks. */
    this.partial = null;
    /** Control frame being collected: { opcode, parts }. */
    this.control = null;
    this.handshake = Buffer.alloc(0);
    this.socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true });
    this.socket.on('connect', () => {
      const key = randomBytes(16).toString('base64');
      this.socket.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          (options.deflate === true ? `Sec-WebSocket-Extensions: ${CHROME_DEFLATE_OFFER}\r\n` : '') +
          '\r\n',
      );
    });
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', () => this.finish('error'));
    this.socket.on('close', () => this.finish('close'));
  }

  /** @param {string} reason */
  finish(reason) {
    if (this.closed) return;
    this.closed = true;
    this.open = false;
    this.socket.destroy();
    this.handlers.onClose(reason);
  }

  close() {
    this.finish('local');
  }

  /** @param {Buffer} chunk */
  onData(chunk) {
    if (!this.open) {
      this.handshake = Buffer.concat([this.handshake, chunk]);
      const end = this.handshake.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.handshake.length > MAX_HANDSHAKE_BYTES) this.finish('bad handshake');
        return;
      }
      if (!this.handshake.subarray(0, 13).toString('latin1').startsWith('HTTP/1.1 101')) {
        this.finish('upgrade refused');
        return;
      }
      const rest = this.handshake.subarray(end + 4);
      this.handshake = Buffer.alloc(0);
      this.open = true;
      this.handlers.onOpen();
      if (rest.length > 0) this.walk(rest);
      return;
    }
    this.walk(chunk);
  }

  /** @param {Buffer} input */
  walk(input) {
    wire.bytes += input.length;
    let chunk = input;
    if (this.partial !== null) {
      chunk = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let i = 0;
    const end = chunk.length;
    while (i < end) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, end - i);
        if (this.control !== null) this.control.parts.push(chunk.subarray(i, i + n));
        i += n;
        this.skip -= n;
        if (this.skip === 0 && this.control !== null) this.endControl();
        continue;
      }
      if (end - i < 2) {
        this.partial = chunk.subarray(i);
        return;
      }
      const b0 = chunk[i];
      const b1 = chunk[i + 1];
      let len = b1 & 0x7f;
      const head = 2 + (len === 126 ? 2 : len === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      if (end - i < head) {
        this.partial = chunk.subarray(i);
        return;
      }
      if (len === 126) len = chunk.readUInt16BE(i + 2);
      else if (len === 127) len = chunk.readUInt32BE(i + 2) * 2 ** 32 + chunk.readUInt32BE(i + 6);
      i += head;
      const opcode = b0 & 0x0f;
      if (opcode >= 8) {
        this.control = { opcode, parts: [] };
        this.skip = len;
        if (len === 0) this.endControl();
      } else {
        let engineOnly = false;
        if (this.engineIo && len <= 4 && end - i >= len)
          engineOnly = this.engineControl(chunk.subarray(i, i + len));
        else if (this.engineIo && !this.engineOpen) this.engineControl(null);
        if (b0 & 0x80 && !engineOnly) this.handlers.onMessage();
        this.skip = len;
      }
    }
  }

  /**
   * Engine.IO: the first frame is the open packet (answered with a namespace connect); a `2` is a ping (answered,
   * and not counted as a message). Returns true when the frame was a ping.
   */
  engineControl(payload) {
    if (!this.engineOpen) {
      this.engineOpen = true;
      this.sendText('40');
      return false;
    }
    if (payload !== null && payload.length === 1 && payload[0] === 0x32) {
      this.sendText('3');
      return true;
    }
    return false;
  }

  /** Sends a short masked text frame (all-zero mask). */
  sendText(text) {
    const body = Buffer.from(text);
    const frame = Buffer.alloc(6 + body.length);
    frame[0] = 0x81;
    frame[1] = 0x80 | body.length;
    body.copy(frame, 6);
    this.socket.write(frame);
  }

  endControl() {
    const { opcode, parts } = /** @type {{ opcode: number, parts: Buffer[] }} */ (this.control);
    this.control = null;
    if (opcode === 0x9) {
      const payload = Buffer.concat(parts);
      // Pong with an all-zero mask: the payload is sent as is.
      const frame = Buffer.alloc(6 + payload.length);
      frame[0] = 0x8a;
      frame[1] = 0x80 | payload.length;
      payload.copy(frame, 6);
      this.socket.write(frame);
    } else if (opcode === 0x8) {
      this.socket.end(Buffer.from([0x88, 0x80, 0, 0, 0, 0]));
      this.finish('server close');
    }
  }
}
