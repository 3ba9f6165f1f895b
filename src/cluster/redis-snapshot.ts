/**
 * Snapshot reads of the Redis broker: the shared state of several topics (entities, seq, epoch, alerts), read
 * atomically by one script (`SNAPSHOT` in `redis-scripts.ts`) within the command deadline, and returned once this
 * node has delivered every topic up to the position read, so no frame in a snapshot arrives again live.
 *
 * @module
 */
import { checkJsonBounds } from '../protocol/json-bounds.js';
import { activeAlertsFrom } from '../protocol/alert-state.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisKeys } from './redis-keys.js';
import { newEpoch } from './redis-publish.js';
import { runScript, SNAPSHOT } from './redis-scripts.js';

/**
 * The shared state of one topic: its entities, position (`epoch` absent when nothing was ever published) and active
 * alerts (their data, oldest first).
 */
export interface TopicSnapshot {
  entities: unknown[];
  seq: number;
  epoch?: string;
  alerts: unknown[];
}

/**
 * The shared state of `topics` (`{ <topic>: { entities, seq, epoch } }`), resolved once `awaitDelivered` has
 * resolved for every topic that has an epoch (the caller subscribes the topics it needs first).
 */
export async function readSnapshot(
  connection: RedisConnection,
  keys: RedisKeys,
  topics: readonly string[],
  awaitDelivered: (topic: string, epoch: string, seq: number) => Promise<void>,
): Promise<Record<string, TopicSnapshot>> {
  const keyList: string[] = [];
  for (const topic of topics) {
    keyList.push(keys.topic(topic, 'meta'), keys.topic(topic, 'state'), keys.topic(topic, 'alerts'));
  }
  const reply = (await connection.bounded(
    runScript(connection.redis, SNAPSHOT, keyList, [newEpoch()]),
    'snapshot',
  )) as [string | null, number, string[], string[]][];
  const out: Record<string, TopicSnapshot> = {};
  const waits: Promise<void>[] = [];
  topics.forEach((topic, i) => {
    const [epoch, seq, flat, alertFlat] = reply[i] ?? [null, 0, [], []];
    const entities: unknown[] = [];
    for (let k = 1; k < flat.length; k += 2) {
      const entity = storedEntity(flat[k]);
      if (entity !== undefined) entities.push(entity);
    }
    const alerts = storedAlerts(alertFlat);
    out[topic] =
      epoch === null ? { entities, seq: Number(seq), alerts } : { entities, seq: Number(seq), epoch, alerts };
    // At seq 0 there is no frame to wait for (the topic's first frame sets this node's epoch when it arrives).
    if (epoch !== null && Number(seq) > 0) waits.push(awaitDelivered(topic, epoch, Number(seq)));
  });
  await Promise.all(waits);
  return out;
}

/**
 * The active alerts as the alerts hash stores them (`<order> <data JSON>` per id), oldest first. The hash is input
 * too: a value that does not parse or is past the JSON bounds is skipped, and the list is folded by the protocol's
 * rule (`activeAlertsFrom`), so what is not an active alert is dropped and at most `MAX_ACTIVE_ALERTS` are returned.
 */
function storedAlerts(flat: readonly string[] | undefined): unknown[] {
  const parsed: { order: number; data: unknown }[] = [];
  for (let k = 1; k < (flat?.length ?? 0); k += 2) {
    const text = flat?.[k];
    const space = text?.indexOf(' ') ?? -1;
    if (text === undefined || space <= 0) continue;
    const order = Number(text.slice(0, space));
    if (!Number.isSafeInteger(order)) continue;
    let data: unknown;
    try {
      data = JSON.parse(text.slice(space + 1));
    } catch {
      continue;
    }
    if (checkJsonBounds(data) === null) parsed.push({ order, data });
  }
  parsed.sort((a, b) => a.order - b.order);
  return [...activeAlertsFrom(parsed.map((p) => p.data)).values()];
}

/**
 * An entity as the state hash stores it, or `undefined` for a value that is not one: the hash is input like any
 * other (anyone with access to the Redis can write it), and a value that does not parse, or parses outside the JSON
 * bounds, must not fail every later snapshot nor reach the clients; it is left out of the snapshot.
 */
function storedEntity(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const isEntity =
    typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string';
  return isEntity && checkJsonBounds(value) === null ? value : undefined;
}
