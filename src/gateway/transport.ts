/**
 * The small connection interface the service core depends on, and its one implementation over a `ws` WebSocket.
 *
 * The fan-out fast path writes pre-built frames beneath `ws`, straight to the underlying TCP socket, so that one
 * message is framed once for all recipients and every frame due to a socket in one event-loop turn leaves in one
 * write. `ws` itself still parses incoming frames and sends pings, pongs and close frames; those are whole frames
 * too, so the byte stream stays well-formed. This is the only file that touches `ws` internals (`_socket`); the `ws`
 * version is pinned in package.json and `test/server/transport.test.ts` covers the seam.
 *
 * permessage-deflate: `ws`'s own extension stays off (it keeps a deflate context per socket). Compressed frames
 * leave through the fast path like any other (see `deflate.ts`); for frames a client sends compressed (RSV1), a
 * connection that agreed to the extension gets a receive-only `ws` PerMessageDeflate: `ws` inflates within
 * `maxPayload` (1009 past it), the inflater is made on the first compressed frame and freed after each message.
 *
 * @module
 */
import { createRequire } from 'node:module';
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

  /**
   * @param ws an open server-side WebSocket
   * @param inflate set when the connection agreed to permessage-deflate: accept compressed client frames, inflating
   *   at most `maxPayload` bytes per message
   */
  constructor(ws: WebSocket, inflate?: { maxPayload: number }) {
    this.#ws = ws;
    this.#socket = (ws as unknown as { _socket: Socket })._socket;
    if (inflate !== undefined) acceptCompressedFrames(ws, inflate.maxPayload);
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

/** The part of `ws`'s PerMessageDeflate this file uses (its receive side). */
interface WsPerMessageDeflate {
  params: Record<string, unknown> | null;
  _inflate: { close(): void } | null;
  decompress(data: Buffer, fin: boolean, callback: (error: Error | null, data?: Buffer) => void): void;
  cleanup(): void;
}
type WsPerMessageDeflateClass = new (options: Record<string, unknown>) => WsPerMessageDeflate;

// The ESM entry of `ws` does not export PerMessageDeflate; its CommonJS entry (the same module instances) does.
const { PerMessageDeflate } = createRequire(import.meta.url)('ws') as {
  PerMessageDeflate: WsPerMessageDeflateClass;
};

/** Receive side only: the inflater lives from a compressed message's first frame to its last, then is freed. */
class ReceiveOnlyDeflate extends PerMessageDeflate {
  override decompress(
    data: Buffer,
    fin: boolean,
    callback: (error: Error | null, data?: Buffer) => void,
  ): void {
    super.decompress(data, fin, (error, inflated) => {
      // client_no_context_takeover was agreed: nothing carries over to the next message.
      if (fin && this._inflate !== null) {
        this._inflate.close();
        this._inflate = null;
      }
      callback(error, inflated);
    });
  }
}

/** Shared by every connection with the same limit: `ws` only reads them. */
const sharedOptions = new Map<number, Record<string, unknown>>();
/** What we agreed to, as `ws` reads it on the receive side (the client inflates nothing of ours through it). */
const RECEIVE_PARAMS: Readonly<Record<string, unknown>> = Object.freeze({
  server_no_context_takeover: true,
  client_no_context_takeover: true,
});

/**
 * Lets `ws` accept compressed (RSV1) frames on `ws`. Must run before the socket's first data is read (in the
 * `'connection'` handler, which `ws` calls synchronously after attaching the socket): the receiver shares the
 * `_extensions` object it is added to.
 */
function acceptCompressedFrames(ws: WebSocket, maxPayload: number): void {
  let options = sharedOptions.get(maxPayload);
  if (options === undefined) {
    options = Object.freeze({ isServer: true, maxPayload });
    sharedOptions.set(maxPayload, options);
  }
  const extension = new ReceiveOnlyDeflate(options);
  extension.params = RECEIVE_PARAMS as Record<string, unknown>;
  (ws as unknown as { _extensions: Record<string, unknown> })._extensions['permessage-deflate'] = extension;
}
