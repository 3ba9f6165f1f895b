/**
 * The `gbfs` source: a bike-share system's GBFS v2.x / v3.x feeds. Each poll reads the auto-discovery `gbfs.json`,
 * then `station_information`, `station_status` and (with `includeVehicles`) `free_bike_status` / `vehicle_status`,
 * and reports one complete batch of stations and free vehicles (`parsers/gbfs.ts` maps them). A document is
 * fetched again only once its `ttl` ran out (capped at an hour), and conditionally (`ETag`), through the shared
 * poll loop of `poll-loop.ts` (timeout per poll, backoff, `Retry-After`). Any document failing (status, size, not
 * JSON, outside the JSON bounds, wrong version, a required feed missing) fails the whole poll: nothing is emitted,
 * so no partial dataset removes stations.
 *
 * @module
 */
import { FeedFormatError } from '../parsers/types.js';
import {
  gbfsData,
  parseDiscovery,
  stationEntities,
  vehicleEntities,
  type GbfsMajor,
} from '../parsers/gbfs.js';
import type { Source, SourceContext } from '../source.js';
import {
  FeedBoundsError,
  PollingSource,
  decodeJsonDocument,
  type PollingSourceOptions,
} from './poll-loop.js';

/** Options of {@link createGbfsSource}. */
export interface GbfsSourceOptions extends PollingSourceOptions {
  /** URL of the auto-discovery `gbfs.json`. */
  readonly url: string;
  /** Topic of the entities. Default `bikes`. */
  readonly topic?: string;
  /** Language of the v2 feeds and of v3 names. Default: `en`, else the first listed. */
  readonly language?: string;
  /** Report free (undocked) vehicles too. Default true. */
  readonly includeVehicles?: boolean;
  /**
   * Hosts besides the discovery URL's own that the feeds it lists may be on (`cdn.example.org`, or with a port
   * `cdn.example.org:8443`). Default none: a listed feed on another host fails the poll, so a hostile discovery
   * file can neither send the poller elsewhere nor receive the configured `headers` (an API key).
   */
  readonly feedHosts?: readonly string[];
}

/** Longest `ttl` honoured (s). */
const MAX_TTL_S = 3600;

interface CachedDocument {
  readonly data: Record<string, unknown>;
  readonly version: string;
  readonly expiresAt: number;
}

class GbfsSource extends PollingSource {
  readonly kind = 'gbfs';
  private readonly cache = new Map<string, CachedDocument>();

  /** Hosts (`host`, or `hostname` for entries without a port) whose feeds may be fetched. */
  private readonly feedHosts: ReadonlySet<string>;

  constructor(private readonly options: GbfsSourceOptions) {
    super(options, options.topic ?? 'bikes', { accept: 'application/json', maxUrls: 8 });
    this.feedHosts = new Set([
      new URL(options.url).host,
      ...(options.feedHosts ?? []).map((h) => h.toLowerCase()),
    ]);
  }

  /** A document's decoded JSON: from the cache while its ttl runs, else fetched (a 304 renews the cached one). */
  private async document(
    url: string,
    name: string,
    signal: AbortSignal,
    context: SourceContext,
  ): Promise<unknown> {
    const now = context.now();
    const cached = this.cache.get(url);
    if (cached !== undefined && cached.expiresAt > now) return { version: cached.version, data: cached.data };
    const result = await this.fetcher.get(url, signal, now, cached !== undefined);
    let doc: unknown;
    if (!result.modified) {
      doc = { version: (cached as CachedDocument).version, data: (cached as CachedDocument).data };
    } else {
      try {
        doc = decodeJsonDocument(result.body);
      } catch (error) {
        if (error instanceof FeedBoundsError) context.reject(`${name}: ${error.message}`);
        throw new FeedFormatError(`${name}: ${(error as Error).message}`);
      }
    }
    const { data, ttl } = gbfsData(doc, name);
    if (result.modified) result.accept();
    if (this.cache.size >= 8 && !this.cache.has(url)) this.cache.clear();
    this.cache.set(url, {
      data,
      version: (doc as { version: string }).version,
      expiresAt: now + Math.min(ttl, MAX_TTL_S) * 1000,
    });
    return doc;
  }

  protected async poll(signal: AbortSignal, context: SourceContext): Promise<void> {
    const discovery = parseDiscovery(
      await this.document(this.options.url, 'gbfs.json', signal, context),
      this.options.language,
    );
    const feedUrl = (feed: string): string => {
      const url = discovery.feeds.get(feed);
      if (url === undefined) throw new FeedFormatError(`gbfs.json lists no ${feed} feed`);
      const resolved = new URL(url, this.options.url);
      if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:')
        throw new FeedFormatError(`gbfs.json: the ${feed} URL is not http(s)`);
      if (!this.feedHosts.has(resolved.host) && !this.feedHosts.has(resolved.hostname)) {
        throw new FeedFormatError(
          `gbfs.json: the ${feed} URL is on host ${JSON.stringify(resolved.host.slice(0, 256))}, not the discovery's (list it in feedHosts to allow it)`,
        );
      }
      return resolved.href;
    };
    const read = async (feed: string, major: GbfsMajor): Promise<Record<string, unknown>> => {
      const doc = await this.document(feedUrl(feed), feed, signal, context);
      return gbfsData(doc, feed, major).data;
    };
    const retained: string[] = [];
    const reject = (reason: string, id?: string): void => {
      context.reject(reason);
      if (id !== undefined) retained.push(id);
    };
    const information = await read('station_information', discovery.major);
    const status = await read('station_status', discovery.major);
    const vehicleFeed = discovery.major === 3 ? 'vehicle_status' : 'free_bike_status';
    const vehicles =
      this.options.includeVehicles !== false && discovery.feeds.has(vehicleFeed)
        ? await read(vehicleFeed, discovery.major)
        : undefined;
    if (signal.aborted) return;
    const upserts = [
      ...stationEntities(information, status, discovery.major, this.options.language, reject),
      ...(vehicles === undefined ? [] : vehicleEntities(vehicles, discovery.major, reject)),
    ];
    context.emit({
      topic: this.topics[0] as string,
      upserts,
      complete: true,
      ...(retained.length > 0 ? { retained } : {}),
    });
  }
}

/** Creates a `gbfs` source. It polls immediately on `start` (without `start` waiting for it). */
export function createGbfsSource(options: GbfsSourceOptions): Source {
  return new GbfsSource(options);
}
