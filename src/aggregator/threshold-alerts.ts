/**
 * Threshold alert rules (`ThresholdRule`, the `alerts` of a topic definition): an entity whose `field` compares
 * true with `value` raises an alert once; it is resolved once when the comparison turns false or the entity is
 * removed. The alert id is `<rule>:<topic>:<entity id>` (the resolved ALERT repeats it). `AlertEngine` owns the
 * bookkeeping; this module decides, per committed change, which alerts start and which end.
 *
 * Comparisons: `>`, `>=`, `<`, `<=` hold only between two numbers or two strings; `==` and `!=` compare
 * primitives strictly. A missing field (or an object or array there) makes every comparison false, `!=`
 * included: an entity that does not report the field raises nothing.
 *
 * @module
 */
import type { ThresholdOperator, ThresholdRule } from '../protocol/topic-definition.js';
import type { EntityBase } from '../protocol/topics.js';
import { assertNever } from '../protocol/assert-never.js';
import { readEntityPath } from '../protocol/entity-path.js';

/** Longest message an alert carries (characters). */
export const MAX_ALERT_MESSAGE_LENGTH = 500;

/** Longest text one `{path}` placeholder is replaced by. */
const MAX_SUBSTITUTION_LENGTH = 200;

/** Most placeholders replaced in one message; later ones are left as they are. */
const MAX_SUBSTITUTIONS = 32;

/** Whether `actual <op> expected` holds (see the module comment for the rules). */
export function compare(
  actual: unknown,
  op: ThresholdOperator,
  expected: number | string | boolean,
): boolean {
  if (typeof actual !== 'number' && typeof actual !== 'string' && typeof actual !== 'boolean') return false;
  switch (op) {
    case '==':
      return actual === expected;
    case '!=':
      return actual !== expected;
    case '>':
    case '>=':
    case '<':
    case '<=': {
      const comparable =
        (typeof actual === 'number' && typeof expected === 'number' && Number.isFinite(actual)) ||
        (typeof actual === 'string' && typeof expected === 'string');
      if (!comparable) return false;
      if (op === '>') return actual > expected;
      if (op === '>=') return actual >= expected;
      if (op === '<') return actual < expected;
      return actual <= expected;
    }
    default:
      return assertNever(op);
  }
}

function text(value: unknown): string {
  if (value === undefined) return '?';
  const s = typeof value === 'string' ? value : (JSON.stringify(value) ?? '?');
  return s.length > MAX_SUBSTITUTION_LENGTH ? `${s.slice(0, MAX_SUBSTITUTION_LENGTH - 1)}…` : s;
}

/**
 * Renders a message template: each `{field.path}` is replaced by the entity's value there (`?` when missing).
 * One pass over the template: a replacement is never scanned again, so values cannot inject placeholders; at
 * most 32 replacements of at most 200 characters each, and the result is cut to 500 characters.
 */
export function renderMessage(template: string, entity: unknown): string {
  let count = 0;
  const out = template
    .slice(0, MAX_ALERT_MESSAGE_LENGTH)
    .replace(/\{([A-Za-z0-9_.$-]{1,256})\}/g, (match, path: string) => {
      count += 1;
      return count > MAX_SUBSTITUTIONS ? match : text(readEntityPath(entity, path));
    });
  return out.length > MAX_ALERT_MESSAGE_LENGTH ? `${out.slice(0, MAX_ALERT_MESSAGE_LENGTH - 1)}…` : out;
}

/** The id of the alert a rule raises for an entity. */
export function thresholdAlertId(rule: string, topic: string, entityId: string): string {
  return `${rule}:${topic}:${entityId}`;
}

/** What a change does to one rule's alert for one entity. */
export type ThresholdTransition =
  | {
      readonly kind: 'raise';
      readonly id: string;
      readonly rule: ThresholdRule;
      readonly entityId: string;
      readonly message: string;
    }
  | { readonly kind: 'resolve'; readonly id: string };

/**
 * The transitions one committed change of `topic` causes. `isActive(id)` tells whether an alert is raised now:
 * a true comparison raises only when it is not, a false one (or a removed entity) resolves only when it is.
 */
export function thresholdTransitions(
  topic: string,
  rules: readonly ThresholdRule[],
  upserts: readonly EntityBase[],
  removes: readonly string[],
  isActive: (id: string) => boolean,
): ThresholdTransition[] {
  const out: ThresholdTransition[] = [];
  if (rules.length === 0) return out;
  for (const entity of upserts) {
    for (const rule of rules) {
      const id = thresholdAlertId(rule.name, topic, entity.id);
      const holds = compare(readEntityPath(entity, rule.field), rule.op, rule.value);
      if (holds && !isActive(id))
        out.push({
          kind: 'raise',
          id,
          rule,
          entityId: entity.id,
          message: renderMessage(rule.message, entity),
        });
      else if (!holds && isActive(id)) out.push({ kind: 'resolve', id });
    }
  }
  for (const entityId of removes) {
    for (const rule of rules) {
      const id = thresholdAlertId(rule.name, topic, entityId);
      if (isActive(id)) out.push({ kind: 'resolve', id });
    }
  }
  return out;
}
