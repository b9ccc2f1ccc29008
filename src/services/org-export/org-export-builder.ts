import { createHash } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ZipFile } from 'yazl';
import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError } from '../../domain/errors.js';
import { auditRepository } from '../../repositories/operations/audit.repository.js';
import type { Member } from '../../repositories/orgs/member.repository.js';
import { orgRepository } from '../../repositories/orgs/org.repository.js';
import { recordingAudioRepository } from '../../repositories/recordings/recording-audio.repository.js';
import type { AudioStoreService } from '../recordings/audio-store.service.js';
import type { AuditService } from '../operations/audit.service.js';
import type { MemberService } from '../orgs/member.service.js';
import type { RecordingService, RecordingView } from '../recordings/recording.service.js';
import type { TranscriptService } from '../recordings/transcript.service.js';

/**
 * The contents of an org export (docs/lifecycle.md), streamed as a zip in constant memory: every
 * entry is produced only when the zip writer reaches it (yazl's lazy streams), so at most one
 * transcript is in memory and audio flows through from its sealed blob. Transcripts, reports and
 * recordings are read through the same services as the API, so the files equal the API's answers.
 * Each read is its own short tenant transaction; none is open while a stream flows.
 */
export const EXPORT_FORMAT_VERSION = 1;
const PAGE = 200;

export interface ExportSources {
  db: Database;
  audit: AuditService;
  members: MemberService;
  recordings: RecordingService;
  transcripts: TranscriptService;
  audio: AudioStoreService;
}

export interface ExportMeta {
  exportId: string;
  createdAt: Date;
  requestedBy: string;
}

interface Entry {
  path: string;
  compress: boolean;
  /** Known up front for audio (yazl checks it); JSON sizes are only known once produced. */
  size?: number;
  /** A recording's file: skipped (and listed in the manifest) if the recording is gone by then. */
  recordingId?: string;
  produce: () => Promise<Readable>;
}

export interface ExportPlan {
  entries: Entry[];
  counts: Record<string, number>;
  /** Files of recordings deleted or archived while the export was built (filled as it runs). */
  skipped: { path: string; recordingId: string; reason: 'not_found' }[];
}

const EXTENSIONS: Record<string, string> = {
  'audio/wav': 'wav',
  'audio/flac': 'flac',
  'audio/ogg': 'ogg',
  'audio/mpeg': 'mp3',
  'audio/mp4': 'm4a',
  'audio/aac': 'aac',
  'audio/webm': 'webm',
  'audio/x-matroska': 'mka',
};

const json = (value: unknown): Readable =>
  Readable.from([Buffer.from(JSON.stringify(value, null, 2), 'utf8')]);

const memberView = (m: Member) => ({
  id: m.id,
  email: m.email,
  name: m.name,
  role: m.role,
  mfaEnabled: m.mfaEnabled,
  createdAt: m.createdAt,
});

/** Reads what the export will hold (ids, metadata, which audio is kept) and lists its entries. */
export async function planExport(src: ExportSources, actor: Actor, meta: ExportMeta): Promise<ExportPlan> {
  const members: Member[] = [];
  for (let after: string | undefined; ;) {
    const page = await src.members.list(actor, { limit: PAGE, after });
    members.push(...page);
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.id;
  }
  const recordings: RecordingView[] = [];
  for (let after: string | undefined; ;) {
    const page = await src.recordings.list(actor, { limit: PAGE, after });
    recordings.push(...page.items);
    if (!page.next) break;
    after = page.next;
  }
  const { org, audio } = await withTenant(src.db, actor, async (tx) => {
    const org = await orgRepository.find(tx, actor.orgId);
    const audio = new Map<string, { size: number; contentType: string }>();
    for (const r of recordings) {
      // Like playback: a pending job's audio is transient unless the org keeps audio.
      const pending = r.status === 'queued' || r.status === 'processing';
      if (pending && !org?.storeAudio) continue;
      const row = await recordingAudioRepository.find(tx, r.id);
      if (row) audio.set(r.id, { size: row.plainSize, contentType: row.contentType });
    }
    return { org, audio };
  });
  const done = recordings.filter((r) => r.status === 'done');
  const entries: Entry[] = [
    { path: 'members.json', compress: true, produce: async () => json(members.map(memberView)) },
    { path: 'recordings.json', compress: true, produce: async () => json(recordings) },
  ];
  for (const r of done) {
    entries.push({
      path: `transcripts/${r.id}.json`,
      compress: true,
      recordingId: r.id,
      produce: async () =>
        json({
          recordingId: r.id,
          current: await src.transcripts.get(actor, r.id, 'current'),
          original: await src.transcripts.get(actor, r.id, 'original'),
        }),
    });
    entries.push({
      path: `reports/${r.id}.json`,
      compress: true,
      recordingId: r.id,
      produce: async () => json(await src.transcripts.report(actor, r.id)),
    });
  }
  for (const [id, a] of audio) {
    entries.push({
      path: `audio/${id}.${EXTENSIONS[a.contentType] ?? 'bin'}`,
      // Audio formats are compressed already (WAV a little less, not worth the CPU).
      compress: false,
      size: a.size,
      recordingId: id,
      produce: async () => (await src.audio.openPlain(actor.orgId, id)).stream,
    });
  }
  let auditEntries = 0;
  entries.push({
    path: 'audit-log.json',
    compress: true,
    produce: async () => {
      const [verification] = await src.audit.verify(actor.orgId);
      return Readable.from(
        auditLog(src, actor, verification ?? { orgId: actor.orgId, entries: 0, ok: true }, (n) => {
          auditEntries = n;
        }),
      );
    },
  });
  const counts = {
    members: members.length,
    recordings: recordings.length,
    transcripts: done.length,
    reports: done.length,
    audio: audio.size,
  };
  // The manifest is produced last, when every other file's hash is known.
  const files: { path: string; size: number; sha256: string }[] = [];
  const skipped: ExportPlan['skipped'] = [];
  const orgInfo = org ? { id: org.id, name: org.name, slug: org.slug } : { id: actor.orgId };
  return {
    counts,
    skipped,
    entries: [
      ...entries.map((e) => ({ ...e, produce: tapped(e, files) })),
      {
        path: 'manifest.json',
        compress: true,
        produce: async () =>
          json({
            formatVersion: EXPORT_FORMAT_VERSION,
            exportId: meta.exportId,
            org: orgInfo,
            createdAt: meta.createdAt,
            requestedBy: meta.requestedBy,
            counts: { ...counts, auditEntries },
            files,
            skipped,
          }),
      },
    ],
  };
}

