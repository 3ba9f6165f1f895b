/**
 * The citypulse config file (`citypulse.config.json`): which topics are served (the `topics` section,
 * `config-topics.ts`), which sources feed the aggregator, entity TTLs and alert rules. `loadConfig` reads and
 * validates it: the JSON bounds, then the structure against `citypulse.schema.json` (`config-schema.ts`, the one
 * source of truth for keys, types, enums and ranges: this file does not repeat them), then the semantic checks
 * here (env expansion, URL schemes, unique names, served topics). Errors name the bad field:
 * `sources[2].url: must be an http(s) URL`. `createSourcesFromConfig` builds the sources; `aggregatorOptionsFromConfig` gives everything the
 * `DataAggregator` constructor takes from it. String values may reference environment variables as `${NAME}`
 * or `${NAME:-default}` (for API keys, passwords, ports); an unset variable without a default is a config error.
 * `docs/sources.md` is the reference.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { checkJsonBounds } from '../protocol/json-bounds.js';
import { BUILTIN_TOPICS } from '../protocol/catalog/index.js';
import { DEFAULT_TOPICS, assertNever } from '../protocol/messages.js';
import type { Severity } from '../protocol/topics.js';
import { AQI_CATEGORIES } from '../protocol/topics.js';
import type { AlertRulesOptions } from './alerts.js';
import type { BackoffOptions } from './backoff.js';
import { ConfigError, OptionReader } from './config-reader.js';
import { checkConfigStructure } from './config-schema.js';
import { resolveConfigTopics } from './config-topics.js';
import type { TopicDefinition } from '../protocol/topic-definition.js';
import { createTopicRegistry, type TopicRegistry } from '../protocol/topic-registry.js';
import { isRecord } from '../shared/json.js';
import type { DataAggregatorOptions } from './data-aggregator.js';
import { createParser } from './parsers/index.js';
import { CITIES } from './cities.js';
import { SIMULATOR_TOPICS, createSimulator } from './simulator.js';
import { MAX_VEHICLES } from './simulator-transit.js';
import type { SimulatorTopic } from './simulator.js';
import type { Source } from './source.js';
import { createHttpPollSource } from './sources/http-poll.js';
import { createMqttSource, type MqttSourceOptions } from './sources/mqtt.js';
import { createGbfsSourceFromConfig, readGbfsSourceConfig, type GbfsSourceConfig } from './gbfs-config.js';
import type { ExternalAlertSeverity } from './source.js';

export { ConfigError } from './config-reader.js';

/** `{ "type": "simulator" }`. */
export interface SimulatorSourceConfig {
  readonly type: 'simulator';
  readonly name: string;
  readonly seed?: number;
  readonly intervalMs?: number;
  readonly city?: string;
  readonly topics?: readonly SimulatorTopic[];
  /** Transit fleet size (with topic `transit`). */
  readonly vehicles?: number;
}

/** `{ "type": "http-poll", "url": ..., "parser": { "format": ... } }`. */
export interface HttpPollSourceConfig {
  readonly type: 'http-poll';
  readonly name: string;
  readonly url: string;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly backoff?: BackoffOptions;
  /** Parser spec, validated; see `parsers/index.ts` for the formats and their options. */
  readonly parser: Readonly<Record<string, unknown>>;
}

/** `{ "type": "mqtt", "url": ..., "topics": { <city topic>: <filter(s)> } }`. */
export interface MqttSourceConfig extends Pick<
  MqttSourceOptions,
  'name' | 'url' | 'topics' | 'clientId' | 'username' | 'password' | 'qos' | 'reconnectPeriodMs'
> {
  readonly type: 'mqtt';
}

/** One source of the config file. */
export type SourceConfig = SimulatorSourceConfig | HttpPollSourceConfig | MqttSourceConfig | GbfsSourceConfig;

export type { GbfsSourceConfig } from './gbfs-config.js';

/** A validated config file. */
export interface CityPulseConfig {
  readonly sources: readonly SourceConfig[];
  /**
   * The `topics` section resolved into full definitions, in the order listed (defaults filled, catalog overrides
   * applied). Served topics: the four city topics, then these (see {@link servedTopicNames}).
   */
  readonly topics?: readonly TopicDefinition[];
  readonly ttlMs?: Readonly<Record<string, number>>;
  readonly alerts?: AlertRulesOptions | false;
  readonly sweepIntervalMs?: number;
}

