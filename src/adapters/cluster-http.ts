/**
 * The HTTP answers of cluster mode (`--redis`): `GET /readyz` (not ready while Redis is down),
 * `GET /api/stats?scope=cluster` and `GET /api/snapshot` (the shared state read from Redis). The cluster layer
 * says what is true ({@link ClusterMode.readiness}, `clusterStats()`, `sharedSnapshot()`); this adapter owns the
 * HTTP: targets, read rights, statuses and bodies.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClusterMode } from '../cluster/cluster-mode.js';
import { parseRequestTarget } from './http-guard.js';
import { pickTopics, type ReadGuard } from './read-access.js';

/** What the adapter needs of a node's cluster side. */
export type ClusterHttpSource = Pick<ClusterMode, 'readiness' | 'clusterStats' | 'sharedSnapshot'>;

/**
 * Answers the endpoints cluster mode changes: `GET /readyz`, `GET /api/stats?scope=cluster`, `GET /api/snapshot`.
 * Returns false for anything else (an unparsable target included). The two reads pass `authorizeRead` first:
 * refused requests are answered there, the others see only the topics it allows.
 */
export function handleClusterHttp(
  cluster: ClusterHttpSource,
  req: IncomingMessage,
  res: ServerResponse,
  isClosing: () => boolean,
  authorizeRead: ReadGuard,
): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const url = parseRequestTarget(req.url);
  if (url === null) return false;
  const send = (status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  };
  const unavailable = (): void =>
    send(503, { error: { code: 'REDIS_UNAVAILABLE', message: 'the cluster store is unreachable' } });
  switch (url.pathname) {
    case '/readyz': {
      const readiness = cluster.readiness(isClosing());
      send(readiness.ready ? 200 : 503, readiness);
      return true;
    }
    case '/api/stats':
      if (url.searchParams.get('scope') !== 'cluster') return false;
      void authorizeRead(req, res)
        .then(async (permission) => {
          if (permission === null) return;
          await cluster.clusterStats().then((stats) => {
            const perNode = stats.perNode.map((node) => ({
              ...node,
              topics: pickTopics(node.topics, permission),
            }));
            send(200, { ...stats, topics: pickTopics(stats.topics, permission), perNode });
          }, unavailable);
        })
        .catch(() => res.destroy());
      return true;
    case '/api/snapshot':
      void authorizeRead(req, res)
        .then(async (permission) => {
          if (permission === null) return;
          await cluster
            .sharedSnapshot()
            .then((snapshot) => send(200, pickTopics(snapshot, permission)), unavailable);
        })
        .catch(() => res.destroy());
      return true;
    default:
      return false;
  }
}
