import type { Readable } from 'node:stream';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import { actorCan } from '../../domain/api-scopes.js';
import type { Segment } from '../../domain/transcript.js';
import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { AudioDecoder } from '../../adapters/media/audio-decoder.adapter.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import {
  recordingJobRepository,
  WAITING_FOR_ENGINE,
} from '../../repositories/transcription/recording-job.repository.js';
import { ENGINE_FIX } from '../transcription/engine-readiness.service.js';
import {
  recordingRepository,
  type ListFilter,
  type JobStage,
  type RecordingRow,
  type RecordingStatus,
  type Visibility,
} from '../../repositories/recordings/recording.repository.js';
import type { UploadFileStore } from '../../adapters/storage/upload-file.adapter.js';
import type { DiskSpace } from '../../adapters/storage/disk-space.adapter.js';
import { OUTAGE_RETRY_AFTER_SECONDS } from '../../domain/outage.js';
import type { AudioStoreService, PreparedAudio } from './audio-store.service.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import type { RecordingDeletionService } from './recording-deletion.service.js';
import { requirePermission } from '../orgs/org.service.js';
import { indexRecording } from '../search/search-index.service.js';

/**
 * Recordings: upload (staged file → probed → row + queued job), listing, status, transcript and
 * hard deletion. Members see their own recordings, owners/admins (and support through a grant)
 * every recording of the org; anything else is "not found", never "forbidden", so ids of
 * colleagues' recordings are not confirmed.
 */
export interface RecordingView {
  id: string;
  title: string | null;
  status: RecordingStatus;
  progress: number;
  /** What the job is doing: `queued`, a pipeline stage or `saving` while processing; else null. */
  stage: 'queued' | JobStage | null;
  elapsedSeconds: number | null;
  remainingSeconds: number | null;
  error: string | null;
  /** Why a queued recording does not start (no speech-recognition engine yet), or null. */
  waiting: string | null;
  language: string | null;
  speakersHint: number | null;
  durationSeconds: number | null;
  channels: number | null;
  engine: string | null;
  ownerId: string;
  createdAt: Date;
  completedAt: Date | null;
}

/** What the transcript body column holds (encrypted JSON). */
export interface TranscriptBody {
  segments: Segment[];
  speakers: string[];
}

export interface NewRecording {
  file: string;
  title?: string | undefined;
  language?: string | undefined;
  speakers?: number | undefined;
}

/** Messages shown for a failed job, by error code (no internals). */
const FAILURE_MESSAGES: Record<string, string> = {
  undecodable_audio: 'The audio could not be decoded',
  unsupported_media_type: 'The file is not a supported audio format',
  payload_too_large: 'The recording is longer than allowed',
  engine_unavailable: 'No speech-recognition engine is available on the server',
  engine_failed: 'The speech-recognition engine failed repeatedly',
  worker_crashed:
    'The transcription worker stopped (crashed or was killed) every time it worked on this recording',
  decoder_unavailable: 'The audio decoder (ffmpeg) is not available on the server',
  no_audio: 'The live recording received no audio',
  live_spool_tampered: "The live recording's stored audio failed an integrity check",
  live_spool_lost: "The live recording's audio was lost with its server's storage",
};

/** Why a queued recording waits, by the code the job queue marks it with (recording-job.repository.ts). */
const WAITING_MESSAGES: Record<string, string> = {
  [WAITING_FOR_ENGINE]: `Waiting for a speech-recognition engine: ${ENGINE_FIX}. It is transcribed as soon as one is available`,
};

const MIN_SECONDS = 0.1;
/** A full queue drains at the speed of transcription: minutes, not seconds. */
const QUEUE_FULL_RETRY_AFTER_SECONDS = 60;

export const titleLocation = (orgId: string, id: string) =>
  ({ orgId, table: 'recordings', rowId: id, field: 'title' }) as const;
export const transcriptLocation = (orgId: string, id: string) =>
  ({ orgId, table: 'transcripts', rowId: id, field: 'body' }) as const;

export interface RecordingServiceDeps {
  db: Database;
  keys: KeyService;
  audit: AuditService;
  decoder: Pick<AudioDecoder, 'probe'>;
  uploads: UploadFileStore;
  audio: Pick<AudioStoreService, 'prepare' | 'attach' | 'discard' | 'remove'>;
  clock: Clock;
  maxUploadBytes: number;
  deletion: Pick<RecordingDeletionService, 'destroy'>;
  limits?: {
    /** The data disk and the free space it must keep (SOTTO_DISK_MIN_FREE_MB). */
    disk?: { space: Pick<DiskSpace, 'freeBytes'>; minFreeBytes: number };
    /** Recordings one org may have waiting or running (SOTTO_QUEUE_MAX_PER_ORG). */
    maxQueuedPerOrg?: number;
  };
}

export class RecordingService {
  constructor(private readonly deps: RecordingServiceDeps) {}

