/**
 * The Lua scripts the Redis broker runs, and a tiny runner (EVALSHA, falling back to EVAL once per connection when
 * Redis does not know the script yet, e.g. after a restart).
 *
 * Keys of a topic `T` under the prefix `P`:
 * - `P{T}:meta`  hash `epoch`, `seq`: the topic's stream life and last seq;
 * - `P{T}:log`   stream of the encoded frames, entry id `<seq>-0`, fields `j` (JSON) and `t` (ms);
 * - `P{T}:state` hash entity id -> entity JSON: the shared state the snapshots come from;
 * - `P{T}:alerts` hash alert id -> `<order> <data JSON>`: the topic's active alerts (`order`: the seq of the ALERT
 *   that first raised it, so a snapshot lists them oldest first), at most `MAX_ACTIVE_ALERTS`;
 * - channel `P{T}:live`: every frame, as `<seq> <epoch> <nodeId> <json>`.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script and its SHA-1. */
export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * Publishes one UPDATE/ALERT atomically: creates the epoch once (HSETNX; a new epoch starts with no active alerts),
 * takes the next seq (HINCRBY), builds the frame, appends it to the stream (XADD MAXLEN ~), applies the entity change
 * to the state hash and the ALERT's effect (as `alertEffect` of `src/protocol/alert-state.ts` computed it) to the
 * alerts hash (a new id only while fewer than `maxActive` are active), and PUBLISHes it.
 * Everything in one script, so the publication order on the channel is the seq order and the state always matches
 * the seq.
 *
 * The publisher's deadline is checked first, on Redis' own clock: a script that runs after the publisher gave up
 * (Redis was frozen, the publisher answered 503) changes nothing and returns the error `DEADLINE`.
 *
 * KEYS: meta, log, state, channel, alerts.
 * ARGV: epochCandidate, maxlen, type, timestampJson, dataJson, topicJson, nodeId, nowMs, deadlineMs (Redis clock),
 *       nUpserts, (id, entityJson) * nUpserts, nRemoves, id * nRemoves, alertEffect ('' | 'raise' | 'resolve'),
 *       alertId, maxActive.
 * Returns: { seq, epoch }.
 */
export const PUBLISH = script(`
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) > tonumber(ARGV[9]) then
  return redis.error_reply('DEADLINE the publisher gave up waiting')
end
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[5])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local json = '{"type":"' .. ARGV[3] .. '","topic":' .. ARGV[6] .. ',"data":' .. ARGV[5] .. ',"timestamp":' .. ARGV[4] ..
  ',"seq":' .. seq .. ',"epoch":"' .. epoch .. '"}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'j', json, 't', ARGV[8])
local i = 10
local n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local r = tonumber(ARGV[i])
i = i + 1
for _ = 1, r do
  redis.call('HDEL', KEYS[3], ARGV[i])
  i = i + 1
end
local effect, aid, maxActive = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
if effect == 'raise' then
  local prev = redis.call('HGET', KEYS[5], aid)
  if prev then
    local space = string.find(prev, ' ', 1, true)
    local order = space and string.sub(prev, 1, space - 1) or tostring(seq)
    redis.call('HSET', KEYS[5], aid, order .. ' ' .. ARGV[5])
  elseif redis.call('HLEN', KEYS[5]) < maxActive then
    redis.call('HSET', KEYS[5], aid, seq .. ' ' .. ARGV[5])
  end
elseif effect == 'resolve' then
  redis.call('HDEL', KEYS[5], aid)
end
redis.call('PUBLISH', KEYS[4], seq .. ' ' .. epoch .. ' ' .. ARGV[7] .. ' ' .. json)
return { seq, epoch }
`);

/**
 * Reads a topic's position and the history after a seq, atomically.
 * KEYS: meta, log. ARGV: fromSeq (first wanted), count (0: position only), knownEpoch (optional: the epoch `fromSeq`
 * belongs to; when the topic is in another epoch now, the read starts at seq 1 of the current one, so a reader that
 * missed an epoch change gets the new epoch from its beginning, not from its old position).
 * Returns: { epoch or false, seq, id1, json1, t1, id2, ... }.
 */
export const HISTORY = script(`
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local out = { epoch or false, seq }
local count = tonumber(ARGV[2])
local from = tonumber(ARGV[1])
if ARGV[3] ~= nil and ARGV[3] ~= '' and epoch and epoch ~= ARGV[3] then from = 1 end
if count > 0 and seq >= from then
  local entries = redis.call('XRANGE', KEYS[2], from .. '-0', '+', 'COUNT', count)
  for _, e in ipairs(entries) do
    local f = e[2]
    local j, t = '', '0'
    for k = 1, #f, 2 do
      if f[k] == 'j' then j = f[k + 1] elseif f[k] == 't' then t = f[k + 1] end
    end
    out[#out + 1] = e[1]
    out[#out + 1] = j
    out[#out + 1] = t
  end
end
return out
`);

/**
 * Reads the state of several topics (entities and active alerts) with their positions, atomically. A topic nothing
 * was published on yet gets its epoch here (HSETNX, as the publish script does), so every snapshot carries its
 * topic's epoch from the start.
 * KEYS: meta1, state1, alerts1, meta2, ... ARGV: epochCandidate.
 * Returns per topic: { epoch, seq, { id, json, ... }, { alertId, '<order> <json>', ... } }.
 */
export const SNAPSHOT = script(`
local out = {}
for k = 1, #KEYS, 3 do
  redis.call('HSETNX', KEYS[k], 'epoch', ARGV[1])
  local epoch = redis.call('HGET', KEYS[k], 'epoch')
  local seq = tonumber(redis.call('HGET', KEYS[k], 'seq') or '0')
  out[#out + 1] = { epoch or false, seq, redis.call('HGETALL', KEYS[k + 1]), redis.call('HGETALL', KEYS[k + 2]) }
end
return out
`);

/** Extends a lease only while this node holds it. KEYS: lease. ARGV: nodeId, ttlMs. Returns 1 or 0. */
export const RENEW_LEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`);

/** Releases a lease only when this node holds it. KEYS: lease. ARGV: nodeId. Returns 1 or 0. */
export const RELEASE_LEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);

/** Runs `s` with EVALSHA, loading it with EVAL when Redis answers NOSCRIPT. */
export async function runScript(
  redis: Redis,
  s: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      return redis.eval(s.lua, keys.length, ...keys, ...args);
    }
    throw error;
  }
}
