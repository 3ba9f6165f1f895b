/**
 * WebSocket framing for the fan-out fast path: a server-to-client text frame (FIN, opcode 1, unmasked) built once per
 * message and written as-is to every recipient's socket (RFC 6455 §5.2).
 *
 * @module
 */

/** Builds one complete unmasked text frame for `payload` (UTF-8): one allocation, the text encoded in place. */
export function encodeTextFrame(payload: string | Buffer): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  let headerLength: number;
  if (length < 126) headerLength = 2;
  else if (length < 65536) headerLength = 4;
  else headerLength = 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN + text
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  if (typeof payload === 'string') frame.write(payload, headerLength, length, 'utf8');
  else payload.copy(frame, headerLength);
  return frame;
}