/** Source types a config may use. */
export const SOURCE_TYPES = ['simulator', 'http-poll', 'mqtt', 'gbfs'] as const;
const CITY_TOPICS: readonly string[] = DEFAULT_TOPICS;
/** Built-in definitions a `topics` entry may name (to serve or tune them). */
const CATALOG: ReadonlyMap<string, TopicDefinition> = new Map(Object.entries(BUILTIN_TOPICS));
const EXTERNAL_SEVERITIES: readonly ExternalAlertSeverity[] = [
  'Extreme',
  'Severe',
  'Moderate',
  'Minor',
  'Unknown',
];

/** Replaces `${NAME}` (or `${NAME:-default}`) in every string of `value` with the environment variable. */
function expandEnv(value: unknown, path: string, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (_match, name: string, fallback?: string) => {
        const found = env[name] ?? fallback;
        if (found === undefined) throw new ConfigError(path, `environment variable ${name} is not set`);
        return found;
      },
    );
  }
  if (Array.isArray(value)) return value.map((item, i) => expandEnv(item, `${path}[${i}]`, env));
  if (isRecord(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, expandEnv(v, path === '' ? k : `${path}.${k}`, env)]),
    );
  }
  return value;
}

function backoff(reader: OptionReader): BackoffOptions | undefined {
  const b = reader.object('backoff', true);
  if (b === undefined) return undefined;
  const initialMs = b.optionalNumber('initialMs', { min: 1 });
  const maxMs = b.optionalNumber('maxMs', { min: 1 });
  const factor = b.optionalNumber('factor', { min: 1, max: 10 });
  return {
    ...(initialMs === undefined ? {} : { initialMs }),
    ...(maxMs === undefined ? {} : { maxMs }),
    ...(factor === undefined ? {} : { factor }),
  };
}

/** Refuses `name` at `path` unless it is a served topic, naming the served ones. */
function requireServed(name: string, path: string, served: readonly string[]): void {
  if (!served.includes(name))
    throw new ConfigError(
      path,
      `not a served topic (allowed: ${served.join(', ')}; add it to "topics" to serve it)`,
    );
}

/**
 * Reads one source (its structure already checked by the schema). `served` are the topics the config serves:
 * every topic a source names must be one of them. To add a source type: its schema in `citypulse.schema.json`
 * (`$defs.source-<type>` and the `type` enum), a member of {@link SourceConfig}, a case here and one in
 * {@link createSourceFromConfig}.
 */
function sourceConfig(value: unknown, path: string, served: readonly string[]): SourceConfig {
  const r = new OptionReader(value, path);
  const type = r.oneOf('type', SOURCE_TYPES);
  switch (type) {
    case 'simulator': {
      const city = r.string('city', null);
      if (city !== undefined && CITIES[city.toLowerCase()] === undefined) {
        throw new ConfigError(r.at('city'), `must be one of ${Object.keys(CITIES).join(', ')}`);
      }
      const seed = r.optionalNumber('seed', { integer: true });
      const intervalMs = r.optionalNumber('intervalMs', { min: 10 });
      const topics = r.stringList('topics', SIMULATOR_TOPICS);
      topics?.forEach((topic, i) => requireServed(topic, `${r.at('topics')}[${i}]`, served));
      const vehicles = r.optionalNumber('vehicles', { min: 0, max: MAX_VEHICLES, integer: true });
      return {
        type,
        name: r.string('name', 'simulator'),
        ...(seed === undefined ? {} : { seed }),
        ...(intervalMs === undefined ? {} : { intervalMs }),
        ...(city === undefined ? {} : { city }),
        ...(topics === undefined ? {} : { topics }),
        ...(vehicles === undefined ? {} : { vehicles }),
      };
    }
    case 'http-poll': {
      const parserReader = r.object('parser');
      const parser = createParser(parserReader.value, parserReader.path); // validates the parser options
      requireServed(parser.topic, parserReader.at(parserReader.has('topic') ? 'topic' : 'format'), served);
      const intervalMs = r.optionalNumber('intervalMs', { min: 100 });
      const timeoutMs = r.optionalNumber('timeoutMs', { min: 10 });
      const headers = r.stringMap('headers');
      const b = backoff(r);
      return {
        type,
        name: r.string('name'),
        url: r.url('url'),
        parser: parserReader.value,
        ...(intervalMs === undefined ? {} : { intervalMs }),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(headers === undefined ? {} : { headers }),
        ...(b === undefined ? {} : { backoff: b }),
      };
    }
    case 'mqtt': {
      const topicsReader = r.object('topics');
      const topics: Record<string, string | string[]> = {};
      for (const key of Object.keys(topicsReader.value)) {
        requireServed(key, topicsReader.at(key), served);
        const v = topicsReader.value[key];
        topics[key] = Array.isArray(v)
          ? (topicsReader.stringList(key) as string[])
          : topicsReader.string(key);
      }
      if (Object.keys(topics).length === 0)
        throw new ConfigError(topicsReader.path, 'must map at least one topic to an MQTT topic filter');
      const clientId = r.string('clientId', null);
      const username = r.string('username', null);
      const password = r.string('password', null);
      const qos = r.optionalNumber('qos', { min: 0, max: 1, integer: true }) as 0 | 1 | undefined;
      const reconnectPeriodMs = r.optionalNumber('reconnectPeriodMs', { min: 10 });
      return {
        type,
        name: r.string('name'),
        url: r.url('url', ['mqtt:', 'mqtts:', 'ws:', 'wss:']),
        topics,
        ...(clientId === undefined ? {} : { clientId }),
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password }),
        ...(qos === undefined ? {} : { qos }),
        ...(reconnectPeriodMs === undefined ? {} : { reconnectPeriodMs }),
      };
    }
    case 'gbfs': {
      const gbfs = readGbfsSourceConfig(r, backoff(r));
      requireServed(gbfs.topic, r.at(r.has('topic') ? 'topic' : 'type'), served);
      return gbfs;
    }
    default:
      return assertNever(type);
  }
}

