/**
 * Runs a source only while this node holds the source's lease, so a cluster polls each feed once. A source
 * cannot always be restarted once stopped, so it is created from a factory on every acquisition.
 *
 * @module
 */
import type { Redis } from 'ioredis';
import type { Source, SourceContext } from '../aggregator/source.js';
import type { Logger } from '../shared/logger.js';
import { Lease } from './lease.js';

/** Options of {@link leasedSource}. */
export interface LeasedSourceOptions {
  redis: Redis;
  /** Key prefix of the lease; the source's name completes it. */
  keyPrefix: string;
  nodeId: string;
  ttlMs?: number;
  renewMs?: number;
  /** Longest wait for Redis to confirm the release when the source stops. Default 1000. */
  releaseTimeoutMs?: number;
  logger?: Logger;
  /** Called after this node acquired the lease and started the source. */
  onLeading?: (name: string) => void;
}

/** A source that runs `create()`'s source while this node holds the lease. `name`, `kind` and `topics` are its. */
export function leasedSource(
  create: () => Source,
  options: LeasedSourceOptions,
): Source & { readonly lease: Lease } {
  const template = create();
  let current: Source | null = null;
  let context: SourceContext | null = null;
  let pending = true;
  const run = (): void => {
    if (context === null) return;
    const source = pending ? template : create();
    pending = false;
    current = source;
    Promise.resolve(source.start(context)).catch((error: unknown) => context?.reportError(error));
    options.onLeading?.(source.name);
  };
  const halt = (): void => {
    const source = current;
    current = null;
    if (source !== null) source.stop().catch(() => {});
  };
  const lease = new Lease({
    redis: options.redis,
    key: `${options.keyPrefix}${template.name}`,
    nodeId: options.nodeId,
    ttlMs: options.ttlMs,
    renewMs: options.renewMs,
    releaseTimeoutMs: options.releaseTimeoutMs,
    logger: options.logger,
    onAcquired: run,
    onLost: halt,
  });
  return {
    name: template.name,
    kind: template.kind,
    topics: template.topics,
    lease,
    start(ctx) {
      context = ctx;
      lease.start();
    },
    // Stops the feed at once; the lease's release goes on in the background (bounded), so a shutdown's client
    // drain never waits on Redis. `lease.stop()` again (idempotent) waits for that release.
    async stop() {
      void lease.stop();
      halt();
      context = null;
    },
  };
}
