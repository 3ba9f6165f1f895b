/**
 * Active alerts as part of a topic's state (the state model's ALERT rule, once for every implementation: the
 * aggregator, the cluster's Redis state, the client SDK's `TopicStore`, the dashboard).
 *
 * Rule, applied to every sequenced ALERT of a topic in `seq` order (the frame's topic, whatever `data.topic` says):
 * - an ALERT whose `data` is an object with an `id` (a valid entity id, {@link isEntityId}) and a `state` of
 *   `'raised'` or no `state` at all **raises** it: the alert becomes (or stays) active with this `data`; an alert
 *   already active keeps its place and takes the new `data`;
 * - one with `state: 'resolved'` **ends** the active alert of that id (an unknown id changes nothing);
 * - any other ALERT (no `id`, an id that is not a valid entity id, another `state`, data that is not an object) is
 *   **transient**: delivered, sequenced, never part of the state;
 * - at most {@link MAX_ACTIVE_ALERTS} alerts are active per topic: a raise of a new id beyond that is delivered but
 *   not kept (a raise of an id already active still replaces its data);
 * - a raise whose `data` is larger than {@link MAX_ACTIVE_ALERT_SIZE} (the JSON bounds' size estimate) is delivered
 *   but transient: what is kept is sent to every client that connects later, so it is kept small.
 *
 * The active alerts of a snapshot are the `data` of each active ALERT, oldest (first raised) first, as of the
 * snapshot's `seq`. `data` must already be within the JSON bounds (every server input path checks them).
 *
 * @module
 */
import { isEntityId } from './state-model.js';
import { checkJsonBounds, resolveJsonBounds } from './json-bounds.js';

/** Most alerts active at once per topic. */
export const MAX_ACTIVE_ALERTS = 256;

/** Largest `data` of an alert kept active, by the JSON bounds' size estimate (about its JSON length). */
export const MAX_ACTIVE_ALERT_SIZE = 16 * 1024;

const ACTIVE_ALERT_BOUNDS = resolveJsonBounds({ maxSize: MAX_ACTIVE_ALERT_SIZE });

/** What one ALERT does to its topic's active alerts (see the module rule); `null`: a transient alert. */
export type AlertEffect =
  { readonly kind: 'raise'; readonly id: string } | { readonly kind: 'resolve'; readonly id: string } | null;

/** The effect of an ALERT with this `data` by the module rule (the Redis publish script executes it as given). */
export function alertEffect(data: unknown): AlertEffect {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  const record = data as Record<string, unknown>;
  const id = record.id;
  if (!isEntityId(id)) return null;
  if (record.state === undefined || record.state === 'raised') {
    return checkJsonBounds(data, ACTIVE_ALERT_BOUNDS) === null ? { kind: 'raise', id } : null;
  }
  if (record.state === 'resolved') return { kind: 'resolve', id };
  return null;
}

/**
 * Applies one ALERT's `data` to a topic's active alerts (id -> data, in the order they were raised) in place, by the
 * module rule. Returns whether `active` changed (an alert raised or replaced, or one ended).
 */
export function applyAlert(active: Map<string, unknown>, data: unknown): boolean {
  const effect = alertEffect(data);
  if (effect === null) return false;
  if (effect.kind === 'resolve') return active.delete(effect.id);
  if (!active.has(effect.id) && active.size >= MAX_ACTIVE_ALERTS) return false;
  active.set(effect.id, data);
  return true;
}

/**
 * Active alerts rebuilt from a snapshot's `alerts` list (or anything else read from the wire or a store): each item
 * is folded by {@link applyAlert} in order, so items that are not active alerts are dropped and the bound holds.
 */
export function activeAlertsFrom(list: unknown): Map<string, unknown> {
  const active = new Map<string, unknown>();
  if (Array.isArray(list)) for (const data of list) applyAlert(active, data);
  return active;
}
