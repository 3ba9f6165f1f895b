/**
 * Reads of a topic's history in Redis: its position (epoch, last seq) and the frames of its stream after a seq, in
 * one atomic script (`HISTORY` in `redis-scripts.ts`), within the command deadline. Resume, catch-up after a gap and
 * the position read that follows a SUBSCRIBE all read through here.
 *
 * @module
 */
import type { LogEntry } from '../gateway/topic-log.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisKeys } from './redis-keys.js';
import { HISTORY, runScript } from './redis-scripts.js';

/** A topic's position and the frames read after a seq. */
export interface HistoryRead {
  /** The topic's current epoch; `null` when nothing was ever published on it. */
  epoch: string | null;
  /** The topic's last seq (0 when nothing was published). */
  seq: number;
  /** The frames read, oldest first. */
  entries: LogEntry[];
}

/**
 * The position of `topic` and up to `count` of its frames from `fromSeq` of `knownEpoch` (from seq 1 of the current
 * epoch when the topic moved on from `knownEpoch`). `count` 0 reads the position only.
 */
export async function readHistory(
  connection: RedisConnection,
  keys: RedisKeys,
  topic: string,
  fromSeq: number,
  count: number,
  knownEpoch: string | null = null,
): Promise<HistoryRead> {
  const reply = (await connection.bounded(
    runScript(
      connection.redis,
      HISTORY,
      [keys.topic(topic, 'meta'), keys.topic(topic, 'log')],
      [fromSeq, count, knownEpoch ?? ''],
    ),
    `history of ${topic}`,
  )) as unknown[];
  const entries: LogEntry[] = [];
  for (let i = 2; i + 2 < reply.length; i += 3) {
    const id = String(reply[i]);
    entries.push({
      seq: Number(id.slice(0, id.indexOf('-'))),
      json: String(reply[i + 1]),
      at: Number(reply[i + 2]),
    });
  }
  return {
    epoch: reply[0] === null || reply[0] === false ? null : String(reply[0]),
    seq: Number(reply[1]),
    entries,
  };
}
