/**
 * Reading JSON request bodies with a size bound and an idle deadline.
 *
 * A refused body is never read on: a declared `Content-Length` over the limit is refused before a byte is read,
 * and the caller's answer closes the connection (see `http-response.ts`), so a client announcing 100 GB costs a
 * few kilobytes, not 100 GB of reading.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { DEFAULT_LIMITS } from '../security/limits.js';

/** Why a body could not be read. */
export type BodyError = {
  readonly status: 400 | 408 | 413;
  readonly code: string;
  readonly message: string;
};

/** Options of {@link readJsonBody}. */
export interface ReadBodyOptions {
  /** A body that sends nothing for this many ms is refused 408. Default {@link DEFAULT_LIMITS.bodyIdleTimeoutMs}. */
  idleTimeoutMs?: number;
}

type BodyResult = { ok: true; value: unknown } | { ok: false; error: BodyError };

function tooLarge(limit: number): BodyError {
  return { status: 413, code: 'BODY_TOO_LARGE', message: `body over ${limit} bytes` };
}

/**
 * Reads and parses a JSON body of at most `limit` bytes. Never rejects. On a refusal (413 too large, 408 idle,
 * 400 unreadable or not JSON) the rest of the body is left unread: answer and close the connection.
 */
export async function readJsonBody(
  req: IncomingMessage,
  limit: number,
  options: ReadBodyOptions = {},
): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return { ok: false, error: tooLarge(limit) };
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_LIMITS.bodyIdleTimeoutMs;
  const read = await new Promise<{ ok: true; body: Buffer } | { ok: false; error: BodyError }>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (result: { ok: true; body: Buffer } | { ok: false; error: BodyError }): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
      if (!result.ok) req.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      timer.refresh();
      size += chunk.length;
      if (size > limit) {
        settle({ ok: false, error: tooLarge(limit) });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => settle({ ok: true, body: Buffer.concat(chunks, size) });
    const onError = (): void =>
      settle({
        ok: false,
        error: { status: 400, code: 'BAD_BODY', message: 'the request body could not be read' },
      });
    const timer = setTimeout(
      () =>
        settle({
          ok: false,
          error: { status: 408, code: 'BODY_TIMEOUT', message: `no body data for ${idleTimeoutMs} ms` },
        }),
      idleTimeoutMs,
    );
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('aborted', onError);
  });
  if (!read.ok) return read;
  try {
    return { ok: true, value: JSON.parse(read.body.toString('utf8')) as unknown };
  } catch {
    return { ok: false, error: { status: 400, code: 'BAD_JSON', message: 'body is not valid JSON' } };
  }
}