function alertsConfig(value: unknown, path: string): AlertRulesOptions | false {
  if (value === false) return false;
  const r = new OptionReader(value, path);
  const rule = <T>(key: string, read: (rr: OptionReader) => T): T | false | undefined => {
    const v = r.value[key];
    if (v === undefined) return undefined;
    if (v === false) return false;
    return read(new OptionReader(v, r.at(key)));
  };
  const accidentSeverity = rule('accidentSeverity', (rr) => {
    return { minSeverity: rr.number('minSeverity', { min: 1, max: 5, integer: true }, 4) as Severity };
  });
  const airQuality = rule('airQuality', (rr) => {
    return {
      category: rr.oneOf('category', AQI_CATEGORIES, 'unhealthy'),
      hysteresis: rr.number('hysteresis', { min: 0, max: 100 }, 10),
    };
  });
  const cameraOffline = rule('cameraOffline', (rr) => {
    return { afterMs: rr.number('afterMs', { min: 0 }, 600_000) };
  });
  const severeWeather = rule('severeWeather', (rr) => {
    return { minSeverity: rr.oneOf('minSeverity', EXTERNAL_SEVERITIES, 'Severe') };
  });
  const serviceAlerts = rule('serviceAlerts', (rr) => {
    return { minSeverity: rr.oneOf('minSeverity', EXTERNAL_SEVERITIES, 'Unknown') };
  });
  return {
    ...(accidentSeverity === undefined ? {} : { accidentSeverity }),
    ...(airQuality === undefined ? {} : { airQuality }),
    ...(cameraOffline === undefined ? {} : { cameraOffline }),
    ...(severeWeather === undefined ? {} : { severeWeather }),
    ...(serviceAlerts === undefined ? {} : { serviceAlerts }),
  };
}

/**
 * Validates a decoded config object. Throws {@link ConfigError} naming the first bad field.
 * `env` supplies `${NAME}` references (default `process.env`).
 */
export function validateConfig(value: unknown, env: NodeJS.ProcessEnv = process.env): CityPulseConfig {
  // A config is input too: the JSON bounds first, then the structure (citypulse.schema.json), then the rest.
  const violation = checkJsonBounds(value);
  if (violation !== null) throw new ConfigError('', `refused (${violation.code}): ${violation.message}`);
  checkConfigStructure(value);
  const r = new OptionReader(expandEnv(value, '', env), '');
  const topicsReader = r.object('topics', true);
  const topics = topicsReader === undefined ? undefined : resolveConfigTopics(topicsReader.value, CATALOG);
  const served = servedTopicNames({ topics });
  const sources = r.array('sources', (v, path) => sourceConfig(v, path, served)) ?? [];
  if (sources.length === 0) throw new ConfigError('sources', 'must list at least one source');
  const seen = new Set<string>();
  sources.forEach((source, i) => {
    if (seen.has(source.name))
      throw new ConfigError(`sources[${i}].name`, `duplicate source name "${source.name}"`);
    if (source.name === 'ingest')
      throw new ConfigError(`sources[${i}].name`, '"ingest" is reserved for POST /api/ingest');
    seen.add(source.name);
  });
  const ttl = r.object('ttlMs', true);
  const ttlMs =
    ttl === undefined
      ? undefined
      : Object.fromEntries(
          Object.keys(ttl.value).map((k) => {
            requireServed(k, ttl.at(k), served);
            if (
              topicsReader?.value[k] !== undefined &&
              isRecord(topicsReader.value[k]) &&
              topicsReader.value[k].ttlMs !== undefined
            )
              throw new ConfigError(ttl.at(k), `set either ttlMs.${k} or topics.${k}.ttlMs, not both`);
            return [k, ttl.number(k, { min: 0 })];
          }),
        );
  const sweepIntervalMs = r.optionalNumber('sweepIntervalMs', { min: 10 });
  return {
    sources,
    ...(topics === undefined ? {} : { topics }),
    ...(ttlMs === undefined ? {} : { ttlMs }),
    ...(r.has('alerts') ? { alerts: alertsConfig(r.value.alerts, 'alerts') } : {}),
    ...(sweepIntervalMs === undefined ? {} : { sweepIntervalMs }),
  };
}