  /**
   * Streams an uploaded file to the staging folder (413 beyond the limit, nothing kept). Refused
   * first, before a byte is written, with 507 when the data disk is below its free-space floor:
   * the upload would fail half-way, or fill the disk the live spools and the database need.
   */
  async stage(actor: Actor, source: Readable): Promise<string> {
    requirePermission(actor, 'recordings.create');
    const { disk, maxQueuedPerOrg } = this.deps.limits ?? {};
    if (disk && (await disk.space.freeBytes()) < disk.minFreeBytes) {
      source.resume();
      throw new AppError('insufficient_storage', 'The server is short of disk space: try again later', {
        retryAfterSeconds: OUTAGE_RETRY_AFTER_SECONDS.insufficient_storage,
      });
    }
    // Back-pressure: an org's queue is bounded, so a script uploading in a loop gets a clear 429
    // with Retry-After instead of growing the queue (and the disk under it) without end.
    if (
      maxQueuedPerOrg &&
      (await withTenant(this.deps.db, actor, (tx) => recordingJobRepository.countForOrg(tx, actor.orgId))) >=
        maxQueuedPerOrg
    ) {
      source.resume();
      throw new AppError(
        'queue_full',
        `Your organization already has ${maxQueuedPerOrg} recordings waiting to be transcribed: upload more when some have finished`,
        { retryAfterSeconds: QUEUE_FULL_RETRY_AFTER_SECONDS },
      );
    }
    return (await this.deps.uploads.save(source, this.deps.maxUploadBytes)).path;
  }

  /** Removes a staged file that will not become a recording (a failed request). */
  discard(file: string): Promise<void> {
    return this.deps.uploads.remove(file);
  }

  /**
   * Checks the staged file really is audio we can decode (415/422/413 otherwise, and the file is
   * removed), seals it (encrypted blob, outside any transaction: slow I/O), then creates the
   * recording, its audio row and its job in one transaction. The plain staged file is removed
   * either way; a failed transaction removes the blob too, so nothing is left behind.
   */
  async create(actor: Actor, input: NewRecording): Promise<{ id: string; status: RecordingStatus }> {
    requirePermission(actor, 'recordings.create');
    let sealed: PreparedAudio | undefined;
    try {
      const info = await this.deps.decoder.probe(input.file);
      // A header with no samples behind it (or a zero-length stream) is not a recording.
      if (info.duration !== undefined && info.duration < MIN_SECONDS)
        throw new AppError('undecodable_audio', 'The file holds no audio');
      const id = crypto.randomUUID();
      // Queued audio never waits in plaintext: the content type is the sniffed one, not the client's.
      sealed = await this.deps.audio.prepare(actor.orgId, id, input.file, info.mime);
      const audio = sealed;
      await this.deps.uploads.remove(input.file);
      const now = this.deps.clock.now();
      await withTenant(this.deps.db, actor, async (tx) => {
        await recordingRepository.insert(tx, {
          id,
          orgId: actor.orgId,
          ownerId: actor.userId,
          language: input.language ?? null,
          speakersHint: input.speakers ?? null,
          now,
        });
        if (input.title) {
          await recordingRepository.setTitle(
            tx,
            id,
            await this.deps.keys.encrypt(tx, titleLocation(actor.orgId, id), input.title),
          );
          // Searchable by title while it is transcribed (docs/search.md).
          await indexRecording(tx, this.deps.keys, actor.orgId, id);
        }
        await this.deps.audio.attach(tx, audio);
        await recordingJobRepository.enqueue(tx, { recordingId: id, orgId: actor.orgId, now });
        await this.deps.audit.record(tx, {
          orgId: actor.orgId,
          actorId: actor.userId,
          actorKind: actor.viaSupportGrant ? 'support' : 'user',
          action: 'recording.created',
          targetType: 'recording',
          targetId: id,
          ip: actor.ip,
        });
      });
      return { id, status: 'queued' };
    } catch (err) {
      await this.deps.uploads.remove(input.file);
      if (sealed) await this.deps.audio.discard(sealed);
      throw err;
    }
  }

  /**
   * A page of the visible recordings, newest first, narrowed by `filter` (all in SQL; the
   * visibility rule always applies on top, so a member asking for a colleague's gets nothing).
   */
  async list(
    actor: Actor,
    page: { limit: number; after?: string | undefined; filter?: ListQueryFilter | undefined },
  ): Promise<{ items: RecordingView[]; next: string | null }> {
    requirePermission(actor, 'recordings.read');
    const vis = visibility(actor);
    const filter = listFilter(actor, page.filter);
    return withTenant(this.deps.db, actor, async (tx) => {
      let after: { createdAt: Date; id: string } | undefined;
      if (page.after) {
        const last = await recordingRepository.find(tx, page.after, vis);
        if (!last) throw new AppError('bad_request', 'Unknown page cursor');
        after = { createdAt: last.createdAt, id: last.id };
      }
      const rows = await recordingRepository.list(tx, vis, { limit: page.limit, after, filter });
      const items: RecordingView[] = [];
      for (const row of rows) items.push(await this.view(tx, row));
      return { items, next: rows.length === page.limit ? rows[rows.length - 1]!.id : null };
    });
  }

