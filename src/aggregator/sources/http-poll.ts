/**
 * The `http-poll` source: GETs a URL every `intervalMs`, decodes the body (JSON within the JSON bounds, or bytes
 * for a parser that declares `body: 'binary'`, such as GTFS-Realtime protobuf), parses it with a format parser and
 * reports the batch. The loop (timeout, backoff with jitter, `Retry-After`) and the conditional GET (`ETag` /
 * `Last-Modified`, so an unchanged feed costs a 304) are `poll-loop.ts`, shared with the `gbfs` source. A failure
 * (transport error, timeout, non-2xx status, bad body, a body outside the JSON bounds, which also counts as a
 * rejected reading) is reported and retried. `stop()` aborts the request in flight, clears the timer and closes the
 * kept-alive sockets.
 *
 * @module
 */
import type { BackoffOptions, Timers } from '../backoff.js';
import type { FeedParser } from '../parsers/types.js';
import type { Source, SourceContext } from '../source.js';
import { FeedBoundsError, PollingSource, decodeJsonDocument } from './poll-loop.js';

export { HttpStatusError, USER_AGENT } from './poll-loop.js';

/** Options of {@link createHttpPollSource}. */
export interface HttpPollOptions {
  /** Source name (unique; `Entity.source`). */
  readonly name: string;
  /** http(s) URL of the feed. */
  readonly url: string;
  /** Turns the body into a batch. */
  readonly parser: FeedParser;
  /** Time between successful polls (ms). Default 60000. */
  readonly intervalMs?: number;
  /** Request timeout, headers and body included (ms). Default 10000. */
  readonly timeoutMs?: number;
  /** Retry schedule after failures. */
  readonly backoff?: BackoffOptions;
  /** Extra request headers (API keys, `User-Agent`; api.weather.gov asks for a descriptive User-Agent). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Largest response body (bytes). Default 5 MiB. */
  readonly maxBytes?: number;
  /** Jitter source, numbers in [0, 1). Default: a generator seeded from the source name (no `Math.random`). */
  readonly random?: () => number;
  readonly timers?: Timers;
}

const JSON_ACCEPT = 'application/geo+json, application/json;q=0.9, */*;q=0.1';
const BINARY_ACCEPT = 'application/x-protobuf, application/octet-stream;q=0.9, */*;q=0.1';

class HttpPollSource extends PollingSource {
  readonly kind = 'http-poll';

  constructor(private readonly options: HttpPollOptions) {
    const binary = options.parser.body === 'binary';
    super(options, options.parser.topic, { accept: binary ? BINARY_ACCEPT : JSON_ACCEPT, maxUrls: 1 });
  }

  protected async poll(signal: AbortSignal, context: SourceContext): Promise<void> {
    const result = await this.fetcher.get(this.options.url, signal, context.now());
    if (signal.aborted) return;
    if (!result.modified) {
      context.reportSuccess();
      return;
    }
    const parser = this.options.parser;
    let body: unknown = result.body;
    if (parser.body !== 'binary') {
      try {
        body = decodeJsonDocument(result.body);
      } catch (error) {
        if (error instanceof FeedBoundsError) context.reject(error.message);
        throw error;
      }
    }
    const batch = parser.parse(body, {
      now: context.now(),
      sourceName: this.name,
      reject: (reason) => context.reject(reason),
    });
    result.accept();
    context.emit(batch);
  }
}

/** Creates an `http-poll` source. It polls immediately on `start` (without `start` waiting for it). */
export function createHttpPollSource(options: HttpPollOptions): Source {
  return new HttpPollSource(options);
}
