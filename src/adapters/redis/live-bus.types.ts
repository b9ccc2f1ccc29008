/**
 * Fan-out of live-recording events (segments, stop) from the node that ingests the audio to every
 * node with a viewer. Payloads are opaque bytes: the service encrypts them before they leave the
 * process (docs/live.md), so Redis never sees transcript text.
 *
 * Without Redis (one node) an in-process implementation does the same job. With Redis, publishes
 * go over the shared connection and subscriptions over a dedicated one (a subscribed ioredis
 * connection cannot send other commands); channels are `<SOTTO_REDIS_PREFIX>live:<recordingId>`.
 * Delivery is at most once, like Redis pub/sub itself; what a viewer connecting late needs is kept
 * beside the channel (`retain`): every final segment in order and the latest partial of each
 * participant, read back with `history` (a Redis list and hash next to the channel, written by
 * the same script as the publish; in memory without Redis). Still opaque sealed bytes, with an
 * expiry, dropped by `forget`.
 *
 * Every event of a recording gets the next number of one sequence (a Redis counter beside the
 * channel, so it survives the ingest moving to another node), delivered with it and kept with it;
 * `history` says the last number given out when it was read. A viewer that subscribed first and
 * then read the history has the exact hand-over: a kept event numbered up to that mark is in the
 * history (or was replaced there by a newer one), anything later comes live, nothing twice.
 */
export type LiveBusHandler = (payload: Buffer, seq: number) => void;

/** What to keep of a published event for late viewers; `ttlMs` also bounds the sequence. */
export type LiveRetain =
  | { kind: 'final'; ttlMs: number }
  /** `slot`: one partial kept per slot (a participant); a later one replaces it. */
  | { kind: 'partial'; slot: string; ttlMs: number }
  /** Numbered, delivered, not kept (progress of a stop, errors). */
  | { kind: 'none'; ttlMs: number };

export interface LiveEntry {
  seq: number;
  payload: Buffer;
}

export interface LiveHistory {
  /** Sealed final segments, in publication order. */
  finals: LiveEntry[];
  /** The latest sealed partial of each slot (its final may be among `finals`). */
  partials: LiveEntry[];
  /** The last sequence number given out when this was read (0: none). */
  seq: number;
}

export interface LiveBus {
  /**
   * Claims (or renews) the right of node `nodeId` to hold the recording's ingest session for
   * `ttlMs`; false when another node holds it. All streams of one recording must meet on one
   * node (its audio is in that node's memory): a second node would seal a second, partial copy.
   */
  claim(recordingId: string, nodeId: string, ttlMs: number): Promise<boolean>;
  /**
   * Node `nodeId` is alive (its event loop runs, so it renews its claims) for liveAliveTtlMs. A
   * claim whose node stopped beating that long ago is taken over by another node's `claim` before
   * it lapses (CLAIM_SCRIPT says exactly when).
   */
  beat(nodeId: string): Promise<void>;
  release(recordingId: string, nodeId: string): Promise<void>;
  /** Numbers, keeps (as `retain` says) and delivers one event; resolves its sequence number. */
  publish(recordingId: string, payload: Buffer, retain: LiveRetain): Promise<number>;
  /** What was retained for the recording (empty when nothing was, or it expired). */
  history(recordingId: string): Promise<LiveHistory>;
  /** Drops what was retained and the sequence (the recording stopped or failed). */
  forget(recordingId: string): Promise<void>;
  /**
   * The recording was deleted: drops what was retained and the sequence, and for as long as a
   * backlog could live (BURIED_MIN_MS at least) refuses to number, keep or deliver anything more
   * of it — an ingest node that has not noticed the deletion yet must not rebuild the backlog of a
   * recording that no longer exists (`publish` resolves 0 then). Never rejects: the deletion has
   * committed; a failure is logged, and what was kept expires by itself (sealed meanwhile).
   */
  bury(recordingId: string): Promise<void>;
  /** Resolves once the subscription is active; the returned function ends it. */
  subscribe(recordingId: string, handler: LiveBusHandler): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * How long a deleted recording's tombstone lasts at least (longer when its backlog would have):
 * an ingest session notices the deletion within seconds; a day covers any realistic session limit.
 */
export const BURIED_MIN_MS = 24 * 3600 * 1000;
