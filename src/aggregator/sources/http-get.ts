/**
 * A small HTTP GET over `node:http`/`node:https` for the pollers: abortable through an `AbortSignal`, following
 * a few redirects, decompressing gzip/deflate/br, refusing bodies over a size limit, and using agents the caller
 * owns so stopping a poller can close its kept-alive sockets (a global connection pool would outlive it).
 *
 * @module
 */
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';

/** A received response. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The decoded (decompressed) body, as bytes: a JSON feed decodes it as UTF-8, a protobuf feed as is. */
  readonly body: Buffer;
  /** The URL that answered, after redirects. */
  readonly url: string;
}

/** Options of {@link httpGet}. */
export interface HttpGetOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** Agents to use (and own the sockets). Default: a new connection per request. */
  readonly agents?: { readonly http: http.Agent; readonly https: https.Agent };
  /** Largest decoded body accepted (bytes). Default 5 MiB. */
  readonly maxBytes?: number;
  /** Redirects followed. Default 3. */
  readonly maxRedirects?: number;
}

/** The response was not readable: too large, or the connection broke. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
}

function decoder(response: IncomingMessage): Readable {
  switch (String(response.headers['content-encoding'] ?? '').toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return response.pipe(zlib.createGunzip());
    case 'deflate':
      return response.pipe(zlib.createInflate());
    case 'br':
      return response.pipe(zlib.createBrotliDecompress());
    default:
      return response;
  }
}

function once(url: URL, options: HttpGetOptions): Promise<IncomingMessage> {
  const client = url.protocol === 'https:' ? https : http;
  const agent =
    options.agents === undefined
      ? false
      : url.protocol === 'https:'
        ? options.agents.https
        : options.agents.http;
  return new Promise((resolve, reject) => {
    const request = client.get(
      url,
      {
        headers: { 'accept-encoding': 'gzip, deflate, br', ...options.headers },
        agent,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
      resolve,
    );
    request.on('error', reject);
  });
}

function readBody(
  response: IncomingMessage,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = decoder(response);
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: unknown): void => {
      response.destroy();
      stream.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(signal?.reason ?? new HttpError('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) fail(new HttpError(`response body exceeds ${maxBytes} bytes`));
      else chunks.push(chunk);
    });
    stream.on('error', (error) => fail(new HttpError(`reading the response failed: ${error.message}`)));
    response.on('aborted', () => fail(new HttpError('the connection closed before the response ended')));
    stream.on('end', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(Buffer.concat(chunks));
    });
  });
}

/**
 * GETs `url`. Resolves with any status (the caller decides what a 500 means); rejects on transport errors. The
 * caller's `headers` (API keys, credentials) go to `url`'s origin only: a redirect to another origin is followed
 * without them.
 */
export async function httpGet(url: string, options: HttpGetOptions = {}): Promise<HttpResponse> {
  let current = new URL(url);
  const origin = current.origin;
  const maxRedirects = options.maxRedirects ?? 3;
  for (let hop = 0; ; hop++) {
    const response = await once(current, current.origin === origin ? options : { ...options, headers: {} });
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if ([301, 302, 303, 307, 308].includes(status) && location !== undefined) {
      response.resume();
      if (hop >= maxRedirects) throw new HttpError(`more than ${maxRedirects} redirects`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new HttpError('redirect to an invalid URL');
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw new HttpError(`redirect to unsupported ${next.protocol}`);
      current = next;
      continue;
    }
    if (status === 304 || status === 204) {
      response.resume();
      return { status, headers: response.headers, body: Buffer.alloc(0), url: current.href };
    }
    const body = await readBody(response, options.maxBytes ?? 5 * 1024 * 1024, options.signal);
    return { status, headers: response.headers, body, url: current.href };
  }
}
