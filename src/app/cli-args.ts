/**
 * Command-line parsing of `citypulse serve`: flags and their environment equivalents, turned into server options.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LOG_LEVELS, type LogLevel } from '../shared/logger.js';
import type { CityPulseServerOptions } from './create-server.js';
import { DEFAULT_LIMITS } from '../security/limits.js';

/** The text of `citypulse --help`. */
export const HELP = `citypulse - real-time gateway for live city data

Usage: citypulse serve [options]

Options (environment variable in brackets):
  --port <n>                  TCP port, 0 for any free one [PORT] (default 8080)
  --host <addr>               interface to bind [HOST] (default 0.0.0.0)
  --source <simulator|none>   built-in data source [CITYPULSE_SOURCE] (default simulator)
  -c, --config <file>         sources, TTLs and alert rules from a JSON config (docs/sources.md); replaces
                              --source [CITYPULSE_CONFIG]
  --seed <n>                  simulator seed [CITYPULSE_SEED] (default 42)
  --simulator-interval <ms>   simulator tick [CITYPULSE_SIMULATOR_INTERVAL_MS] (default 1000)
  --publish-key <key>         enables POST /api/publish, /api/broadcast, /api/ingest for this Bearer key;
                              repeat for several keys [CITYPULSE_PUBLISH_KEY, comma-separated]
  --heartbeat-interval <ms>   protocol ping interval [CITYPULSE_HEARTBEAT_INTERVAL_MS] (default 10000)
  --heartbeat-timeout <ms>    drop clients silent this long [CITYPULSE_HEARTBEAT_TIMEOUT_MS] (default 30000)
  --max-payload <bytes>       largest client frame [CITYPULSE_MAX_PAYLOAD] (default 65536)
  --max-subscriptions <n>     topics per client [CITYPULSE_MAX_SUBSCRIPTIONS] (default: all topics)
  --log-level <level>         ${LOG_LEVELS.join('|')} [LOG_LEVEL] (default info)
  --redis <url>               cluster mode: share seqs, history, state and source leases through this Redis,
                              e.g. redis://127.0.0.1:6379 [CITYPULSE_REDIS_URL] (default: single node, no Redis)
  --redis-prefix <prefix>     prefix of every Redis key [CITYPULSE_REDIS_PREFIX] (default citypulse:)
  --node-id <id>              this node's id in the cluster [CITYPULSE_NODE_ID] (default: random)
  --history-size <n>          per-topic history kept for resume [CITYPULSE_HISTORY_SIZE] (default 1000)
  --lease-ttl <ms>            cluster mode: source lease lifetime; a dead holder is replaced within about this
                              long [CITYPULSE_LEASE_TTL_MS] (default 5000)
  --drain <ms>                on SIGTERM/SIGINT, spread the clients' 1001 closes over this window
                              [CITYPULSE_DRAIN_MS] (default 2000)
  --metrics <on|off>          Prometheus metrics at GET /metrics [CITYPULSE_METRICS] (default on)
  --metrics-port <n>          serve GET /metrics on its own listener at this port (0: any), not on --port
                              [CITYPULSE_METRICS_PORT] (default: on --port, needing a publish key if auth is on)
  --compression <on|off>      permessage-deflate for clients that offer it, compressed once per message
                              [CITYPULSE_COMPRESSION] (default on)

Security and limits:
  --auth-secret <secret>      verify connection JWTs with this HS256 secret (>= 32 bytes) [CITYPULSE_AUTH_SECRET]
  --auth-jwks <path|url>      verify RS256/ES256 JWTs against this JWKS file or http(s) URL [CITYPULSE_AUTH_JWKS]
  --auth-audience <aud>       required "aud" [CITYPULSE_AUTH_AUDIENCE]
  --auth-issuer <iss>         required "iss" [CITYPULSE_AUTH_ISSUER]
  --auth-default-topics <p>   topic patterns for tokens without a "topics" claim, comma-separated
                              [CITYPULSE_AUTH_DEFAULT_TOPICS] (default: none)
  --allowed-origins <list>    comma-separated origins allowed to connect, "*.example.com" wildcards
                              [CITYPULSE_ALLOWED_ORIGINS] (default: any)
  --max-connections <n>       WebSocket connections in total, then 503 [CITYPULSE_MAX_CONNECTIONS] (default 10000)
  --max-connections-per-ip <n> per client IP, then 429 [CITYPULSE_MAX_CONNECTIONS_PER_IP] (default 1000)
  --max-pending-connections <n> TCP connections not (yet) WebSockets, then 503 [CITYPULSE_MAX_PENDING_CONNECTIONS]
                              (default 1024)
  --max-pending-per-ip <n>    the same per socket address, then 429 [CITYPULSE_MAX_PENDING_PER_IP] (default 256;
                              none with --trust-proxy)
  --headers-timeout <ms>      time to send a request head, then 408 [CITYPULSE_HEADERS_TIMEOUT_MS] (default 5000)
  --request-timeout <ms>      time to send a whole request, then 408 [CITYPULSE_REQUEST_TIMEOUT_MS] (default 15000)
  --trust-proxy <hops>        proxies appending to X-Forwarded-For [CITYPULSE_TRUST_PROXY] (default 0)
  --rate-limit <n>            client frames per second per connection, 0 = off [CITYPULSE_RATE_LIMIT] (default 20)
  --rate-burst <n>            frames allowed in a burst [CITYPULSE_RATE_BURST] (default 100, or twice
                              --rate-limit if more)
  --handshake-timeout <ms>    bound on token verification at upgrade [CITYPULSE_HANDSHAKE_TIMEOUT_MS] (default 5000)
  --max-body <bytes>          largest HTTP request body [CITYPULSE_MAX_BODY] (default 1048576)

  -v, --version               print the version and exit
  -h, --help                  this text

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 on a start-up failure, 2 on bad usage.
`;

