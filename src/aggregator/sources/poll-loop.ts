/**
 * What every polling source shares (`http-poll`, `gbfs`): the poll loop (an interval between successful polls, a
 * timeout per poll through an `AbortController`, exponential backoff with jitter after a failure, a `Retry-After`
 * on 429 / 503 honoured as a lower bound, `stop()` aborting the poll in flight), the conditional GET (`ETag` /
 * `Last-Modified` sent back as `If-None-Match` / `If-Modified-Since`, per URL, remembered only once the caller
 * accepted the body) and the decoding of a JSON feed document within the JSON bounds.
 *
 * States of a loop: `idle` -> `waiting` (timer set) <-> `fetching` (poll in flight) -> `stopped`.
 *
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import { backoffDelay, systemTimers } from '../backoff.js';
import type { BackoffOptions, Timers } from '../backoff.js';
import { FeedFormatError } from '../parsers/types.js';
import type { Source, SourceContext } from '../source.js';
import { httpGet } from './http-get.js';
import { DEFAULT_JSON_BOUNDS, checkJsonBounds, type JsonBounds } from '../../protocol/json-bounds.js';

/** Default User-Agent sent to feeds. */
export const USER_AGENT = 'citypulse/0.1 (city data gateway)';

/** Default largest response body (bytes). */
export const DEFAULT_MAX_BYTES = 5 * 1024 * 1024;

/** A whole feed document may hold more values than one input (its body is bounded by `maxBytes` instead). */
const FEED_BOUNDS: JsonBounds = Object.freeze({
  ...DEFAULT_JSON_BOUNDS,
  maxNodes: Number.POSITIVE_INFINITY,
  maxSize: Number.POSITIVE_INFINITY,
});

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

/** A JSON document outside the JSON bounds (also counted as a rejected reading by the caller). */
export class FeedBoundsError extends FeedFormatError {}

/**
 * Decodes a JSON feed document: throws {@link FeedFormatError} when it is not JSON and {@link FeedBoundsError}
 * when it is outside the depth, string and key bounds (its size is already bounded by `maxBytes`).
 */
export function decodeJsonDocument(bytes: Buffer): unknown {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new FeedFormatError('response is not valid JSON');
  }
  const violation = checkJsonBounds(body, FEED_BOUNDS);
  if (violation !== null)
    throw new FeedBoundsError(`response refused (${violation.code}): ${violation.message}`);
  return body;
}

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

/** The answer of {@link ConditionalGet.get}: a new body, or "not modified since the body you accepted". */
export type FetchResult =
  | { readonly modified: false }
  | {
      readonly modified: true;
      readonly body: Buffer;
      /** Remember this response's validators (call once the body was accepted). */
      readonly accept: () => void;
    };

/** Options of {@link ConditionalGet}. */
export interface ConditionalGetOptions {
  /** `Accept` header. */
  readonly accept: string;
  /** Extra request headers (API keys, `User-Agent`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Largest response body (bytes). Default 5 MiB. */
  readonly maxBytes?: number;
  /** Most URLs whose validators are remembered. Default 16. */
  readonly maxUrls?: number;
}

/**
 * Conditional GETs through kept-alive agents the owner closes (`close()`): the `ETag` / `Last-Modified` of the
 * last accepted body of each URL are sent back, so an unchanged feed costs a 304.
 */
export class ConditionalGet {
  readonly #validators = new Map<string, { etag?: string; lastModified?: string }>();
  readonly #agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 1 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 1 }),
  };

  constructor(private readonly options: ConditionalGetOptions) {}

  /**
   * GETs `url`; with `conditional` (default true) the validators of its last accepted body are sent. Throws
   * {@link HttpStatusError} on a status other than 2xx / 304, and what `httpGet` throws.
   */
  async get(url: string, signal: AbortSignal, now: number, conditional = true): Promise<FetchResult> {
    const known = conditional ? this.#validators.get(url) : undefined;
    const response = await httpGet(url, {
      headers: {
        accept: this.options.accept,
        'user-agent': USER_AGENT,
        ...this.options.headers,
        ...(known?.etag === undefined ? {} : { 'if-none-match': known.etag }),
        ...(known?.lastModified === undefined ? {} : { 'if-modified-since': known.lastModified }),
      },
      signal,
      agents: this.#agents,
      maxBytes: this.options.maxBytes ?? DEFAULT_MAX_BYTES,
    });
    if (response.status === 304 && known !== undefined) return { modified: false };
    if (response.status < 200 || response.status >= 300)
      throw new HttpStatusError(response.status, retryAfter(response.headers['retry-after'], now));
    const { etag, 'last-modified': lastModified } = response.headers;
    return {
      modified: true,
      body: response.body,
      accept: () => {
        this.#validators.delete(url);
        if (this.#validators.size >= (this.options.maxUrls ?? 16)) this.#validators.clear();
        this.#validators.set(url, {
          ...(typeof etag === 'string' ? { etag } : {}),
          ...(typeof lastModified === 'string' ? { lastModified } : {}),
        });
      },
    };
  }

  /** Closes the kept-alive sockets. */
  close(): void {
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }
}

