/**
 * The client's heartbeat: app-level pings at an interval and a watchdog that declares the link dead after a
 * silence longer than the heartbeat timeout. Both default to what the server advertised in `CONNECTED`.
 *
 * @module
 */
import { ClientMessageType } from '../protocol/messages.js';
import type { ClientMessage } from '../protocol/messages.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { ServerInfo } from './events.js';

/** What {@link Watchdog} needs: durations, clock, timers and the client's reactions. */
export interface WatchdogOptions {
  /** Interval of pings; `undefined`: derived from the server's heartbeat. */
  readonly pingIntervalMs: number | undefined;
  /** Silence after which the link counts as dead; `undefined`: the server's heartbeat timeout. */
  readonly heartbeatTimeoutMs: number | undefined;
  now(): number;
  setTimer(callback: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /** Sends a frame on the current connection (dropped when not connected). */
  send(message: ClientMessage): void;
  reportError(error: ClientError): void;
  /** The link was silent too long (already reported): drop it and reconnect. */
  onExpired(): void;
}

/** Pings and the silence watchdog of one connection at a time. */
export class Watchdog {
  readonly #options: WatchdogOptions;
  #lastFrameAt = 0;
  #pingId = 0;
  #watchdogTimer: unknown = undefined;
  #pingTimer: unknown = undefined;

  constructor(options: WatchdogOptions) {
    this.#options = options;
  }

  /** A frame arrived: the link is alive. */
  touch(): void {
    this.#lastFrameAt = this.#options.now();
  }

  /**
   * Starts pinging and watching the connection that announced `info`. `isCurrent` tells whether that connection
   * is still the current one; timers of a replaced connection do nothing.
   */
  start(info: ServerInfo, isCurrent: () => boolean): void {
    const options = this.#options;
    const advertised = info.heartbeat;
    const timeoutMs =
      options.heartbeatTimeoutMs ??
      (advertised !== undefined && advertised.timeoutMs > 0 ? advertised.timeoutMs : 0);
    const pingMs =
      options.pingIntervalMs ??
      (advertised !== undefined && advertised.intervalMs > 0
        ? Math.min(advertised.intervalMs, timeoutMs > 0 ? Math.floor(timeoutMs / 2) : advertised.intervalMs)
        : 0);
    if (pingMs > 0) {
      const ping = () => {
        this.#pingTimer = undefined;
        if (!isCurrent()) return;
        options.send({ type: ClientMessageType.Ping, id: ++this.#pingId });
        this.#pingTimer = options.setTimer(ping, pingMs);
      };
      this.#pingTimer = options.setTimer(ping, pingMs);
    }
    if (timeoutMs > 0) {
      const check = () => {
        this.#watchdogTimer = undefined;
        if (!isCurrent()) return;
        const silentFor = options.now() - this.#lastFrameAt;
        if (silentFor < timeoutMs) {
          this.#watchdogTimer = options.setTimer(check, timeoutMs - silentFor);
          return;
        }
        options.reportError(
          new ClientError(
            ClientErrorCode.HeartbeatTimeout,
            `nothing received for ${silentFor} ms; reconnecting`,
          ),
        );
        options.onExpired();
      };
      this.#watchdogTimer = options.setTimer(check, timeoutMs);
    }
  }

  /** Clears both timers. Idempotent. */
  stop(): void {
    for (const timer of [this.#watchdogTimer, this.#pingTimer]) this.#options.clearTimer(timer);
    this.#watchdogTimer = this.#pingTimer = undefined;
  }
}
