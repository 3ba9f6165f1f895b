/**
 * The handshake of a connection: the permessage-deflate agreement (the `'headers'` event), then on `'connection'`
 * a `ClientSession` over a `WsTransport` with its `ConnectionGuard`, the `?topics=` / `?resume=` of the request,
 * CONNECTED, the initial SNAPSHOT, and the opening of the session (held broadcasts, the connect-time problem, the
 * resumed topics, then the client frames that arrived meanwhile).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import {
  CloseCode,
  ErrorCode,
  ServerMessageType,
  parseResumeQuery,
  type StreamPosition,
} from '../protocol/messages.js';
import { allowedTopics } from '../security/access.js';
import { ANONYMOUS, type Authenticator, type Principal } from '../security/auth.js';
import { ConnectionGuard } from '../security/connection-guard.js';
import { RateLimiter, type RateLimiterOptions } from '../security/limits.js';
import { ClientSession } from './client-session.js';
import type { Commands, TopicProblem } from './commands.js';
import { negotiateDeflate, type DeflateAgreement } from './deflate.js';
import { seqOf } from './frames.js';
import type { Resumer } from './resume.js';
import type { ServiceContext } from './service-context.js';
import type { Snapshots } from './snapshots.js';
import { WsTransport } from './transport.js';

/** What {@link Handshake} needs beyond the shared context. */
export interface HandshakeOptions {
  /** Largest client message, also the inflate limit of a connection that agreed to deflate. */
  readonly maxPayloadBytes: number;
  /** Verifies refreshed tokens; absent when authentication is off. */
  readonly authenticator: Authenticator | undefined;
  /** The per-connection frame-rate limit, or `false` for none. */
  readonly rateLimit: RateLimiterOptions | false;
  /** Ends a session (its one teardown path, owned by the service). */
  readonly teardown: (session: ClientSession, reason: string, code?: number) => void;
}

/** The connect side of the service; see the module comment. */
export class Handshake {
  readonly #ctx: ServiceContext;
  readonly #commands: Commands;
  readonly #snapshots: Snapshots;
  readonly #resumer: Resumer;
  readonly #options: HandshakeOptions;
  /** Agreements made in the handshake's `'headers'` event, read back in `'connection'` (same request). */
  readonly #agreements = new WeakMap<IncomingMessage, DeflateAgreement>();

  constructor(
    ctx: ServiceContext,
    commands: Commands,
    snapshots: Snapshots,
    resumer: Resumer,
    options: HandshakeOptions,
  ) {
    this.#ctx = ctx;
    this.#commands = commands;
    this.#snapshots = snapshots;
    this.#resumer = resumer;
    this.#options = options;
  }

