/**
 * Client commands: every frame a client sends, from its arrival (size limit, frame rate, the handshake's inbox) to
 * its typed `ClientMessage` (`parseClientMessage`) and the command it carries: subscribe, unsubscribe, ping,
 * resume, refresh (a fresh token). Also the one check of which topics a session may add.
 *
 * @module
 */
import type { RawData } from 'ws';
import {
  ClientMessageType,
  CloseCode,
  ErrorCode,
  ServerMessageType,
  assertNever,
  parseClientMessage,
  type ClientMessage,
  type ProtocolError,
} from '../protocol/messages.js';
import type { JsonBounds } from '../protocol/json-bounds.js';
import { MAX_INBOX_FRAMES, type ClientSession } from './client-session.js';
import type { Resumer } from './resume.js';
import type { ServiceContext } from './service-context.js';
import type { Snapshots } from './snapshots.js';

/** Why topics cannot be added to a session's subscriptions: the ERROR it is answered with. */
export interface TopicProblem {
  readonly code: ErrorCode;
  readonly message: string;
  readonly topics: readonly string[];
}

/** Limits of {@link Commands}. */
export interface CommandLimits {
  /** Largest client frame; past it the connection closes with `MessageTooBig`. */
  readonly maxPayloadBytes: number;
  /** Most topics one session may subscribe to. */
  readonly maxSubscriptions: number;
  /** The JSON bounds a client frame must stay within. */
  readonly jsonBounds: JsonBounds;
}

/** The client-command side of the service; see the module comment. */
export class Commands {
  readonly #ctx: ServiceContext;
  readonly #snapshots: Snapshots;
  readonly #resumer: Resumer;
  readonly #limits: CommandLimits;

  constructor(ctx: ServiceContext, snapshots: Snapshots, resumer: Resumer, limits: CommandLimits) {
    this.#ctx = ctx;
    this.#snapshots = snapshots;
    this.#resumer = resumer;
    this.#limits = limits;
  }

