/**
 * Reading JSON request bodies with a size bound.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';

/** Why a body could not be read. */
export type BodyError = { readonly status: 400 | 413; readonly code: string; readonly message: string };

/** Reads and parses a JSON body of at most `limit` bytes. */
export async function readJsonBody(
  req: IncomingMessage,
  limit: number,
): Promise<{ ok: true; value: unknown } | { ok: false; error: BodyError }> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return { ok: false, error: { status: 413, code: 'BODY_TOO_LARGE', message: `body over ${limit} bytes` } };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      const buffer = chunk as Buffer;
      size += buffer.length;
      if (size > limit) {
        req.resume();
        return {
          ok: false,
          error: { status: 413, code: 'BODY_TOO_LARGE', message: `body over ${limit} bytes` },
        };
      }
      chunks.push(buffer);
    }
  } catch {
    return {
      ok: false,
      error: { status: 400, code: 'BAD_BODY', message: 'the request body could not be read' },
    };
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks, size).toString('utf8')) as unknown };
  } catch {
    return { ok: false, error: { status: 400, code: 'BAD_JSON', message: 'body is not valid JSON' } };
  }
}
