import type { Redis } from 'ioredis';

/**
 * The live spool's copy in Redis (docs/live.md, "Multiple nodes"): one Redis stream per
 * recording, `<prefix>live-spool:<recordingId>`, each entry one spool record exactly as the file
 * holds it (sealed: AES-256-GCM under the recording's spool key) and the hex hash naming its
 * participant stream. Any node can rebuild the recording's spool from it, so a session resumes on
 * another node when the one that ingested it dies.
 *
 * Appends are fenced by the ingest claim (`<prefix>live-owner:<recordingId>`, LiveBus.claim): a
 * node whose claim lapsed (it was presumed dead and another node took the recording over) can no
 * longer add a record, so two nodes never write one spool. A claim that lapsed with nobody taking
 * it is taken again by the append (the node was only slow to renew it, e.g. a test's paused
 * clock). Nor can anyone append once the spool was removed (`<prefix>live-spool-gone:<id>`, set
 * with the deletion of the stream: the recording stopped, failed or was deleted) or the recording
 * deleted (the bus's tombstone `<prefix>live-deleted:<id>`); a record added in a race with the
 * removal is deleted with the next attempt, and the node drops the session.
 */

/** The recording was taken over by another node, or its spool removed: this node lets it go. */
export class SpoolFencedError extends Error {
  override name = 'SpoolFencedError';
  constructor() {
    super('the recording is claimed by another node');
  }
}

const APPEND = `
if redis.call('EXISTS', KEYS[3], KEYS[4]) > 0 then
  redis.call('DEL', KEYS[2])
  return 0
end
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[6])
elseif owner ~= ARGV[1] then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 'h', ARGV[2], 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
`;

/** Pause between two attempts of an append while Redis is unreachable. */
const RETRY_MS = 500;
/** Entries read per XRANGE call while a spool is rebuilt. */
const PAGE = 500;

export interface SpoolReplicaOptions {
  /** This node, as it claims recordings (LiveBus.claim). */
  nodeId: string;
  /** Upper bound of records per recording: a safety net the session's limits never reach. */
  maxRecords: number;
  /** How long a stream outlives its last record (a session abandoned without a stop). */
  ttlMs: number;
  /** The ingest claim's lifetime (LiveService), for a claim an append takes again. */
  claimTtlMs: number;
  /** How long an append keeps retrying while Redis is unreachable (the resume window). */
  retryMs: number;
}

export class SpoolReplica {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly opts: SpoolReplicaOptions,
  ) {}

  get nodeId(): string {
    return this.opts.nodeId;
  }

  private key(recordingId: string): string {
    return `${this.prefix}live-spool:${recordingId}`;
  }

  private owner(recordingId: string): string {
    return `${this.prefix}live-owner:${recordingId}`;
  }

  /**
   * Adds one record; throws SpoolFencedError when this node no longer holds the recording. While
   * Redis is unreachable it retries (up to `retryMs`): the record is not acknowledged meanwhile,
   * so the client keeps its frames and an ack still means "in Redis too" (docs/live.md).
   */
  async append(recordingId: string, hash: string, record: Buffer): Promise<void> {
    const until = Date.now() + this.opts.retryMs;
    for (;;) {
      try {
        return await this.tryAppend(recordingId, hash, record);
      } catch (err) {
        if (err instanceof SpoolFencedError || Date.now() >= until) throw err;
        await new Promise((res) => setTimeout(res, RETRY_MS));
      }
    }
  }

  private async tryAppend(recordingId: string, hash: string, record: Buffer): Promise<void> {
    const ok = await this.redis.eval(
      APPEND,
      4,
      this.owner(recordingId),
      this.key(recordingId),
      `${this.prefix}live-deleted:${recordingId}`,
      this.gone(recordingId),
      this.opts.nodeId,
      hash,
      record,
      String(this.opts.maxRecords),
      String(this.opts.ttlMs),
      String(this.opts.claimTtlMs),
    );
    if (ok !== 1) throw new SpoolFencedError();
  }

  /** Every participant stream's records, concatenated in order (the bytes its file would hold). */
  async read(recordingId: string): Promise<{ hash: string; bytes: Buffer }[]> {
    const parts = new Map<string, Buffer[]>();
    let from = '-';
    for (;;) {
      const page = await this.redis.xrangeBuffer(this.key(recordingId), from, '+', 'COUNT', PAGE);
      for (const [, fields] of page) {
        const f = new Map<string, Buffer>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!.toString(), fields[i + 1]!);
        const hash = f.get('h')?.toString();
        const record = f.get('r');
        if (!hash || !record) continue;
        let list = parts.get(hash);
        if (!list) parts.set(hash, (list = []));
        list.push(record);
      }
      if (page.length < PAGE) break;
      from = `(${page.at(-1)![0].toString()}`;
    }
    return [...parts].map(([hash, list]) => ({ hash, bytes: Buffer.concat(list) }));
  }

  async exists(recordingId: string): Promise<boolean> {
    return (await this.redis.exists(this.key(recordingId))) === 1;
  }

  /** Deletes the stream for good: a marker refuses (and deletes) any record a late append adds. */
  async remove(recordingId: string): Promise<void> {
    await this.redis
      .multi()
      .del(this.key(recordingId))
      .set(this.gone(recordingId), '1', 'PX', this.opts.ttlMs)
      .exec();
  }

  /** Set when the spool is removed (the recording stopped, failed or was deleted): never resumed. */
  private gone(recordingId: string): string {
    return `${this.prefix}live-spool-gone:${recordingId}`;
  }
}
