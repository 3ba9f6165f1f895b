/**
 * Structured JSON logging with pino. Everything in citypulse logs through this small interface so a host
 * application can pass its own pino (or compatible) logger.
 *
 * @module
 */
import { pino } from 'pino';

/** The subset of pino's logger citypulse uses. A pino logger satisfies it. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Log levels accepted by `--log-level` / `LOG_LEVEL`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A pino logger writing JSON lines to stdout at `level`. */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({ level, base: { service: 'citypulse' } });
}

/** A logger that drops everything (the library default, so embedding apps are not spammed). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
