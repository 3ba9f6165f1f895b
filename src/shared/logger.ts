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

/** Where {@link createLogger} writes: a stream such as `process.stdout` (the default). */
export type LogStream = Pick<NodeJS.WritableStream, 'write' | 'on'>;

/** Streams already given an `'error'` listener by {@link guardStream} (one listener per stream, however many loggers). */
const guarded = new WeakMap<object, { broken: boolean }>();

/**
 * Makes `stream` safe to log to: an `'error'` on it (EPIPE when the reader of `citypulse serve | head` goes away,
 * or any other) is swallowed instead of crashing the process, and marks the stream broken so later writes are
 * skipped. Idempotent per stream. Returns the stream's state.
 */
export function guardStream(stream: LogStream): { broken: boolean } {
  let state = guarded.get(stream);
  if (state === undefined) {
    const fresh = { broken: false };
    stream.on('error', () => {
      fresh.broken = true;
    });
    guarded.set(stream, fresh);
    state = fresh;
  }
  return state;
}

/**
 * Guards `process.stdout` and `process.stderr` (see {@link guardStream}): logging, or any other write to them,
 * never stops the server. The CLI calls it first thing.
 */
export function guardStdio(): void {
  guardStream(process.stdout);
  guardStream(process.stderr);
}

/**
 * A pino logger writing JSON lines to `stream` (default stdout) at `level`. A stream whose reader went away (EPIPE)
 * or that failed otherwise is dropped silently: the logger never throws and never stops the server.
 */
export function createLogger(level: LogLevel = 'info', stream: LogStream = process.stdout): Logger {
  const state = guardStream(stream);
  const destination = {
    write(line: string): void {
      if (state.broken) return;
      try {
        stream.write(line);
      } catch {
        state.broken = true;
      }
    },
  };
  return pino({ level, base: { service: 'citypulse' } }, destination);
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
