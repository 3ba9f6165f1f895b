/**
 * The `http-poll` source: GETs a URL every `intervalMs`, parses the JSON body with a format parser and reports
 * the batch. Each request has a timeout (an `AbortController`); `ETag` / `Last-Modified` are sent back as
 * `If-None-Match` / `If-Modified-Since`, so an unchanged feed costs a 304; a failure (transport error, timeout,
 * non-2xx status, bad body, a body outside the JSON bounds, which also counts as a rejected reading) is reported
 * and retried with exponential backoff and jitter (a `Retry-After` on 429 / 503 is honoured as a lower bound). `stop()` aborts the request in flight, clears the timer and closes the
 * kept-alive sockets.
 *
 * States: `idle` -> `waiting` (timer set) <-> `fetching` (request in flight) -> `stopped`.
 *
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import { backoffDelay, systemTimers } from '../backoff.js';
import type { BackoffOptions, Timers } from '../backoff.js';
import type { FeedParser } from '../parsers/types.js';
import { FeedFormatError } from '../parsers/types.js';
import type { Source, SourceContext } from '../source.js';
import { httpGet } from './http-get.js';
import { DEFAULT_JSON_BOUNDS, checkJsonBounds, type JsonBounds } from '../../protocol/json-bounds.js';

/** A whole feed document may hold more values than one input (its body is bounded by `maxBytes` instead). */
const FEED_BOUNDS: JsonBounds = Object.freeze({
  ...DEFAULT_JSON_BOUNDS,
  maxNodes: Number.POSITIVE_INFINITY,
  maxSize: Number.POSITIVE_INFINITY,
});

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

/** A non-2xx response. */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly status: number,
    /** From `Retry-After`, when the server sent one (ms). */
    readonly retryAfterMs: number | undefined,
  ) {
    super(`HTTP ${status}`);
  }
}

type PollState = 'idle' | 'waiting' | 'fetching' | 'stopped';

/** Default User-Agent sent to feeds. */
export const USER_AGENT = 'citypulse/0.1 (city data gateway)';

function retryAfter(value: string | string[] | undefined, now: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A tiny deterministic jitter source per poller, seeded from its name (no `Math.random`). */
function seededJitter(name: string): () => number {
  let state = 0x9e3779b9;
  for (let i = 0; i < name.length; i++) state = Math.imul(state ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

class HttpPollSource implements Source {
  readonly kind = 'http-poll';
  readonly topics: readonly string[];
  private state: PollState = 'idle';
  private context: SourceContext | null = null;
  private timer: unknown = null;
  private controller: AbortController | null = null;
  private inflight: Promise<void> | null = null;
  private failures = 0;
  private etag: string | undefined;
  private lastModified: string | undefined;
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 1 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 1 }),
  };
  private readonly timers: Timers;
  private readonly random: () => number;

  constructor(private readonly options: HttpPollOptions) {
    this.topics = [options.parser.topic];
    this.timers = options.timers ?? systemTimers;
    this.random = options.random ?? seededJitter(options.name);
  }

  get name(): string {
    return this.options.name;
  }

  start(context: SourceContext): void {
    if (this.state !== 'idle') return;
    this.context = context;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    const wasActive = this.state !== 'stopped';
    this.state = 'stopped';
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.controller?.abort(new Error('source stopped'));
    if (this.inflight !== null) await this.inflight;
    if (wasActive) {
      this.agents.http.destroy();
      this.agents.https.destroy();
    }
  }

  private schedule(ms: number): void {
    this.state = 'waiting';
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.inflight = this.poll().finally(() => {
        this.inflight = null;
      });
    }, ms);
  }

  private async poll(): Promise<void> {
    const context = this.context;
    if (this.state !== 'waiting' || context === null) return;
    this.state = 'fetching';
    const { timeoutMs = 10_000, intervalMs = 60_000 } = this.options;
    const controller = new AbortController();
    this.controller = controller;
    const timeout = this.timers.setTimeout(
      () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    let next = intervalMs;
    try {
      const response = await httpGet(this.options.url, {
        headers: {
          accept: 'application/geo+json, application/json;q=0.9, */*;q=0.1',
          'user-agent': USER_AGENT,
          ...this.options.headers,
          ...(this.etag === undefined ? {} : { 'if-none-match': this.etag }),
          ...(this.lastModified === undefined ? {} : { 'if-modified-since': this.lastModified }),
        },
        signal: controller.signal,
        agents: this.agents,
        maxBytes: this.options.maxBytes ?? 5 * 1024 * 1024,
      });
      if (this.state !== 'fetching') return;
      if (response.status === 304) {
        context.reportSuccess();
      } else if (response.status >= 200 && response.status < 300) {
        let body: unknown;
        try {
          body = JSON.parse(response.body);
        } catch {
          throw new FeedFormatError('response is not valid JSON');
        }
        // Depth, string and key bounds; the size is already bounded by `maxBytes`.
        const violation = checkJsonBounds(body, FEED_BOUNDS);
        if (violation !== null) {
          context.reject(`response refused (${violation.code}): ${violation.message}`);
          throw new FeedFormatError(`response refused (${violation.code}): ${violation.message}`);
        }
        const batch = this.options.parser.parse(body, { now: context.now(), sourceName: this.name });
        const etag = response.headers.etag;
        const lastModified = response.headers['last-modified'];
        this.etag = typeof etag === 'string' ? etag : undefined;
        this.lastModified = typeof lastModified === 'string' ? lastModified : undefined;
        context.emit(batch);
      } else {
        throw new HttpStatusError(
          response.status,
          retryAfter(response.headers['retry-after'], context.now()),
        );
      }
      this.failures = 0;
    } catch (error) {
      if (this.state !== 'fetching') return;
      this.failures += 1;
      context.reportError(
        controller.signal.aborted && controller.signal.reason instanceof Error
          ? controller.signal.reason
          : error,
      );
      next = backoffDelay(this.failures, this.options.backoff ?? {}, this.random);
      if (error instanceof HttpStatusError && error.retryAfterMs !== undefined)
        next = Math.max(next, error.retryAfterMs);
    } finally {
      this.timers.clearTimeout(timeout);
      this.controller = null;
    }
    if (this.state === 'fetching') this.schedule(next);
  }
}

/** Creates an `http-poll` source. It polls immediately on `start` (without `start` waiting for it). */
export function createHttpPollSource(options: HttpPollOptions): Source {
  return new HttpPollSource(options);
}