/** The audit log, oldest first, paged under RLS and written out as it is read. */
async function* auditLog(
  src: ExportSources,
  actor: Actor,
  verification: unknown,
  count: (n: number) => void,
): AsyncGenerator<Buffer> {
  // The repository pages newest first; first find each page's lower bound (the chain may grow
  // meanwhile — the bounds are fixed by this first walk), then emit the pages oldest first.
  const lower: number[] = [];
  let top: number | undefined;
  let before: number | undefined;
  for (;;) {
    const page = await withTenant(src.db, actor, (tx) =>
      auditRepository.list(tx, actor.orgId, { limit: PAGE, beforeSeq: before }),
    );
    if (page.length === 0) break;
    top ??= page[0]!.seq + 1;
    before = page[page.length - 1]!.seq;
    lower.push(before);
    if (page.length < PAGE) break;
  }
  yield Buffer.from(`{\n  "verification": ${JSON.stringify(verification)},\n  "entries": [`);
  let n = 0;
  for (let i = lower.length - 1; i >= 0; i--) {
    const upper = i === 0 ? top : lower[i - 1];
    const rows = await withTenant(src.db, actor, (tx) =>
      auditRepository.list(tx, actor.orgId, { limit: PAGE, beforeSeq: upper }),
    );
    for (const row of rows.reverse()) {
      if (row.seq < lower[i]!) continue;
      yield Buffer.from(`${n === 0 ? '' : ','}\n    ${JSON.stringify(row)}`);
      n++;
    }
  }
  count(n);
  yield Buffer.from('\n  ]\n}\n');
}

/** Wraps an entry's producer so the bytes it yields are hashed into the manifest's file list. */
function tapped(entry: Entry, files: { path: string; size: number; sha256: string }[]) {
  return async (): Promise<Readable> => {
    const source = await entry.produce();
    const tap = new HashTap();
    tap.on('finish', () => files.push({ path: entry.path, size: tap.bytes, sha256: tap.hex() }));
    source.on('error', (err) => tap.destroy(err));
    return source.pipe(tap);
  };
}

/** Pass-through that hashes (SHA-256) and counts what flows through it. */
export class HashTap extends Transform {
  private readonly hash = createHash('sha256');
  private digest: string | undefined;
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  hex(): string {
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }
}

/**
 * The zip as one stream. Entries are produced one after another, each only once the previous one
 * is fully written. `onItem` is called after each entry (progress); `stopped` is asked between
 * entries (shutdown: the stream fails with `unavailable`). An entry of a recording that is gone
 * by the time it is produced (deleted, archived) is skipped and listed in `plan.skipped`; any
 * other failure errors the whole stream (no partial export is ever marked ready).
 */
export function streamZip(
  plan: ExportPlan,
  mtime: Date,
  onItem: () => void,
  stopped: () => boolean = () => false,
): Readable {
  const zip = new ZipFile();
  const out = new PassThrough();
  // The consumer's pipeline handles errors; this keeps a late one (after it finished) from crashing.
  out.on('error', () => undefined);
  zip.on('error', (err: Error) => out.destroy(err));
  zip.outputStream.on('error', (err) => out.destroy(err));
  zip.outputStream.pipe(out);
  const closed = new Promise<void>((resolve) => out.once('close', resolve));
  void (async () => {
    for (const e of plan.entries) {
      if (out.destroyed) return;
      if (stopped()) throw new AppError('unavailable', 'server stopping');
      let stream: Readable;
      try {
        stream = await e.produce();
      } catch (err) {
        if (!(e.recordingId && err instanceof AppError && err.code === 'not_found')) throw err;
        plan.skipped.push({ path: e.path, recordingId: e.recordingId, reason: 'not_found' });
        continue;
      }
      zip.addReadStream(stream, e.path, {
        mtime,
        mode: 0o100600,
        compress: e.compress,
        ...(e.size !== undefined ? { size: e.size } : {}),
      });
      await Promise.race([finished(stream), closed]);
      if (out.destroyed) return;
      onItem();
    }
    zip.end();
  })().catch((err: unknown) => out.destroy(err as Error));
  return out;
}
