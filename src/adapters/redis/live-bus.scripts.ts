/**
 * The Lua scripts of the Redis live bus: publishing with its backlog, burying a deleted
 * recording's, and the live ingest claim with node liveness (RedisLiveBus.claim and .beat;
 * docs/live.md, "Multiple nodes"): a dead node's claims are taken over once its liveness lapsed,
 * long before the claims themselves would; the spool replica's fence keeps that safe for a node
 * that was only stalled.
 */

/**
 * How long a node counts as alive after its last LiveBus.beat. LiveService beats every second (its
 * timer), so this tolerates a stall of the event loop of about 2 × recheck; above it, another node
 * may take the node's claims over (the spool fence makes the stalled node drop them). Far below
 * the claim's own lapse (liveClaimTtlMs: 3 × recheck + 10 s), which stays the backstop.
 */
export const liveAliveTtlMs = (recheckSeconds: number) => (recheckSeconds * 2 + 1) * 1000;

/** How long the shared liveness bookkeeping outlives the last beat of any node (a day). */
const BEAT_KEEP_MS = 24 * 3600 * 1000;

/** Redis's own clock in ms, inside a script (one clock for every node). */
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * The ingest claim (LiveBus.claim) in one step. KEYS: claim, liveness key of the owner read before
 * the script (ARGV[4]; for a free claim any key, untouched), since (BEAT). ARGV: node, claim ttl
 * ms, liveness ttl ms, that owner ('' for none). Every key the script touches is in KEYS, which
 * Redis Cluster requires: the liveness key of an owner known only from the claim is named by the
 * caller after reading the claim, and a claim whose owner changed since that read is refused (0):
 * it was just set by another node, so it is fresh and the checks below would refuse it too.
 * Free, or already ours: taken (renewed). Another node's is taken over (2) only when all of these
 * hold, and refused (0) otherwise:
 * - its node is not alive (no `<prefix>node-alive:<owner>`);
 * - liveness has been tracked without a gap for a liveness TTL: after Redis was down or restarted
 *   (no node could beat; the keys may be gone, or restored from before), every node gets that
 *   long to beat again before its claims count as abandoned;
 * - the claim was last renewed a liveness TTL ago or more (its age read from its PTTL, so nodes
 *   must share SOTTO_LIVE_RECHECK_SECONDS): a node renews its claims every recheck, so a fresh
 *   claim without a liveness key means the key went (evicted, deleted), not the node.
 * A node stalled longer than the TTL finds the claim gone at its next renewal or spool append (the
 * replica's fence compares the owner), and drops the session (LiveService.lost).
 */
export const CLAIM_SCRIPT = `
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if owner ~= ARGV[4] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
${NOW_MS}
local alive = tonumber(ARGV[3])
local since = tonumber(redis.call('GET', KEYS[3]) or now)
if now - since < alive then return 0 end
if tonumber(ARGV[2]) - redis.call('PTTL', KEYS[1]) < alive then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
`;

/**
 * A node is alive (LiveBus.beat). KEYS: its liveness key, last beat of any node, since. ARGV:
 * liveness ttl ms. `since` is when the beats of all nodes together last resumed after a gap longer
 * than the TTL (Redis down or restarted, or no node running): CLAIM_SCRIPT waits a TTL past it.
 */
export const BEAT_SCRIPT = `
${NOW_MS}
local alive = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[2]) or 0)
if now - last > alive or redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], string.format('%.0f', now))
end
redis.call('SET', KEYS[2], string.format('%.0f', now), 'PX', ${BEAT_KEEP_MS})
redis.call('PEXPIRE', KEYS[3], ${BEAT_KEEP_MS})
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 1
`;

/**
 * One step for number, keep and publish, so the order of the sequence is the order of the list
 * and of the channel, and a history read (one MULTI) sees an event in all three or in none.
 * KEYS: sequence, finals, partials, tombstone. ARGV: channel, ttl ms, kind, payload, slot.
 * What is kept and sent is `<seq>:<payload>`. A deleted recording (tombstone): nothing, 0.
 */
export const PUBLISH_SCRIPT = `
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local framed = seq .. ':' .. ARGV[4]
if ARGV[3] == 'final' then
  redis.call('RPUSH', KEYS[2], framed)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
elseif ARGV[3] == 'partial' then
  redis.call('HSET', KEYS[3], ARGV[5], framed)
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
redis.call('PUBLISH', ARGV[1], framed)
return seq
`;

/**
 * Deletion: the tombstone (as long as the backlog would have lived, BURIED_MIN_MS at least), then
 * the backlog and the sequence, in one step. KEYS: sequence, finals, partials, tombstone. ARGV:
 * minimum ms.
 */
export const BURY_SCRIPT = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[1]) then ttl = tonumber(ARGV[1]) end
redis.call('SET', KEYS[4], '1', 'PX', ttl)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
`;
