/**
 * permessage-deflate (RFC 7692) negotiated by us, with outgoing messages compressed once per message, not once per
 * socket: no deflate context lives per connection.
 *
 * - {@link negotiateDeflate} reads a client's `Sec-WebSocket-Extensions` offers and picks the first one we can honour.
 *   We always answer `server_no_context_takeover` (each message is a self-contained deflate stream, so the same
 *   bytes are valid for every recipient) and `client_no_context_takeover` (so an inflater needs no state between a
 *   client's messages and is freed after each one). A client's `server_max_window_bits=N` is echoed and honoured
 *   for N in 9..15; zlib cannot produce raw streams with an 8-bit window (it uses 9), so an offer demanding 8 is
 *   declined. Bad offers are declined, never thrown on.
 * - {@link FrameCompressor} turns a plain pre-built text frame into its compressed form (RSV1 set) lazily, at most
 *   once per frame and window size, and caches it beside the frame (a `WeakMap` keyed by the frame itself).
 *
 * @module
 */
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';

/** The extension's token. */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** Default of {@link FrameCompressorOptions.threshold}: payloads below this many bytes stay plain. */
export const DEFAULT_COMPRESSION_THRESHOLD = 256;

/** What a connection agreed to. */
export interface DeflateAgreement {
  /** Window (log2 of its size) our compressed frames may use: the client's `server_max_window_bits`, or 15. */
  readonly windowBits: number;
  /** The `Sec-WebSocket-Extensions` value to answer with. */
  readonly response: string;
}

/** One parsed extension offer: its token and parameters in order (`true` for a parameter without a value). */
export interface ExtensionOffer {
  readonly name: string;
  readonly params: readonly (readonly [string, string | true])[];
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses a `Sec-WebSocket-Extensions` header (RFC 6455 §9.1; several header lines count as one list). Returns
 * `null` if the header is not well-formed, so the caller declines everything rather than guessing.
 */
export function parseExtensionOffers(
  header: string | readonly string[] | undefined,
): ExtensionOffer[] | null {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join(',');
  if (text.length > 8192) return null;
  const offers: ExtensionOffer[] = [];
  let i = 0;
  const n = text.length;
  const skipSpace = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const token = (): string | null => {
    const start = i;
    while (i < n && !' \t,;="'.includes(text[i] as string)) i++;
    const value = text.slice(start, i);
    return TCHAR.test(value) ? value : null;
  };
  const quoted = (): string | null => {
    i++; // opening quote
    let value = '';
    while (i < n && text[i] !== '"') {
      if (text[i] === '\\') i++;
      if (i >= n) return null;
      value += text[i];
      i++;
    }
    if (i >= n) return null;
    i++; // closing quote
    return TCHAR.test(value) ? value : null; // RFC 6455: a quoted value must still be a token
  };
  for (;;) {
    skipSpace();
    if (i >= n) break;
    if (text[i] === ',') {
      i++; // empty list element (allowed by the #rule)
      continue;
    }
    const name = token();
    if (name === null) return null;
    const params: [string, string | true][] = [];
    skipSpace();
    while (i < n && text[i] === ';') {
      i++;
      skipSpace();
      const key = token();
      if (key === null) return null;
      skipSpace();
      let value: string | true = true;
      if (text[i] === '=') {
        i++;
        skipSpace();
        const v = text[i] === '"' ? quoted() : token();
        if (v === null) return null;
        value = v;
        skipSpace();
      }
      params.push([key.toLowerCase(), value]);
    }
    offers.push({ name: name.toLowerCase(), params });
    if (offers.length > 64) return null;
    if (i >= n) break;
    if (text[i] !== ',') return null;
    i++;
  }
  return offers;
}

/** A window-bits value as RFC 7692 §7.1.2 writes it: 8..15, decimal, no leading zero. */
function windowBitsOf(value: string): number | null {
  return /^(?:8|9|1[0-5])$/.test(value) ? Number(value) : null;
}

/**
 * The agreement for one permessage-deflate offer, or `null` when we decline it (unknown or repeated parameter,
 * bad value, or a window we cannot honour).
 */
function acceptOffer(offer: ExtensionOffer): DeflateAgreement | null {
  const seen = new Set<string>();
  let serverWindowBits: number | null = null;
  for (const [key, value] of offer.params) {
    if (seen.has(key)) return null;
    seen.add(key);
    switch (key) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        if (value !== true) return null;
        break;
      case 'server_max_window_bits': {
        if (value === true) return null;
        serverWindowBits = windowBitsOf(value);
        if (serverWindowBits === null) return null;
        break;
      }
      case 'client_max_window_bits':
        // A hint that the client can limit its own window; we inflate with 15 bits, which reads any window.
        if (value !== true && windowBitsOf(value) === null) return null;
        break;
      default:
        return null;
    }
  }
  if (serverWindowBits === 8) return null; // zlib's raw deflate has no 8-bit window
  let response = `${PERMESSAGE_DEFLATE}; server_no_context_takeover; client_no_context_takeover`;
  if (serverWindowBits !== null) response += `; server_max_window_bits=${serverWindowBits}`;
  return { windowBits: serverWindowBits ?? 15, response };
}

/**
 * The agreement for a client's `Sec-WebSocket-Extensions` header: its first permessage-deflate offer we can
 * honour, or `null` (no offer, none acceptable, or a malformed header). Never throws.
 */
