import {
  SpoolIntegrityError,
  encodeBatch,
  encodeMeta,
  newSpoolKey,
  openSpool,
  sealRecord,
  streamHash,
  type OpenedSpool,
  type SpoolContext,
  type StreamMeta,
} from '../../crypto/spool-cipher.js';
import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { liveRecordingRepository } from '../../repositories/live/live-recording.repository.js';
import type { LiveSpoolStore, SpoolAppender } from '../../adapters/storage/live-spool.adapter.js';
import type { KeyService } from '../keys/key.service.js';

/**
 * The durable side of a live session (docs/live.md): every accepted frame is appended to its
 * stream's encrypted spool before it is acknowledged (the ack only ever covers frames whose record
 * is on disk). Batching is a group commit with a floor: a frame is written at once unless a record
 * was written less than `batchMs` ago, in which case it waits for that moment with whatever else
 * arrives (or until `batchBytes` are pending). A real-time client (a frame every 100 ms) thus gets
 * its ack one write + fdatasync after each frame, while a fast or bursty client costs at most
 * 1000 / batchMs fsyncs per second per stream. A fixed one-second batch would instead delay every
 * ack by up to a second; an fsync per frame would be unbounded for a fast client.
 */
export const spoolKeyLocation = (orgId: string, recordingId: string) =>
  ({ orgId, table: 'live_spools', rowId: recordingId, field: 'content_key' }) as const;

export interface SpoolPolicy {
  batchBytes: number;
  batchMs: number;
}

export const DEFAULT_SPOOL_POLICY: SpoolPolicy = { batchBytes: 32 * 1024, batchMs: 50 };

/** A node holds its claim on a session's recording this long past its last renewal. */
export const liveClaimTtlMs = (recheckSeconds: number) => (recheckSeconds * 3 + 10) * 1000;

/**
 * Bounds of a recording's spool replica (SpoolReplica) from the live limits: records at most one
 * per batch floor or per full batch, for the longest stream, for the most streams (a safety net
 * that trims nothing within the limits), and a lifetime past the last record that covers the
 * longest session, its resume windows and its idle timeout.
 */
export function replicaBounds(
  limits: { maxMinutes: number; resumeSeconds: number; idleSeconds: number; recheckSeconds: number },
  policy: SpoolPolicy = DEFAULT_SPOOL_POLICY,
): { maxRecords: number; ttlMs: number; claimTtlMs: number; retryMs: number } {
  const seconds = limits.maxMinutes * 60;
  const perStream = Math.ceil((seconds * 1000) / policy.batchMs + (seconds * 32_000) / policy.batchBytes) + 1;
  return {
    maxRecords: 8 * perStream,
    ttlMs: (seconds + 2 * limits.resumeSeconds + limits.idleSeconds) * 1000,
    claimTtlMs: liveClaimTtlMs(limits.recheckSeconds),
    retryMs: limits.resumeSeconds * 1000,
  };
}

/** What recognition has published so far, written with each record (resumes recognition there). */
export type Progress = () => { publishedTo: number; segmentSeq: number };

/** One stream's spool file and what it reports to (LiveSpools.create and .reopen). */
export interface StreamSpoolDeps {
  ctx: SpoolContext;
  appender: SpoolAppender;
  /** Records and frames already in the file: the next record's number and first seq. */
  at: { records: number; frames: number };
  progress: Progress;
  policy: SpoolPolicy;
  onError: (err: Error) => void;
  clock: Clock;
}

export class StreamSpool {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastFlushAt = 0;
  private chain: Promise<void> = Promise.resolve();
  /** Frames handed to a record so far (the next record's first seq). */
  private written: number;
  /** Frames on disk: `durable - 1` is the highest seq that may be acknowledged. */
  durable: number;
  onDurable: ((acked: number) => void) | undefined;
  /** Records in the file: the next record's number. */
  private records: number;

  constructor(private readonly d: StreamSpoolDeps) {
    this.records = d.at.records;
    this.written = this.durable = d.at.frames;
  }

  add(frame: Buffer): void {
    // The frame's bytes belong to the socket's buffer: copy before it is reused.
    this.pending.push(Buffer.from(frame));
    this.pendingBytes += frame.length;
    if (this.pendingBytes >= this.d.policy.batchBytes) void this.flush();
    else
      this.timer ??= setTimeout(
        () => void this.flush(),
        Math.max(0, this.lastFlushAt + this.d.policy.batchMs - this.d.clock.now().getTime()),
      );
  }