  /** The handshake's answer: adds our permessage-deflate agreement when the client offered one we can honour. */
  readonly onHeaders = (headers: string[], req: IncomingMessage): void => {
    // A WebSocketServer with its own perMessageDeflate answered already: leave it (our frames then go plain).
    if (headers.some((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'))) return;
    const agreement = negotiateDeflate(req.headers['sec-websocket-extensions']);
    if (agreement === null) return;
    headers.push(`Sec-WebSocket-Extensions: ${agreement.response}`);
    this.#agreements.set(req, agreement);
  };

  /** A connection `ws` accepted: serves it from CONNECTED to the initial SNAPSHOT and on. */
  readonly onConnection = (ws: WebSocket, req: IncomingMessage, principal: Principal = ANONYMOUS): void => {
    const ctx = this.#ctx;
    ws.on('error', (error) => ctx.logger.debug({ err: error }, 'socket error'));
    if (ctx.state() !== 'running') {
      ws.close(CloseCode.GoingAway, 'server shutting down');
      return;
    }
    const agreement = this.#agreements.get(req);
    const session = new ClientSession(
      randomUUID(),
      new WsTransport(
        ws,
        agreement === undefined ? undefined : { maxPayload: this.#options.maxPayloadBytes },
      ),
      req.socket.remoteAddress ?? 'unknown',
      ctx.now(),
    );
    if (agreement !== undefined) {
      this.#agreements.delete(req);
      session.windowBits = agreement.windowBits;
    }
    const rateLimit = this.#options.rateLimit;
    session.guard = new ConnectionGuard({
      principal,
      authenticator: this.#options.authenticator,
      now: ctx.now,
      rateLimiter: rateLimit === false ? undefined : new RateLimiter({ ...rateLimit, now: ctx.now }),
      onExpired: () => {
        ctx.metrics?.tokenExpired();
        ctx.logger.info({ clientId: session.id }, 'token expired');
        ctx.outbound.flushNow(session);
        session.transport.close(CloseCode.TokenExpired, 'token expired: reconnect with a fresh token');
      },
    });
    ctx.sessions.add(session);
    ctx.counters.connectionsTotal++;
    ctx.metrics?.connectionOpened();
    ws.on('message', (data, isBinary) => this.#commands.onFrame(session, data, isBinary));
    ws.on('pong', () => {
      session.lastSeenAt = ctx.now();
    });
    ws.on('close', (code, reason) =>
      this.#options.teardown(session, `closed ${code} ${reason.toString()}`.trim(), code),
    );

    const query = queryOf(req.url);
    const requested = splitTopics(query.get('topics'));
    const resumeQuery = query.get('resume');
    const resume = resumeQuery === null ? {} : parseResumeQuery(resumeQuery);
    const wanted = [...new Set([...requested, ...Object.keys(resume ?? {})])];
    const problem: TopicProblem | null =
      resume === null
        ? { code: ErrorCode.BadMessage, message: 'resume: expected <topic>:<epoch>:<seq>[,...]', topics: [] }
        : this.#commands.checkTopics(session, wanted);
    const subscribed = problem === null ? wanted : [];
    for (const topic of subscribed) ctx.index.add(session, topic);

    // At debug: a line per connect is a cost a bare server does not pay in a storm ('client disconnected' stays).
    ctx.logger.debug(
      { clientId: session.id, ip: session.remoteAddress, topics: subscribed },
      'client connected',
    );
    ctx.counters.framesOut++;
    ctx.outbound.enqueue(session, ctx.frames.connectedFrame(session.id, subscribed));

    // The initial snapshot: the ?topics= ones, or every topic when the client named none.
    const resumed = problem === null ? Object.keys(resume ?? {}) : [];
    const requestedSet = new Set(requested);
    // Canonical: registry order, each topic once (the raw ?topics= list may repeat and reorder them).
    const snapshotTopics =
      problem === null && wanted.length > 0
        ? ctx.topicList.filter((t) => requestedSet.has(t) && !Object.hasOwn(resume ?? {}, t))
        : allowedTopics(principal.topics, ctx.topicList);
    for (const topic of subscribed) session.holdTopic(topic);
    this.#snapshots.withSnapshot(
      (snapshot, callTimeSeqs) => {
        if (session.state === 'closed') return;
        const seqs = snapshotTopics.map((topic) => seqOf(snapshot, topic, callTimeSeqs));
        ctx.sender.send(session, ctx.frames.fullSnapshotFrame(snapshot, snapshotTopics, seqs));
        snapshotTopics.forEach((topic, i) => {
          if (session.held?.has(topic)) ctx.sender.releaseHeld(session, topic, seqs[i] ?? 0);
        });
        this.#openSession(session, problem, resume ?? {}, resumed);
      },
      (error) => {
        if (session.state === 'closed') return;
        ctx.logger.warn({ err: error, clientId: session.id }, 'snapshot provider failed');
        ctx.sender.send(session, ctx.frames.frame(ServerMessageType.Snapshot, {}));
        ctx.sender.sendError(
          session,
          ErrorCode.SnapshotUnavailable,
          'the snapshot could not be produced',
          snapshotTopics,
        );
        for (const topic of snapshotTopics)
          if (session.held?.has(topic)) ctx.sender.releaseHeld(session, topic, -1);
        this.#snapshots.markUnsynced(session, snapshotTopics);
        this.#openSession(session, problem, resume ?? {}, resumed);
      },
      snapshotTopics, // only what this snapshot shows
    );
  };

  /** Ends the handshake: held broadcasts, the connect-time problem, resumed topics, then queued client frames. */
  #openSession(
    session: ClientSession,
    problem: TopicProblem | null,
    resume: Record<string, StreamPosition>,
    resumed: readonly string[],
  ): void {
    const sender = this.#ctx.sender;
    session.state = 'open';
    if (session.heldBroadcasts !== null) {
      for (const frame of session.heldBroadcasts) sender.send(session, frame);
      session.heldBroadcasts = null;
    }
    if (problem !== null) sender.sendError(session, problem.code, problem.message, problem.topics);
    if (resumed.length > 0) this.#resumer.resumeTopics(session, resumed, resume);
    const inbox = session.inbox;
    session.inbox = null;
    if (inbox !== null)
      for (const frame of inbox) this.#commands.handleFrame(session, frame.data, frame.isBinary);
  }
}

/** The query of a request target (`/ws?topics=a,b`), without parsing a whole URL. */
function queryOf(url: string | undefined): URLSearchParams {
  if (url === undefined) return new URLSearchParams();
  const start = url.indexOf('?');
  if (start === -1) return new URLSearchParams();
  const hash = url.indexOf('#', start);
  return new URLSearchParams(hash === -1 ? url.slice(start + 1) : url.slice(start + 1, hash));
}

function splitTopics(value: string | null): string[] {
  if (value === null) return [];
  return value.split(',').filter((t) => t.length > 0);
}