export function negotiateDeflate(header: string | readonly string[] | undefined): DeflateAgreement | null {
  if (header === undefined) return null;
  const offers = parseExtensionOffers(header);
  if (offers === null) return null;
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const agreement = acceptOffer(offer);
    if (agreement !== null) return agreement;
  }
  return null;
}

/** Options of {@link FrameCompressor}. */
export interface FrameCompressorOptions {
  /** Payloads shorter than this many bytes are sent plain. Default {@link DEFAULT_COMPRESSION_THRESHOLD}. */
  threshold?: number;
  /** zlib level, 1 (fast) to 9 (small). Default 6 (zlib's default). */
  level?: number;
}

/** The sync-flush trailer RFC 7692 §7.2.1 strips from each compressed message. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Payload offset of a server (unmasked) frame: 2, 4 or 10 bytes of header. */
function headerLengthOf(frame: Buffer): number {
  const len7 = (frame[1] as number) & 0x7f;
  return len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
}

/** Writes the header of an unmasked final frame with `firstByte` and `length`; returns the header length. */
function writeHeader(target: Buffer, firstByte: number, length: number): number {
  target[0] = firstByte;
  if (length < 126) {
    target[1] = length;
    return 2;
  }
  if (length < 65536) {
    target[1] = 126;
    target.writeUInt16BE(length, 2);
    return 4;
  }
  target[1] = 127;
  target.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
  target.writeUInt32BE(length >>> 0, 6);
  return 10;
}

/** Header length of a frame carrying `length` payload bytes. */
function headerLengthFor(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

/**
 * Compresses the payload of one complete unmasked data frame into a frame of the same opcode with RSV1 set
 * (raw deflate with a sync flush, trailer stripped: RFC 7692 §7.2.1). Returns `null` for a frame that is not a
 * final data frame.
 */
export function deflateFrame(frame: Buffer, windowBits: number, level = 6): Buffer | null {
  const first = frame[0] as number;
  const opcode = first & 0x0f;
  if ((first & 0x80) === 0 || (first & 0x70) !== 0 || (opcode !== 1 && opcode !== 2)) return null;
  const payload = frame.subarray(headerLengthOf(frame));
  const deflated = deflateRawSync(payload, {
    windowBits,
    level,
    finishFlush: zlibConstants.Z_SYNC_FLUSH,
  });
  const end =
    deflated.length >= 4 && deflated.subarray(-4).equals(TRAILER) ? deflated.length - 4 : deflated.length;
  const out = Buffer.allocUnsafe(headerLengthFor(end) + end);
  const offset = writeHeader(out, first | 0x40, end);
  deflated.copy(out, offset, 0, end);
  return out;
}

/**
 * Holds the compressed forms of frames: built on first demand, once per frame and window size, and dropped with
 * the frame (weakly keyed). Stateless across messages, so one instance serves every connection.
 */
export class FrameCompressor {
  readonly #threshold: number;
  readonly #level: number;
  /** Compressed form per window size, keyed by the plain frame. Plain frames below the threshold map to themselves. */
  readonly #forms = new Map<number, WeakMap<Buffer, Buffer>>();
  /** Compressed frame -> its plain frame. */
  readonly #plain = new WeakMap<Buffer, Buffer>();
  /** Frames compressed so far (one per message and window size, not per recipient). */
  compressions = 0;
  /** Bytes of the plain frames compressed. */
  bytesIn = 0;
  /** Bytes of the compressed frames made. */
  bytesOut = 0;

  /** @throws RangeError for a negative threshold or a level outside 1..9 (found here, not on the fan-out path). */
  constructor(options: FrameCompressorOptions = {}) {
    this.#threshold = options.threshold ?? DEFAULT_COMPRESSION_THRESHOLD;
    this.#level = options.level ?? 6;
    if (!Number.isInteger(this.#threshold) || this.#threshold < 0)
      throw new RangeError(`compression threshold must be a non-negative integer, got ${this.#threshold}`);
    if (!Number.isInteger(this.#level) || this.#level < 1 || this.#level > 9)
      throw new RangeError(`compression level must be an integer 1..9, got ${this.#level}`);
  }

  /**
   * The form of `frame` to send on a connection that agreed to `windowBits`: the compressed frame (made now if this
   * is its first recipient with that window), or `frame` itself when it is small, not a data frame, or deflate did
   * not make it smaller.
   */
  formFor(frame: Buffer, windowBits: number): Buffer {
    if (frame.length - headerLengthOf(frame) < this.#threshold) return frame;
    let forms = this.#forms.get(windowBits);
    if (forms === undefined) {
      forms = new WeakMap();
      this.#forms.set(windowBits, forms);
    }
    const cached = forms.get(frame);
    if (cached !== undefined) return cached;
    const compressed = deflateFrame(frame, windowBits, this.#level);
    this.compressions++;
    this.bytesIn += frame.length;
    const form = compressed !== null && compressed.length < frame.length ? compressed : frame;
    this.bytesOut += form.length;
    forms.set(frame, form);
    if (form !== frame) this.#plain.set(form, frame);
    return form;
  }

  /** The plain frame a frame made by {@link formFor} stands for (itself when it is plain). */
  plainOf(frame: Buffer): Buffer {
    return this.#plain.get(frame) ?? frame;
  }
}