/**
 * The definitions of every topic a config serves, in order: the four city topics (their catalog definitions, or
 * the tuned ones the `topics` section gives), then the other topics it lists. `createServer({ topics })` takes
 * them.
 */
export function topicDefinitionsFromConfig(config: Pick<CityPulseConfig, 'topics'>): TopicDefinition[] {
  const listed = new Map((config.topics ?? []).map((t) => [t.name, t]));
  return servedTopicNames(config).map((name) => listed.get(name) ?? (CATALOG.get(name) as TopicDefinition));
}

/** The registry of the topics a config serves (see {@link topicDefinitionsFromConfig}). */
export function topicRegistryFromConfig(config: Pick<CityPulseConfig, 'topics'>): TopicRegistry {
  return createTopicRegistry(topicDefinitionsFromConfig(config));
}

/** The topics a config serves, in order: the four city topics, then those its `topics` section lists. */
export function servedTopicNames(config: Pick<CityPulseConfig, 'topics'>): string[] {
  const names: string[] = [...CITY_TOPICS];
  for (const topic of config.topics ?? []) if (!names.includes(topic.name)) names.push(topic.name);
  return names;
}

/** Reads and validates a JSON config file. Errors say which file and which field. */
export async function loadConfig(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CityPulseConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(
      path,
      `cannot read the config file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, `not valid JSON: ${(error as Error).message}`);
  }
  try {
    return validateConfig(value, env);
  } catch (error) {
    if (error instanceof ConfigError)
      throw new ConfigError(error.field === '' ? path : `${path}: ${error.field}`, error.reason);
    throw error;
  }
}

/** Builds one source of a config (`index` is its position, for error paths). */
export function createSourceFromConfig(source: SourceConfig, index: number): Source {
  switch (source.type) {
    case 'simulator':
      return createSimulator({
        name: source.name,
        ...(source.seed === undefined ? {} : { seed: source.seed }),
        ...(source.intervalMs === undefined ? {} : { intervalMs: source.intervalMs }),
        ...(source.city === undefined ? {} : { city: source.city }),
        ...(source.topics === undefined ? {} : { topics: source.topics }),
        ...(source.vehicles === undefined ? {} : { vehicles: source.vehicles }),
      });
    case 'http-poll':
      return createHttpPollSource({
        name: source.name,
        url: source.url,
        parser: createParser(source.parser, `sources[${index}].parser`),
        ...(source.intervalMs === undefined ? {} : { intervalMs: source.intervalMs }),
        ...(source.timeoutMs === undefined ? {} : { timeoutMs: source.timeoutMs }),
        ...(source.headers === undefined ? {} : { headers: source.headers }),
        ...(source.backoff === undefined ? {} : { backoff: source.backoff }),
      });
    case 'mqtt':
      return createMqttSource(source);
    case 'gbfs':
      return createGbfsSourceFromConfig(source);
    default:
      return assertNever(source);
  }
}

/** Builds the sources a config declares. */
export function createSourcesFromConfig(config: CityPulseConfig): Source[] {
  return config.sources.map(createSourceFromConfig);
}

/** One factory per configured source, for hosts that (re)create sources on demand (cluster source leases). */
export function sourceFactoriesFromConfig(config: CityPulseConfig): (() => Source)[] {
  return config.sources.map((source, i) => () => createSourceFromConfig(source, i));
}

/** The `DataAggregator` options a config gives: its topics, sources, TTLs, alert rules and sweep interval. */
export function aggregatorOptionsFromConfig(
  config: CityPulseConfig,
): Pick<DataAggregatorOptions, 'registry' | 'sources' | 'ttlMs' | 'alerts' | 'sweepIntervalMs'> {
  return {
    registry: topicRegistryFromConfig(config),
    sources: createSourcesFromConfig(config),
    ...(config.ttlMs === undefined ? {} : { ttlMs: config.ttlMs }),
    ...(config.alerts === undefined ? {} : { alerts: config.alerts }),
    ...(config.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: config.sweepIntervalMs }),
  };
}