/** Schedule of a {@link PollLoop}. */
export interface PollSchedule {
  /** Time between successful polls (ms). Default 60000. */
  readonly intervalMs?: number;
  /** Timeout of one poll, every request of it included (ms). Default 10000. */
  readonly timeoutMs?: number;
  /** Retry schedule after failures. */
  readonly backoff?: BackoffOptions;
  /** Jitter source, numbers in [0, 1). Default: a generator seeded from the source name (no `Math.random`). */
  readonly random?: () => number;
  readonly timers?: Timers;
}

/**
 * One poll. Resolves once done (it emits or reports success itself, after checking `signal.aborted`), optionally
 * with the delay before the next poll (default: the interval); throws on a failure, which the loop reports and
 * retries with backoff.
 */
export type PollOnce = (signal: AbortSignal, context: SourceContext) => Promise<number | void>;

type PollState = 'idle' | 'waiting' | 'fetching' | 'stopped';

/** Runs a {@link PollOnce} on a schedule with timeouts and backoff. */
export class PollLoop {
  private state: PollState = 'idle';
  private context: SourceContext | null = null;
  private timer: unknown = null;
  private controller: AbortController | null = null;
  private inflight: Promise<void> | null = null;
  private failures = 0;
  private readonly timers: Timers;
  private readonly random: () => number;

  constructor(
    name: string,
    private readonly schedule: PollSchedule,
    private readonly once: PollOnce,
  ) {
    this.timers = schedule.timers ?? systemTimers;
    this.random = schedule.random ?? seededJitter(name);
  }

  /** Polls at once (without waiting for it), then on the schedule. */
  start(context: SourceContext): void {
    if (this.state !== 'idle') return;
    this.context = context;
    this.wait(0);
  }

  /** Aborts the poll in flight and clears the timer. Resolves true on the first call (false later). */
  async stop(): Promise<boolean> {
    const wasActive = this.state !== 'stopped';
    this.state = 'stopped';
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.controller?.abort(new Error('source stopped'));
    if (this.inflight !== null) await this.inflight;
    return wasActive;
  }

  private wait(ms: number): void {
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
    const { timeoutMs = 10_000, intervalMs = 60_000 } = this.schedule;
    const controller = new AbortController();
    this.controller = controller;
    const timeout = this.timers.setTimeout(
      () => controller.abort(new Error(`timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    let next = intervalMs;
    try {
      const asked = await this.once(controller.signal, context);
      if (this.state !== 'fetching') return;
      if (typeof asked === 'number' && Number.isFinite(asked)) next = Math.max(0, asked);
      this.failures = 0;
    } catch (error) {
      if (this.state !== 'fetching') return;
      this.failures += 1;
      context.reportError(
        controller.signal.aborted && controller.signal.reason instanceof Error
          ? controller.signal.reason
          : error,
      );
      next = backoffDelay(this.failures, this.schedule.backoff ?? {}, this.random);
      if (error instanceof HttpStatusError && error.retryAfterMs !== undefined)
        next = Math.max(next, error.retryAfterMs);
    } finally {
      this.timers.clearTimeout(timeout);
      this.controller = null;
    }
    if (this.state === 'fetching') this.wait(next);
  }
}

/** What every polling source is configured with. */
export interface PollingSourceOptions extends PollSchedule {
  /** Source name (unique; `Entity.source`). */
  readonly name: string;
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Largest response body (bytes). Default 5 MiB. */
  readonly maxBytes?: number;
}

/**
 * A source that polls over HTTP: owns a {@link ConditionalGet} (`fetcher`) and a {@link PollLoop} running `poll`;
 * `stop()` ends the loop, then closes the sockets.
 */
export abstract class PollingSource implements Source {
  abstract readonly kind: string;
  readonly topics: readonly string[];
  protected readonly fetcher: ConditionalGet;
  readonly #loop: PollLoop;
  readonly #name: string;

  constructor(options: PollingSourceOptions, topic: string, fetch: { accept: string; maxUrls: number }) {
    this.#name = options.name;
    this.topics = [topic];
    this.fetcher = new ConditionalGet({
      ...fetch,
      maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
      ...(options.headers === undefined ? {} : { headers: options.headers }),
    });
    this.#loop = new PollLoop(options.name, options, (signal, context) => this.poll(signal, context));
  }

  get name(): string {
    return this.#name;
  }

  start(context: SourceContext): void {
    this.#loop.start(context);
  }

  async stop(): Promise<void> {
    if (await this.#loop.stop()) this.fetcher.close();
  }

  /** One poll (see {@link PollOnce}). */
  protected abstract poll(signal: AbortSignal, context: SourceContext): Promise<number | void>;
}
