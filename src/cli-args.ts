/**
 * Command-line parsing of `citypulse serve`: flags and their environment equivalents, turned into server options.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { LOG_LEVELS, type LogLevel } from './server/logger.js';
import type { CityPulseServerOptions } from './server/create-server.js';

/** The text of `citypulse --help`. */
export const HELP = `citypulse - real-time gateway for live city data

Usage: citypulse serve [options]

Options (environment variable in brackets):
  --port <n>                  TCP port, 0 for any free one [PORT] (default 8080)
  --host <addr>               interface to bind [HOST] (default 0.0.0.0)
  --source <simulator|none>   built-in data source [CITYPULSE_SOURCE] (default simulator)
  --seed <n>                  simulator seed [CITYPULSE_SEED] (default 42)
  --simulator-interval <ms>   simulator tick [CITYPULSE_SIMULATOR_INTERVAL_MS] (default 1000)
  --publish-key <key>         enables POST /api/publish, /api/broadcast, /api/ingest for this Bearer key;
                              repeat for several keys [CITYPULSE_PUBLISH_KEY, comma-separated]
  --heartbeat-interval <ms>   protocol ping interval [CITYPULSE_HEARTBEAT_INTERVAL_MS] (default 10000)
  --heartbeat-timeout <ms>    drop clients silent this long [CITYPULSE_HEARTBEAT_TIMEOUT_MS] (default 30000)
  --max-payload <bytes>       largest client frame [CITYPULSE_MAX_PAYLOAD] (default 65536)
  --max-subscriptions <n>     topics per client [CITYPULSE_MAX_SUBSCRIPTIONS] (default: all topics)
  --log-level <level>         ${LOG_LEVELS.join('|')} [LOG_LEVEL] (default info)
  -h, --help                  this text

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 on a start-up failure, 2 on bad usage.
`;

/** A usage error: printed with the hint to run --help, exit code 2. */
export class UsageError extends Error {}

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

/** Turns argv (without node and script) and the environment into server options. */
export function parseServeArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { help: true } | { help: false; options: CityPulseServerOptions; logLevel: LogLevel } {
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
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };
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
    },
  };
}
