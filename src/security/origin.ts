/**
 * The origin check of WebSocket upgrades: which `Origin` headers a server accepts.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';

/** Options of {@link compileOriginCheck}. */
export interface OriginCheckOptions {
  /** Let requests without an `Origin` header through (non-browser clients never send one). Default `true`. */
  allowMissing?: boolean;
}

function normaliseOrigin(value: string): string | null {
  try {
    const url = new URL(value);
    if (url.origin === 'null') return null;
    return url.origin.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * Compiles an allow-list of origins into a check. Entries: `*` (anything), an origin (`https://city.example`,
 * compared scheme + host + port, case-insensitively, default ports folded) or a subdomain wildcard
 * (`https://*.city.example`: any subdomain, not the bare domain). An empty list allows everything (the check is off).
 * A browser's `Origin: null` is refused unless `null` is listed.
 *
 * @throws {Error} for an entry that is none of these.
 */
export function compileOriginCheck(
  allowedOrigins: readonly string[],
  options: OriginCheckOptions = {},
): (req: IncomingMessage) => boolean {
  const allowMissing = options.allowMissing ?? true;
  if (allowedOrigins.length === 0 || allowedOrigins.includes('*')) return () => true;
  const exact = new Set<string>();
  const wildcards: { scheme: string; suffix: string; port: string }[] = [];
  let allowNull = false;
  for (const entry of allowedOrigins) {
    if (entry === 'null') {
      allowNull = true;
      continue;
    }
    const wildcard = /^([a-z][a-z0-9+.-]*):\/\/\*\.([^/:]+)(?::(\d+))?\/?$/i.exec(entry);
    if (wildcard !== null) {
      const [, scheme = '', domain = '', port = ''] = wildcard;
      const probe = normaliseOrigin(`${scheme}://x.${domain}${port === '' ? '' : `:${port}`}`);
      if (probe === null) throw new Error(`invalid allowed origin ${JSON.stringify(entry)}`);
      const probeUrl = new URL(probe);
      wildcards.push({
        scheme: probeUrl.protocol,
        suffix: `.${probeUrl.hostname.slice(2)}`,
        port: probeUrl.port,
      });
      continue;
    }
    const origin = normaliseOrigin(entry);
    if (origin === null) throw new Error(`invalid allowed origin ${JSON.stringify(entry)}`);
    exact.add(origin);
  }
  return (req) => {
    const header = req.headers.origin;
    if (header === undefined || header === '') return allowMissing;
    if (header === 'null') return allowNull;
    const origin = normaliseOrigin(header);
    if (origin === null) return false;
    if (exact.has(origin)) return true;
    if (wildcards.length === 0) return false;
    const url = new URL(origin);
    return wildcards.some(
      (w) => url.protocol === w.scheme && url.port === w.port && url.hostname.endsWith(w.suffix),
    );
  };
}

/** One-shot form of {@link compileOriginCheck}; compile once instead on a hot path. */
export function checkOrigin(
  req: IncomingMessage,
  allowedOrigins: readonly string[],
  options: OriginCheckOptions = {},
): boolean {
  return compileOriginCheck(allowedOrigins, options)(req);
}
