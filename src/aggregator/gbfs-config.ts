/**
 * The config entry of the `gbfs` source (`{ "type": "gbfs", "url": ".../gbfs.json" }`): its options reader and
 * its factory, kept out of `config.ts` so that file only dispatches on the source type.
 *
 * @module
 */
import type { BackoffOptions } from './backoff.js';
import type { OptionReader } from './config-reader.js';
import type { Source } from './source.js';
import { createGbfsSource } from './sources/gbfs.js';

/** `{ "type": "gbfs", "name": ..., "url": <gbfs.json>, "language"?, "topic"?, "includeVehicles"?, "feedHosts"? }`. */
export interface GbfsSourceConfig {
  readonly type: 'gbfs';
  readonly name: string;
  readonly url: string;
  readonly topic: string;
  readonly language?: string;
  readonly includeVehicles: boolean;
  readonly feedHosts?: readonly string[];
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly backoff?: BackoffOptions;
}

/**
 * Reads a `gbfs` source entry, its structure already checked by `citypulse.schema.json` (`backoff` is read by the
 * caller, as for `http-poll`).
 */
export function readGbfsSourceConfig(r: OptionReader, backoff: BackoffOptions | undefined): GbfsSourceConfig {
  const language = r.string('language', null);
  const intervalMs = r.optionalNumber('intervalMs', { min: 100 });
  const timeoutMs = r.optionalNumber('timeoutMs', { min: 10 });
  const headers = r.stringMap('headers');
  const feedHosts = r.stringList('feedHosts');
  return {
    type: 'gbfs',
    name: r.string('name'),
    url: r.url('url'),
    topic: r.string('topic', 'bikes'),
    includeVehicles: r.boolean('includeVehicles', true),
    ...(language === undefined ? {} : { language }),
    ...(feedHosts === undefined ? {} : { feedHosts }),
    ...(intervalMs === undefined ? {} : { intervalMs }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(headers === undefined ? {} : { headers }),
    ...(backoff === undefined ? {} : { backoff }),
  };
}

/** The `gbfs` source of a config entry. */
export function createGbfsSourceFromConfig(config: GbfsSourceConfig): Source {
  return createGbfsSource(config);
}
