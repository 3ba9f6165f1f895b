/**
 * Per-topic authorization: which topics a connection may subscribe to.
 *
 * A permission is compiled from a list of patterns, each one of
 * - `*`: every topic;
 * - `prefix*`: every topic whose name starts with `prefix` (e.g. `air*` allows `airQuality`);
 * - an exact topic name (`weather`).
 *
 * A `*` anywhere but at the end is invalid, and so is any other character a topic name may not hold
 * (see `TOPIC_NAME_PATTERN` in `src/protocol/messages.ts`). Matching is case-sensitive, like topic names.
 *
 * The permission gates `subscribe`/`resume` (answered `ERROR FORBIDDEN`) and what a snapshot holds; broadcasts to
 * everyone are not topic traffic and are not filtered.
 *
 * @module
 */

/** What a connection may subscribe to. Immutable; `allows` is cheap (a set look-up and a few prefix checks). */
export interface TopicPermission {
  /** Whether `topic` may be subscribed to. */
  allows(topic: string): boolean;
  /** The patterns this permission was compiled from, normalised (deduplicated, `*` alone when it allows all). */
  readonly patterns: readonly string[];
  /** `true` when every topic is allowed (a `*` pattern). */
  readonly allowsAll: boolean;
}

/** Characters a pattern may hold before its optional trailing `*`: those of a topic name. */
const PATTERN_BODY = /^[A-Za-z0-9_.:-]{0,64}$/;

/** Thrown by {@link compileTopicPermission} for a pattern it cannot compile. */
export class InvalidTopicPatternError extends Error {
  /** Stable code, for callers that branch on it. */
  readonly code = 'ERR_INVALID_TOPIC_PATTERN';
  constructor(readonly pattern: string) {
    super(
      `invalid topic pattern ${JSON.stringify(pattern.slice(0, 80))}: use "*", "prefix*" or a topic name`,
    );
    this.name = 'InvalidTopicPatternError';
  }
}

function makePermission(
  exact: ReadonlySet<string>,
  prefixes: readonly string[],
  allowsAll: boolean,
): TopicPermission {
  const patterns = allowsAll ? ['*'] : [...exact, ...prefixes.map((p) => `${p}*`)];
  return Object.freeze({
    patterns: Object.freeze(patterns),
    allowsAll,
    allows(topic: string): boolean {
      if (allowsAll) return true;
      if (exact.has(topic)) return true;
      for (const prefix of prefixes) {
        if (topic.startsWith(prefix)) return true;
      }
      return false;
    },
  });
}

/** Allows every topic: the permission of every connection when auth is off. */
export const ALLOW_ALL: TopicPermission = makePermission(new Set(), [], true);

/** Allows no topic. */
export const DENY_ALL: TopicPermission = makePermission(new Set(), [], false);

/**
 * Compiles `patterns` into a {@link TopicPermission}. An empty list allows nothing.
 *
 * @throws {InvalidTopicPatternError} for a pattern that is not `*`, `prefix*` or a topic name.
 */
export function compileTopicPermission(patterns: readonly string[]): TopicPermission {
  const exact = new Set<string>();
  const prefixes = new Set<string>();
  let all = false;
  for (const pattern of patterns) {
    if (typeof pattern !== 'string') throw new InvalidTopicPatternError(String(pattern));
    const wildcard = pattern.endsWith('*');
    const body = wildcard ? pattern.slice(0, -1) : pattern;
    if (!PATTERN_BODY.test(body) || (!wildcard && body.length === 0))
      throw new InvalidTopicPatternError(pattern);
    if (wildcard && body.length === 0) all = true;
    else if (wildcard) prefixes.add(body);
    else exact.add(body);
  }
  if (all) return ALLOW_ALL;
  if (exact.size === 0 && prefixes.size === 0) return DENY_ALL;
  // A prefix covered by a shorter one adds nothing; an exact name covered by a prefix neither.
  const sorted = [...prefixes].sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const prefix of sorted) {
    if (!kept.some((k) => prefix.startsWith(k))) kept.push(prefix);
  }
  for (const name of exact) {
    if (kept.some((k) => name.startsWith(k))) exact.delete(name);
  }
  return makePermission(exact, kept, false);
}

/**
 * Reads a token's `topics` claim: an array of patterns, or one string of patterns separated by spaces or commas
 * (the OAuth `scope` style). Returns `null` when the claim is present but malformed, so the caller can reject the
 * token instead of guessing; `undefined` (claim absent) gives `fallback`.
 */
export function topicPermissionFromClaim(claim: unknown, fallback: TopicPermission): TopicPermission | null {
  if (claim === undefined) return fallback;
  let patterns: unknown[];
  if (typeof claim === 'string') patterns = claim.split(/[\s,]+/).filter((p) => p !== '');
  else if (Array.isArray(claim)) patterns = claim;
  else return null;
  if (patterns.length > 256 || !patterns.every((p): p is string => typeof p === 'string')) return null;
  try {
    return compileTopicPermission(patterns);
  } catch {
    return null;
  }
}

/** The topics of `topics` that `permission` allows, in order. */
export function allowedTopics(permission: TopicPermission, topics: Iterable<string>): string[] {
  const out: string[] = [];
  for (const topic of topics) if (permission.allows(topic)) out.push(topic);
  return out;
}

/** The topics of `topics` that `permission` forbids, in order (what an `ERROR FORBIDDEN` lists). */
export function forbiddenTopics(permission: TopicPermission, topics: Iterable<string>): string[] {
  const out: string[] = [];
  for (const topic of topics) if (!permission.allows(topic)) out.push(topic);
  return out;
}