  /** Writes what is pending as one record; resolves once it (and every earlier one) is durable. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length > 0) {
      this.lastFlushAt = this.d.clock.now().getTime();
      const frames = this.pending;
      this.pending = [];
      this.pendingBytes = 0;
      const firstSeq = this.written;
      this.written += frames.length;
      const record = sealRecord(
        this.d.ctx,
        this.records++,
        firstSeq,
        encodeBatch({ ...this.d.progress(), frames }),
      );
      this.chain = this.chain.then(async () => {
        await this.d.appender.append(record);
        this.durable = firstSeq + frames.length;
        this.onDurable?.(this.durable - 1);
      });
      this.chain.catch((err: Error) => this.d.onError(err));
    }
    return this.chain;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.d.appender.close();
    }
  }
}

export interface LoadedStream {
  hash: string;
  opened: OpenedSpool & { meta: StreamMeta };
  /** Bytes of the file: more than `opened.goodBytes` means a torn tail to cut. */
  size: number;
}

export class LiveSpools {
  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly files: LiveSpoolStore,
    private readonly clock: Clock,
    readonly policy: SpoolPolicy = DEFAULT_SPOOL_POLICY,
  ) {}

  /** The recording's spool key: created (random, wrapped, stored) with its first stream. */
  async key(orgId: string, recordingId: string): Promise<Buffer> {
    return withTenant(this.db, { orgId, userId: null }, async (tx) => {
      const loc = spoolKeyLocation(orgId, recordingId);
      const wrapped = await liveRecordingRepository.findSpoolKey(tx, recordingId);
      if (wrapped) return this.keys.decrypt(tx, loc, wrapped);
      const key = newSpoolKey();
      const keyEnc = await this.keys.encrypt(tx, loc, key);
      await liveRecordingRepository.insertSpool(tx, { recordingId, orgId, keyEnc, now: this.clock.now() });
      return key;
    });
  }

  /**
   * This node starts holding the recording's session: the next generation, which fences its stop
   * (live-finalise.ts); undefined when the recording is no longer live.
   */
  takeGeneration(orgId: string, recordingId: string): Promise<number | undefined> {
    return withTenant(this.db, { orgId, userId: null }, (tx) =>
      liveRecordingRepository.takeGeneration(tx, recordingId),
    );
  }

  /** A new stream's spool, its metadata record already durable. */
  async create(
    orgId: string,
    recordingId: string,
    key: Buffer,
    meta: StreamMeta,
    progress: Progress,
    onError: (err: Error) => void,
  ): Promise<StreamSpool> {
    const ctx = { key, recordingId, hash: streamHash(key, meta.label) };
    const appender = await this.files.openAppender(orgId, recordingId, ctx.hash);
    await appender.append(sealRecord(ctx, 0, 0, encodeMeta(meta)));
    const at = { records: 1, frames: 0 };
    return new StreamSpool({ ctx, appender, at, progress, policy: this.policy, onError, clock: this.clock });
  }

  /** A restored stream's spool, appending after its last good record (a torn tail is cut first). */
  async reopen(
    orgId: string,
    recordingId: string,
    key: Buffer,
    stream: LoadedStream,
    progress: Progress,
    onError: (err: Error) => void,
  ): Promise<StreamSpool> {
    if (stream.size > stream.opened.goodBytes)
      await this.files.truncate(orgId, recordingId, stream.hash, stream.opened.goodBytes);
    const ctx = { key, recordingId, hash: stream.hash };
    const appender = await this.files.openAppender(orgId, recordingId, ctx.hash);
    const at = { records: stream.opened.records, frames: stream.opened.frames };
    return new StreamSpool({ ctx, appender, at, progress, policy: this.policy, onError, clock: this.clock });
  }

  /**
   * Every stream of a recording's spool on this node, authenticated; undefined when the recording
   * has no spool key (never streamed). Throws SpoolIntegrityError when a file was altered (or a
   * replica's record: rebuilt files are read and verified exactly as local ones).
   */
  async load(
    orgId: string,
    recordingId: string,
    opts: { rebuild?: boolean } = {},
  ): Promise<{ key: Buffer; streams: LoadedStream[] } | undefined> {
    const wrapped = await withTenant(this.db, { orgId, userId: null }, async (tx) => {
      const enc = await liveRecordingRepository.findSpoolKey(tx, recordingId);
      return enc ? this.keys.decrypt(tx, spoolKeyLocation(orgId, recordingId), enc) : undefined;
    });
    if (!wrapped) return undefined;
    if (opts.rebuild) await this.adoptReplica(orgId, recordingId, wrapped);
    const streams: LoadedStream[] = [];
    for (const { hash, bytes } of await this.files.readAll(orgId, recordingId)) {
      const opened = openSpool({ key: wrapped, recordingId, hash }, bytes);
      // Torn before its first record: nothing of this stream was ever acknowledged.
      if (!opened.meta) {
        await this.files.removeFile(orgId, recordingId, hash);
        continue;
      }
      streams.push({ hash, opened: { ...opened, meta: opened.meta }, size: bytes.length });
    }
    streams.sort((a, b) => (a.opened.meta.n ?? 0) - (b.opened.meta.n ?? 0));
    return { key: wrapped, streams };
  }

  /**
   * A session taken up (after a crash, on this node or another): each stream's file becomes the
   * replica's records when they hold at least as many frames as this node's file (another node
   * may have appended since; a file of this node's is never ahead by more than records it never
   * acknowledged, and frames are the client's by sequence number, so the longer one is right). A
   * replica stream that does not authenticate, or is shorter (Redis lost data), leaves the file
   * when there is one.
   */
  private async adoptReplica(orgId: string, recordingId: string, key: Buffer): Promise<void> {
    const remote = await this.files.readReplica(recordingId);
    if (remote.length === 0) return;
    const local = new Map((await this.files.readAll(orgId, recordingId)).map((s) => [s.hash, s.bytes]));
    const frames = (hash: string, bytes: Buffer | undefined) => {
      if (!bytes) return -1;
      try {
        const opened = openSpool({ key, recordingId, hash }, bytes);
        return opened.meta ? opened.frames : -1;
      } catch (err) {
        if (err instanceof SpoolIntegrityError) return -1;
        throw err;
      }
    };
    for (const { hash, bytes } of remote) {
      const mine = local.get(hash);
      const theirs = frames(hash, bytes);
      // Nothing here and a copy that does not authenticate: taken anyway, so that the read below
      // fails the recording (live_spool_tampered) instead of silently resuming without it.
      const adopt = theirs >= 0 ? theirs >= frames(hash, mine) : mine === undefined;
      if (adopt && !bytes.equals(mine ?? Buffer.alloc(0)))
        await this.files.writeStream(orgId, recordingId, hash, bytes);
    }
  }

  /** The participant label of each channel `channels` returns, in the same order. */
  static channelLabels(streams: LoadedStream[]): string[] {
    return streams
      .filter((s) => s.opened.batches.some((b) => b.frames.some((f) => f.length > 0)))
      .map((s) => s.opened.meta.label);
  }

  /** The recording's audio as the spool holds it: one aligned channel per stream, or mono. */
  static channels(streams: LoadedStream[]): Int16Array[] {
    const pcm = streams
      .map((s) => ({
        offset: s.opened.meta.offsetSamples,
        samples: toPcm(s.opened.batches.flatMap((b) => b.frames)),
      }))
      .filter((s) => s.samples.length > 0);
    if (pcm.length <= 1) return pcm.map((s) => s.samples);
    const length = Math.max(...pcm.map((s) => s.offset + s.samples.length));
    return pcm.map((s) => {
      const channel = new Int16Array(length);
      channel.set(s.samples, s.offset);
      return channel;
    });
  }

  exists(orgId: string, recordingId: string): Promise<boolean> {
    return this.files.exists(orgId, recordingId);
  }

  remove(orgId: string, recordingId: string): Promise<void> {
    return this.files.remove(orgId, recordingId);
  }

  list() {
    return this.files.list();
  }
}

function toPcm(frames: Buffer[]): Int16Array {
  const bytes = frames.reduce((n, f) => n + f.length, 0);
  const out = new Int16Array(bytes / 2);
  let at = 0;
  for (const f of frames) for (let i = 0; i < f.length; i += 2) out[at++] = f.readInt16LE(i);
  return out;
}
