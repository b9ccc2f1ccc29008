import { mkdir, open, readdir, readFile, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { SpoolReplica } from '../redis/live-spool-replica.adapter.js';

/**
 * Live spool files on this node's disk: `<dataDir>/live/<orgId>/<recordingId>/<hash>.spool`
 * (0600, folders 0700), one append-only file per participant stream (format in
 * src/crypto/spool-cipher.ts). Only server-chosen ids and hex hashes reach a path (validated
 * again here: they also come back from directory listings). With a replica (Redis), every record
 * is also added to the recording's Redis stream before `append` resolves, so any node can rebuild
 * the spool (LiveSpools.load) when the one that wrote it is gone.
 */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HASH = /^[0-9a-f]{32}$/;

export interface SpoolDir {
  orgId: string;
  recordingId: string;
  /** Latest modification of any of its files (the last durable write). */
  mtimeMs: number;
}

/** An open stream spool: appends are durable (fdatasync) when `append` resolves. */
export interface SpoolAppender {
  append(bytes: Buffer): Promise<void>;
  close(): Promise<void>;
}

export class LiveSpoolStore {
  constructor(
    private readonly root: string,
    readonly replica?: SpoolReplica,
  ) {}

  dir(orgId: string, recordingId: string): string {
    const org = orgId.toLowerCase();
    const rec = recordingId.toLowerCase();
    if (!ID.test(org) || !ID.test(rec)) throw new Error('invalid spool id');
    return path.join(this.root, org, rec);
  }

  file(orgId: string, recordingId: string, hash: string): string {
    if (!HASH.test(hash)) throw new Error('invalid spool hash');
    return path.join(this.dir(orgId, recordingId), `${hash}.spool`);
  }

  async openAppender(orgId: string, recordingId: string, hash: string): Promise<SpoolAppender> {
    const file = this.file(orgId, recordingId, hash);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const fh: FileHandle = await open(file, 'a', 0o600);
    const replica = this.replica;
    return {
      append: async (bytes) => {
        // One write per record, then fdatasync: a crash tears at most the last record. The copy
        // in Redis goes at the same time; the record is durable once both are.
        const local = (async () => {
          await fh.write(bytes);
          await fh.datasync();
        })();
        await Promise.all([local, replica?.append(recordingId, hash, bytes)]);
      },
      close: () => fh.close(),
    };
  }

  /** Every stream spool of a recording: its hash and bytes (empty when there is none). */
  async readAll(orgId: string, recordingId: string): Promise<{ hash: string; bytes: Buffer }[]> {
    const dir = this.dir(orgId, recordingId);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    const out: { hash: string; bytes: Buffer }[] = [];
    for (const name of names.sort()) {
      const hash = name.endsWith('.spool') ? name.slice(0, -'.spool'.length) : '';
      if (HASH.test(hash)) out.push({ hash, bytes: await readFile(path.join(dir, name)) });
    }
    return out;
  }

  /** Every participant stream the replica holds (none without one): its hash and bytes. */
  readReplica(recordingId: string): Promise<{ hash: string; bytes: Buffer }[]> {
    return this.replica ? this.replica.read(recordingId) : Promise.resolve([]);
  }

  /** Replaces a stream's file by `bytes` (records taken from the replica), durably. */
  async writeStream(orgId: string, recordingId: string, hash: string, bytes: Buffer): Promise<void> {
    const file = this.file(orgId, recordingId, hash);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const fh = await open(file, 'w', 0o600);
    try {
      await fh.write(bytes);
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  /** A spool of the recording on this node's disk or in the replica. */
  async exists(orgId: string, recordingId: string): Promise<boolean> {
    const local = await stat(this.dir(orgId, recordingId)).then(
      () => true,
      () => false,
    );
    return local || ((await this.replica?.exists(recordingId)) ?? false);
  }

  /** Cuts a torn tail (the crash point) so that later appends follow the last good record. */
  async truncate(orgId: string, recordingId: string, hash: string, goodBytes: number): Promise<void> {
    await truncate(this.file(orgId, recordingId, hash), goodBytes);
  }

  async removeFile(orgId: string, recordingId: string, hash: string): Promise<void> {
    await rm(this.file(orgId, recordingId, hash), { force: true });
  }

  /** The recording's spool: this node's files and the replica's stream. */
  async remove(orgId: string, recordingId: string): Promise<void> {
    await rm(this.dir(orgId, recordingId), { recursive: true, force: true });
    await this.replica?.remove(recordingId);
  }

  /** Every recording with a spool folder on this node. */
  async list(): Promise<SpoolDir[]> {
    const out: SpoolDir[] = [];
    const orgs = await readdir(this.root).catch(() => [] as string[]);
    for (const orgId of orgs.filter((o) => ID.test(o))) {
      const recs = await readdir(path.join(this.root, orgId)).catch(() => [] as string[]);
      for (const recordingId of recs.filter((r) => ID.test(r))) {
        const dir = path.join(this.root, orgId, recordingId);
        let mtimeMs = (await stat(dir).catch(() => undefined))?.mtimeMs ?? 0;
        for (const name of await readdir(dir).catch(() => [] as string[]))
          mtimeMs = Math.max(
            mtimeMs,
            (await stat(path.join(dir, name)).catch(() => undefined))?.mtimeMs ?? 0,
          );
        out.push({ orgId, recordingId, mtimeMs });
      }
    }
    return out;
  }
}