  /** Views of several recordings in one transaction (search hits), in the order asked; the gone are left out. */
  async getMany(actor: Actor, ids: string[]): Promise<RecordingView[]> {
    requirePermission(actor, 'recordings.read');
    if (ids.length === 0) return [];
    return withTenant(this.deps.db, actor, async (tx) => {
      const found = await recordingRepository.findMany(tx, ids, visibility(actor));
      const rows = new Map(found.map((r) => [r.id, r]));
      const views: RecordingView[] = [];
      for (const id of ids) {
        const row = rows.get(id);
        if (row) views.push(await this.view(tx, row));
      }
      return views;
    });
  }

  async get(actor: Actor, id: string): Promise<RecordingView> {
    requirePermission(actor, 'recordings.read');
    return withTenant(this.deps.db, actor, async (tx) => {
      const row = await recordingRepository.find(tx, id, visibility(actor));
      if (!row) throw notFound('Recording');
      return this.view(tx, row);
    });
  }

  /**
   * Hard delete with a deletion receipt in the audit log (recording-deletion.service.ts): rows,
   * sealed audio, live spool; a job in progress loses its lease and stores nothing.
   */
  async delete(actor: Actor, id: string): Promise<void> {
    // Support staff may read through a grant, never destroy the customer's data.
    requirePermission(actor, 'recordings.create');
    await this.deps.deletion.destroy(
      {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: actor.viaSupportGrant ? 'support' : 'user',
        ip: actor.ip,
        reason: 'requested',
      },
      id,
      visibility(actor),
    );
  }

  private async view(
    tx: Parameters<Parameters<typeof withTenant>[2]>[0],
    row: RecordingRow,
  ): Promise<RecordingView> {
    const title = row.titleEnc
      ? await this.deps.keys.decryptString(tx, titleLocation(row.orgId, row.id), row.titleEnc)
      : null;
    return {
      id: row.id,
      title,
      status: row.status,
      progress: row.progress,
      ...jobProgress(row, this.deps.clock.now()),
      // A queued recording's code says why it waits; it has not failed.
      error:
        row.errorCode && row.status !== 'queued'
          ? (FAILURE_MESSAGES[row.errorCode] ?? 'Transcription failed')
          : null,
      waiting: row.errorCode && row.status === 'queued' ? (WAITING_MESSAGES[row.errorCode] ?? null) : null,
      language: row.language,
      speakersHint: row.speakersHint,
      durationSeconds: row.durationSeconds,
      channels: row.channels,
      engine: row.engine,
      ownerId: row.ownerId,
      createdAt: row.createdAt,
      completedAt: row.completedAt,
    };
  }
}

/** The list filters as the API takes them: `owner` is "me" or a user id. */
export interface ListQueryFilter {
  status?: RecordingStatus | undefined;
  owner?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

/** Resolves "me" to the caller; the rest passes through to SQL as bound parameters. */
export function listFilter(actor: Actor, f: ListQueryFilter | undefined): ListFilter {
  if (!f) return {};
  return {
    status: f.status,
    ownerId: f.owner === 'me' ? actor.userId : f.owner,
    from: f.from,
    to: f.to,
  };
}

function visibility(actor: Actor): Visibility {
  return actorCan(actor, 'recordings.read_all') ? {} : { ownerId: actor.userId };
}

/** Below this fraction an estimate of the time left is noise (decoding is fast; recognition is not). */
const ESTIMATE_FROM = 0.15;

/**
 * Stage, elapsed time and an estimate of the time left (elapsed × the share left / the share
 * done), computed on the server's clock so a client's clock does not matter.
 */
export function jobProgress(
  row: Pick<RecordingRow, 'status' | 'progress' | 'stage' | 'startedAt'>,
  now: Date,
): Pick<RecordingView, 'stage' | 'elapsedSeconds' | 'remainingSeconds'> {
  if (row.status === 'queued') return { stage: 'queued', elapsedSeconds: null, remainingSeconds: null };
  if (row.status !== 'processing') return { stage: null, elapsedSeconds: null, remainingSeconds: null };
  const elapsed = row.startedAt ? Math.max(0, (now.getTime() - row.startedAt.getTime()) / 1000) : null;
  const p = row.progress;
  const remaining = elapsed !== null && p >= ESTIMATE_FROM && p < 1 ? (elapsed * (1 - p)) / p : null;
  return {
    stage: row.stage ?? 'decoding',
    elapsedSeconds: elapsed === null ? null : Math.round(elapsed),
    remainingSeconds: remaining === null ? null : Math.round(remaining),
  };
}
