#!/usr/bin/env node
/**
 * The `citypulse` command. `citypulse serve` starts the gateway; `citypulse --help` lists every flag;
 * `citypulse --version` prints the package version.
 *
 * @module
 */
import { HELP, UsageError, parseServeArgs, readPackageVersion } from './cli-args.js';
import { createLogger, guardStdio } from '../shared/logger.js';
import { createServer } from './create-server.js';
import { DEFAULT_TOPICS } from '../protocol/messages.js';
import { createMetrics } from '../gateway/metrics.js';
import { ConfigError, loadConfig, sourceFactoriesFromConfig } from '../aggregator/config.js';
import type { CityPulseServerOptions } from './create-server.js';

/**
 * The topics `citypulse serve` serves without `--config` (`npm start`): the four city topics and the simulator's
 * transit fleet. The library default (`createServer()`) stays the four city topics.
 */
export const CLI_DEFAULT_TOPICS: readonly string[] = [...DEFAULT_TOPICS, 'transit'];

/** After the first SIGINT/SIGTERM the process exits within this long, whatever `close()` is waiting on. */
const FORCED_EXIT_MS = 10_000;

async function main(): Promise<void> {
  // A reader that went away (`citypulse serve | head`) must never crash or stop the server.
  guardStdio();
  let parsed;
  try {
    parsed = parseServeArgs(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`citypulse: ${error.message}\nRun "citypulse --help" for usage.\n`);
      process.exit(2);
    }
    throw error;
  }
  if (parsed.help) {
    process.stdout.write(parsed.print === 'version' ? `${readPackageVersion()}\n` : HELP);
    return;
  }
  // Without a config file: the simulator's city, transit fleet included (CLI_DEFAULT_TOPICS).
  let fromConfig: Pick<CityPulseServerOptions, 'sourceFactories' | 'aggregator' | 'topics'> = {
    topics: CLI_DEFAULT_TOPICS,
  };
  if (parsed.configFile !== undefined) {
    try {
      const config = await loadConfig(parsed.configFile);
      const { ttlMs, alerts, sweepIntervalMs } = config;
      fromConfig = {
        sourceFactories: sourceFactoriesFromConfig(config),
        aggregator: {
          ...(ttlMs === undefined ? {} : { ttlMs }),
          ...(alerts === undefined ? {} : { alerts }),
          ...(sweepIntervalMs === undefined ? {} : { sweepIntervalMs }),
        },
      };
    } catch (error) {
      if (error instanceof ConfigError) {
        process.stderr.write(`citypulse: ${error.message}\n`);
        process.exit(2);
      }
      throw error;
    }
  }
  const logger = createLogger(parsed.logLevel);
  const metrics = parsed.metrics ? createMetrics({ processMetrics: true }) : false;
  const server = await createServer({ ...parsed.options, ...fromConfig, logger, metrics });
  process.stdout.write(
    `citypulse serving on ${server.url}  (WebSocket ${server.wsUrl}, dashboard ${server.url}/` +
      `${server.metricsUrl === undefined ? '' : `, metrics ${server.metricsUrl}`})\n`,
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.exit(1); // a second signal: exit at once
    }
    stopping = true;
    // The deadline first, so nothing below (a log line, a close that hangs) can keep the process alive past it.
    setTimeout(() => process.exit(1), FORCED_EXIT_MS).unref();
    try {
      logger.info({ signal }, 'shutting down');
    } catch {
      // logging never stops a shutdown
    }
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`citypulse: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