/** A usage error: printed with the hint to run --help, exit code 2. */
export class UsageError extends Error {}

/** How many directories {@link readPackageVersion} climbs from its start before giving up. */
const PACKAGE_JSON_SEARCH_DEPTH = 6;

/**
 * The `version` of the package a file belongs to: the first `package.json` found walking up from the directory of
 * `from` (default: this module, so `dist/app/cli-args.js` finds the installed package's own `package.json` wherever the
 * build output sits in the tree). Throws when none is found within a few levels.
 */
export function readPackageVersion(from: string | URL = import.meta.url): string {
  let dir = dirname(typeof from === 'string' && !from.startsWith('file:') ? from : fileURLToPath(from));
  for (let level = 0; level < PACKAGE_JSON_SEARCH_DEPTH; level++) {
    let text: string | undefined;
    try {
      text = readFileSync(join(dir, 'package.json'), 'utf8');
    } catch {
      // no package.json here: climb
    }
    if (text !== undefined) {
      const version: unknown = (JSON.parse(text) as { version?: unknown }).version;
      if (typeof version === 'string' && version !== '') return version;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`no package.json with a version above ${String(from)}`);
}

function integer(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

function optionalInteger(name: string, value: string | undefined, min = 1): number | undefined {
  return value === undefined || value === '' ? undefined : integer(name, value, 0, min);
}

/**
 * Turns argv (without node and script) and the environment into server options. `help: true` means "print and exit
 * 0 without serving": `print` says what (`--help` wins over `--version`).
 */
export function parseServeArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
):
  | { help: true; print: 'help' | 'version' }
  | {
      help: false;
      options: CityPulseServerOptions;
      logLevel: LogLevel;
      metrics: boolean;
      configFile?: string;
    } {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        source: { type: 'string' },
        seed: { type: 'string' },
        'simulator-interval': { type: 'string' },
        'publish-key': { type: 'string', multiple: true },
        'heartbeat-interval': { type: 'string' },
        'heartbeat-timeout': { type: 'string' },
        'max-payload': { type: 'string' },
        'max-subscriptions': { type: 'string' },
        'log-level': { type: 'string' },
        redis: { type: 'string' },
        'redis-prefix': { type: 'string' },
        'node-id': { type: 'string' },
        'history-size': { type: 'string' },
        'lease-ttl': { type: 'string' },
        drain: { type: 'string' },
        metrics: { type: 'string' },
        'metrics-port': { type: 'string' },
        'max-pending-connections': { type: 'string' },
        'max-pending-per-ip': { type: 'string' },
        'headers-timeout': { type: 'string' },
        'request-timeout': { type: 'string' },
        compression: { type: 'string' },
        'auth-secret': { type: 'string' },
        'auth-jwks': { type: 'string' },
        'auth-audience': { type: 'string' },
        'auth-issuer': { type: 'string' },
        'auth-default-topics': { type: 'string' },
        'allowed-origins': { type: 'string' },
        'max-connections': { type: 'string' },
        'max-connections-per-ip': { type: 'string' },
        'trust-proxy': { type: 'string' },
        'rate-limit': { type: 'string' },
        'rate-burst': { type: 'string' },
        'handshake-timeout': { type: 'string' },
        'max-body': { type: 'string' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true, print: 'help' };
  if (values.version) return { help: true, print: 'version' };
  const command = positionals[0] ?? 'serve';
  if (command !== 'serve' || positionals.length > 1)
    throw new UsageError(`unknown command "${positionals.join(' ')}"`);

  const source = values.source ?? env.CITYPULSE_SOURCE ?? 'simulator';
  if (source !== 'simulator' && source !== 'none')
    throw new UsageError(`--source must be simulator or none, got "${source}"`);
  const logLevel = (values['log-level'] ?? env.LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const port = integer('--port', values.port ?? env.PORT, 8080);
  if (port > 65535) throw new UsageError(`--port must be <= 65535, got ${port}`);
  const heartbeatIntervalMs = integer(
    '--heartbeat-interval',
    values['heartbeat-interval'] ?? env.CITYPULSE_HEARTBEAT_INTERVAL_MS,
    10_000,
    1,
  );
  const heartbeatTimeoutMs = integer(
    '--heartbeat-timeout',
    values['heartbeat-timeout'] ?? env.CITYPULSE_HEARTBEAT_TIMEOUT_MS,
    30_000,
    1,
  );
  if (heartbeatTimeoutMs < heartbeatIntervalMs) {
    throw new UsageError('--heartbeat-timeout must be at least --heartbeat-interval');
  }
  const publishKeys =
    values['publish-key'] ?? (env.CITYPULSE_PUBLISH_KEY ?? '').split(',').filter((k) => k !== '');
  if (publishKeys.some((k) => k.length < 8))
    throw new UsageError('--publish-key must be at least 8 characters');

  return {
    help: false,
    logLevel,
    options: {
      port,
      host: values.host ?? env.HOST ?? '0.0.0.0',
      source,
      simulatorSeed: integer('--seed', values.seed ?? env.CITYPULSE_SEED, 42),
      simulatorIntervalMs: integer(
        '--simulator-interval',
        values['simulator-interval'] ?? env.CITYPULSE_SIMULATOR_INTERVAL_MS,
        1000,
        10,
      ),
      publishKeys,
      heartbeatIntervalMs,
      heartbeatTimeoutMs,
      maxPayloadBytes: integer(
        '--max-payload',
        values['max-payload'] ?? env.CITYPULSE_MAX_PAYLOAD,
        64 * 1024,
        128,
      ),
      maxSubscriptionsPerClient: optionalInteger(
        '--max-subscriptions',
        values['max-subscriptions'] ?? env.CITYPULSE_MAX_SUBSCRIPTIONS,
      ),
      compression: parseSwitch('--compression', values.compression ?? env.CITYPULSE_COMPRESSION, true),
      ...clusterOptions(values, env),
      ...securityOptions(values, env),
    },
    metrics: parseSwitch('--metrics', values.metrics ?? env.CITYPULSE_METRICS, true),
    ...(values.config === undefined && (env.CITYPULSE_CONFIG ?? '') === ''
      ? {}
      : { configFile: values.config ?? env.CITYPULSE_CONFIG }),
  };
}

/** `--redis`, `--redis-prefix`, `--node-id`, `--history-size` as server options. */
function clusterOptions(
  values: {
    redis?: string;
    'redis-prefix'?: string;
    'node-id'?: string;
    'history-size'?: string;
    'lease-ttl'?: string;
  },
  env: NodeJS.ProcessEnv,
): Pick<CityPulseServerOptions, 'redisUrl' | 'redisKeyPrefix' | 'nodeId' | 'historySize' | 'leaseTtlMs'> {
  const out: Pick<
    CityPulseServerOptions,
    'redisUrl' | 'redisKeyPrefix' | 'nodeId' | 'historySize' | 'leaseTtlMs'
  > = {};
  const redisUrl = values.redis ?? env.CITYPULSE_REDIS_URL;
  if (redisUrl !== undefined && redisUrl !== '') {
    if (!/^rediss?:\/\//.test(redisUrl))
      throw new UsageError(`--redis must be a redis:// URL, got "${redisUrl}"`);
    out.redisUrl = redisUrl;
  }
  const prefix = values['redis-prefix'] ?? env.CITYPULSE_REDIS_PREFIX;
  if (prefix !== undefined && prefix !== '') out.redisKeyPrefix = prefix;
  const nodeId = values['node-id'] ?? env.CITYPULSE_NODE_ID;
  if (nodeId !== undefined && nodeId !== '') out.nodeId = nodeId;
  const historySize = optionalInteger('--history-size', values['history-size'] ?? env.CITYPULSE_HISTORY_SIZE);
  if (historySize !== undefined) out.historySize = historySize;
  const leaseTtlMs = optionalInteger('--lease-ttl', values['lease-ttl'] ?? env.CITYPULSE_LEASE_TTL_MS, 100);
  if (leaseTtlMs !== undefined) out.leaseTtlMs = leaseTtlMs;
  return out;
}

function parseSwitch(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  if (value === 'on' || value === 'true' || value === '1') return true;
  if (value === 'off' || value === 'false' || value === '0') return false;
  throw new UsageError(`${name} must be on or off, got "${value}"`);
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined || value === '') return undefined;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

type SecurityValues = Partial<
  Record<
    | 'drain'
    | 'auth-secret'
    | 'auth-jwks'
    | 'auth-audience'
    | 'auth-issuer'
    | 'auth-default-topics'
    | 'allowed-origins'
    | 'max-connections'
    | 'max-connections-per-ip'
    | 'trust-proxy'
    | 'rate-limit'
    | 'rate-burst'
    | 'handshake-timeout'
    | 'max-body'
    | 'metrics-port'
    | 'max-pending-connections'
    | 'max-pending-per-ip'
    | 'headers-timeout'
    | 'request-timeout',
    string
  >
>;

/** Authentication, origins, limits and drain as server options. */
function securityOptions(values: SecurityValues, env: NodeJS.ProcessEnv): CityPulseServerOptions {
  const out: CityPulseServerOptions = {};
  const secret = values['auth-secret'] ?? env.CITYPULSE_AUTH_SECRET;
  const jwks = values['auth-jwks'] ?? env.CITYPULSE_AUTH_JWKS;
  if ((secret !== undefined && secret !== '') || (jwks !== undefined && jwks !== '')) {
    if (secret !== undefined && secret !== '' && Buffer.byteLength(secret) < 32) {
      throw new UsageError('--auth-secret must be at least 32 bytes (e.g. openssl rand -hex 32)');
    }
    const audience = values['auth-audience'] ?? env.CITYPULSE_AUTH_AUDIENCE;
    const issuer = values['auth-issuer'] ?? env.CITYPULSE_AUTH_ISSUER;
    const defaultTopics = list(values['auth-default-topics'] ?? env.CITYPULSE_AUTH_DEFAULT_TOPICS);
    out.auth = {
      ...(secret !== undefined && secret !== '' ? { secret } : {}),
      ...(jwks === undefined || jwks === ''
        ? {}
        : /^https?:\/\//.test(jwks)
          ? { jwksUrl: jwks }
          : { jwksFile: jwks }),
      ...(audience === undefined || audience === '' ? {} : { audience }),
      ...(issuer === undefined || issuer === '' ? {} : { issuer }),
      ...(defaultTopics === undefined ? {} : { defaultTopics }),
    };
  }
  const origins = list(values['allowed-origins'] ?? env.CITYPULSE_ALLOWED_ORIGINS);
  if (origins !== undefined) out.allowedOrigins = origins;
  const maxConnections = optionalInteger(
    '--max-connections',
    values['max-connections'] ?? env.CITYPULSE_MAX_CONNECTIONS,
  );
  if (maxConnections !== undefined) out.maxConnections = maxConnections;
  const perIp = optionalInteger(
    '--max-connections-per-ip',
    values['max-connections-per-ip'] ?? env.CITYPULSE_MAX_CONNECTIONS_PER_IP,
  );
  if (perIp !== undefined) out.maxConnectionsPerIp = perIp;
  out.trustProxy = integer('--trust-proxy', values['trust-proxy'] ?? env.CITYPULSE_TRUST_PROXY, 0);
  const pending = optionalInteger(
    '--max-pending-connections',
    values['max-pending-connections'] ?? env.CITYPULSE_MAX_PENDING_CONNECTIONS,
  );
  if (pending !== undefined) out.maxPendingConnections = pending;
  const pendingPerIp = optionalInteger(
    '--max-pending-per-ip',
    values['max-pending-per-ip'] ?? env.CITYPULSE_MAX_PENDING_PER_IP,
  );
  if (pendingPerIp !== undefined) out.maxPendingPerIp = pendingPerIp;
  const headersTimeout = optionalInteger(
    '--headers-timeout',
    values['headers-timeout'] ?? env.CITYPULSE_HEADERS_TIMEOUT_MS,
    100,
  );
  if (headersTimeout !== undefined) out.headersTimeoutMs = headersTimeout;
  const requestTimeout = optionalInteger(
    '--request-timeout',
    values['request-timeout'] ?? env.CITYPULSE_REQUEST_TIMEOUT_MS,
    100,
  );
  if (requestTimeout !== undefined) out.requestTimeoutMs = requestTimeout;
  const metricsPort = optionalInteger(
    '--metrics-port',
    values['metrics-port'] ?? env.CITYPULSE_METRICS_PORT,
    0,
  );
  if (metricsPort !== undefined) {
    if (metricsPort > 65535) throw new UsageError(`--metrics-port must be <= 65535, got ${metricsPort}`);
    out.metricsPort = metricsPort;
  }
  const rate = integer(
    '--rate-limit',
    values['rate-limit'] ?? env.CITYPULSE_RATE_LIMIT,
    DEFAULT_LIMITS.ratePerSec,
  );
  const burst = integer(
    '--rate-burst',
    values['rate-burst'] ?? env.CITYPULSE_RATE_BURST,
    Math.max(DEFAULT_LIMITS.burst, rate * 2),
    1,
  );
  out.rateLimit = rate === 0 ? false : { ratePerSec: rate, burst };
  const handshake = optionalInteger(
    '--handshake-timeout',
    values['handshake-timeout'] ?? env.CITYPULSE_HANDSHAKE_TIMEOUT_MS,
  );
  if (handshake !== undefined) out.handshakeTimeoutMs = handshake;
  out.drainMs = integer('--drain', values.drain ?? env.CITYPULSE_DRAIN_MS, 2000);
  const maxBody = optionalInteger('--max-body', values['max-body'] ?? env.CITYPULSE_MAX_BODY, 128);
  if (maxBody !== undefined) out.maxBodyBytes = maxBody;
  return out;
}