  /** A frame arrived from `session`: limits first; kept in the inbox while handshaking, else handled. */
  onFrame(session: ClientSession, data: RawData, isBinary: boolean): void {
    if (session.state === 'closed') return;
    session.lastSeenAt = this.#ctx.now();
    this.#ctx.counters.framesIn++;
    if (rawLength(data) > this.#limits.maxPayloadBytes) {
      session.transport.close(CloseCode.MessageTooBig, 'frame too big');
      return;
    }
    const verdict = session.guard?.admitFrame() ?? 'ok';
    if (verdict !== 'ok') {
      this.#ctx.metrics?.rateLimited(verdict === 'close');
      this.#ctx.metrics?.messageIn('rate-limited');
      if (verdict === 'close') {
        this.#ctx.outbound.flushNow(session);
        session.transport.close(CloseCode.RateLimited, 'rate limit exceeded');
      } else {
        this.#ctx.sender.sendError(session, ErrorCode.RateLimited, 'too many frames; frame dropped');
      }
      return;
    }
    if (session.state === 'handshaking') {
      session.inbox ??= [];
      if (session.inbox.length >= MAX_INBOX_FRAMES) {
        this.#ctx.sender.sendError(
          session,
          ErrorCode.RateLimited,
          'too many frames before the snapshot; frame dropped',
        );
      } else {
        session.inbox.push({ data, isBinary });
      }
      return;
    }
    this.handleFrame(session, data, isBinary);
  }

  /** Parses one admitted frame and runs its command; a bad frame is answered with an ERROR. */
  handleFrame(session: ClientSession, data: RawData, isBinary: boolean): void {
    if (session.state === 'closed') return;
    const result = parseClientMessage(isBinary ? data : rawToString(data), this.#limits.jsonBounds);
    this.#ctx.metrics?.messageIn(result.ok ? result.message.type : 'invalid');
    if (!result.ok) {
      if (isBoundsError(result.error)) this.#ctx.countRejected('ws', result.error.code);
      this.#ctx.sender.sendError(session, result.error.code, result.error.message);
      return;
    }
    try {
      this.#handleClientMessage(session, result.message);
    } catch (error) {
      this.#ctx.logger.error({ err: error, clientId: session.id }, 'failed to handle a client message');
      this.#ctx.sender.sendError(session, ErrorCode.Internal, 'the server failed to handle the message');
    }
  }

  #handleClientMessage(session: ClientSession, message: ClientMessage): void {
    switch (message.type) {
      case ClientMessageType.Subscribe:
        this.#subscribe(session, message.topics);
        return;
      case ClientMessageType.Unsubscribe:
        this.#unsubscribe(session, message.topics);
        return;
      case ClientMessageType.Ping:
        this.#ctx.sender.sendMessage(
          session,
          ServerMessageType.Pong,
          message.id === undefined ? {} : { id: message.id },
        );
        return;
      case ClientMessageType.Resume: {
        const topics = Object.keys(message.topics);
        const problem = this.checkTopics(session, topics);
        if (problem !== null) {
          this.#ctx.sender.sendError(session, problem.code, problem.message, problem.topics);
          return;
        }
        for (const topic of topics) this.#ctx.index.add(session, topic);
        this.#ctx.sender.sendMessage(session, ServerMessageType.Subscribed, { topics });
        this.#resumer.resumeTopics(session, topics, message.topics);
        return;
      }
      case ClientMessageType.Refresh:
        this.#refresh(session, message.token);
        return;
      default:
        assertNever(message);
    }
  }

  /** Replaces the connection's token; topics the new token no longer allows are unsubscribed. */
  #refresh(session: ClientSession, token: string): void {
    const guard = session.guard;
    if (guard === null) return;
    guard.refresh(token, this.#ctx.index.topicsOf(session)).then(
      (result) => {
        if (session.state === 'closed') return;
        if (!result.ok) {
          if (result.reason === 'superseded') return;
          if (result.reason !== 'auth-off') this.#ctx.metrics?.authFailure(result.reason);
          this.#ctx.sender.sendError(
            session,
            ErrorCode.BadToken,
            result.reason === 'auth-off'
              ? 'authentication is not enabled on this server'
              : `token refused: ${result.reason}`,
          );
          return;
        }
        if (result.lost.length > 0) this.#unsubscribe(session, result.lost);
      },
      (error: unknown) =>
        this.#ctx.logger.error({ err: error, clientId: session.id }, 'token refresh failed'),
    );
  }

  /** Why `topics` cannot be added to `session`'s subscriptions, or null when they can. */
  checkTopics(session: ClientSession, topics: readonly string[]): TopicProblem | null {
    const unknown = topics.filter((t) => !this.#ctx.topics.has(t));
    if (unknown.length > 0) {
      return {
        code: ErrorCode.UnknownTopic,
        message: `unknown topic(s): ${unknown
          .map((t) => t.slice(0, 64))
          .join(', ')
          .slice(0, 512)}`,
        topics: unknown.slice(0, 16),
      };
    }
    const forbidden = session.guard?.forbidden(topics) ?? [];
    if (forbidden.length > 0) {
      return {
        code: ErrorCode.Forbidden,
        message: `not allowed by your token: ${forbidden.join(', ').slice(0, 512)}`,
        topics: forbidden.slice(0, 16),
      };
    }
    const current = this.#ctx.index.topicsOf(session);
    const added = new Set(topics.filter((t) => !current.has(t))).size;
    if (current.size + added > this.#limits.maxSubscriptions) {
      return {
        code: ErrorCode.TooManySubscriptions,
        message: `at most ${this.#limits.maxSubscriptions} subscriptions per client`,
        topics: [...topics],
      };
    }
    return null;
  }

  #subscribe(session: ClientSession, requested: readonly string[]): void {
    const topics = [...new Set(requested)];
    const problem = this.checkTopics(session, topics);
    if (problem !== null) {
      this.#ctx.sender.sendError(session, problem.code, problem.message, problem.topics);
      return;
    }
    const added = topics.filter((topic) => this.#ctx.index.add(session, topic));
    this.#ctx.sender.sendMessage(session, ServerMessageType.Subscribed, { topics });
    if (added.length > 0) this.#snapshots.sendTopicSnapshots(session, added, false);
  }

  #unsubscribe(session: ClientSession, requested: readonly string[]): void {
    const topics = [...new Set(requested)];
    const unknown = topics.filter((t) => !this.#ctx.topics.has(t));
    if (unknown.length > 0) {
      this.#ctx.sender.sendError(
        session,
        ErrorCode.UnknownTopic,
        `unknown topic(s): ${unknown.join(', ').slice(0, 512)}`,
        unknown.slice(0, 16),
      );
      return;
    }
    for (const topic of topics) {
      this.#ctx.index.remove(session, topic);
      session.releaseTopic(topic);
    }
    this.#ctx.sender.sendMessage(session, ServerMessageType.Unsubscribed, { topics });
  }
}

function isBoundsError(error: ProtocolError): boolean {
  return error.code === ErrorCode.TooDeep || error.code === ErrorCode.TooLarge;
}

function rawLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data).toString('utf8');
}
