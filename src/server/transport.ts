/**
 * The small connection interface the service core depends on, and its one implementation over a `ws` WebSocket.
 *
 * The fan-out fast path writes pre-built frames beneath `ws`, straight to the underlying TCP socket, so that one
 * message is framed once for all recipients and every frame due to a socket in one event-loop turn leaves in one
 * write. `ws` itself still parses incoming frames and sends pings, pongs and close frames; those are whole frames
 * too, so the byte stream stays well-formed. This is the only file that touches `ws` internals (`_socket`); the `ws`
 * version is pinned in package.json and `test/server/transport.test.ts` covers the seam.
 *
 * @module
 */
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';

/** What the service needs from a client connection. */
export interface Transport {
  /** True while frames can be written. */
  readonly isOpen: boolean;
  /** Bytes written but not yet handed to the kernel. */
  readonly bufferedBytes: number;
  /** Writes bytes made of complete, pre-built frames, as one write. `data` may be shared: it is never mutated. */
  write(data: Buffer): void;
  /** Calls `listener` once when the write buffer has drained. */
  onceDrained(listener: () => void): void;
  /** Sends a protocol ping. */
  ping(): void;
  /** Starts the closing handshake. `reason` must fit 123 bytes. */
  close(code: number, reason: string): void;
  /** Destroys the connection at once (dead peers). */
  terminate(): void;
}

/** Adapts a server-side `ws` WebSocket. */
export class WsTransport implements Transport {
  readonly #ws: WebSocket;
  readonly #socket: Socket;

  constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#socket = (ws as unknown as { _socket: Socket })._socket;
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN && this.#socket.writable;
  }

  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  write(data: Buffer): void {
    this.#socket.write(data);
  }

  onceDrained(listener: () => void): void {
    this.#socket.once('drain', listener);
  }

  ping(): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.ping();
  }

  close(code: number, reason: string): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      this.#ws.close(code, truncateReason(reason));
    }
  }

  terminate(): void {
    this.#ws.terminate();
  }
}

/** Cuts a close reason to the 123 bytes RFC 6455 allows, on a character boundary. */
export function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = '';
  for (const ch of reason) {
    if (Buffer.byteLength(out + ch) > 123) break;
    out += ch;
  }
  return out;
}
