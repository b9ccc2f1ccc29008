import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { encodeWav } from '../audio/wav.js';
import { SpoolIntegrityError } from '../crypto/spool-cipher.js';
import type { Database } from '../db/database.js';
import { withTenant } from '../db/tenant.js';
import { AppError } from '../domain/errors.js';
import type { Clock } from '../repositories/clock.repository.js';
import { liveRecordingRepository } from '../repositories/live-recording.repository.js';
import { SpoolFencedError } from '../repositories/live-spool-replica.repository.js';
import { recordingJobRepository } from '../repositories/recording-job.repository.js';
import type { UploadFileRepository } from '../repositories/upload-file.repository.js';
import type { AudioStoreService } from './audio-store.service.js';
import type { AuditService } from './audit.service.js';
import { LIVE_SAMPLE_RATE } from './live-session.js';
import type { KeyService } from './key.service.js';
import { keepLiveSpeakers } from './live-speakers.js';
import { LiveSpools, type StreamSpool } from './live-spool.js';

export interface FinaliseDeps {
  db: Database;
  audit: AuditService;
  keys: Pick<KeyService, 'encryptJson'>;
  audio: Pick<AudioStoreService, 'seal' | 'remove'>;
  uploads: Pick<UploadFileRepository, 'save'>;
  spools: LiveSpools;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
}

/**
 * The end of a live session (after its last utterance is recognised): the spools are flushed and
 * read back (the WAV is built from them, not from memory: mono for one stream, one aligned channel
 * per participant for several), sealed like an upload, and a job is queued in the transaction
 * that also deletes the spool's row; the spool files go right after. No audio → `no_audio`; a
 * spool altered on disk → `live_spool_tampered`; anything else → `internal` (the spool files
 * stay for the operator until the sweep removes them, the recording no longer being live).
 */
export async function sealLiveRecording(
  d: FinaliseDeps,
  s: {
    orgId: string;
    recordingId: string;
    spools: Iterable<StreamSpool>;
    opening: Iterable<Promise<unknown>>;
  },
  reason: string,
): Promise<'queued' | 'failed'> {
  const { orgId, recordingId } = s;
  const now = () => d.clock.now();
  let code = 'internal';
  try {
    await Promise.all([...s.opening].map((p) => p.catch(() => undefined)));
    const spools = [...s.spools];
    await Promise.all(spools.map((sp) => sp.close()));
    const loaded = spools.length > 0 ? await d.spools.load(orgId, recordingId) : undefined;
    const channels = loaded ? LiveSpools.channels(loaded.streams) : [];
    if (channels.length === 0) {
      code = 'no_audio';
      throw new AppError('conflict', 'no audio');
    }
    const wav = encodeWav(channels.length === 1 ? channels[0]! : channels, LIVE_SAMPLE_RATE);
    const staged = await d.uploads.save(Readable.from([wav]), wav.length);
    // Sealed before the job exists: queued audio never waits in plaintext (as uploads).
    await d.audio.seal(orgId, recordingId, staged.path, 'audio/wav');
    const queued = await withTenant(d.db, { orgId, userId: null }, async (tx) => {
      await liveRecordingRepository.deleteSpool(tx, recordingId);
      if (!(await liveRecordingRepository.markQueued(tx, recordingId, now()))) return false;
      // The names people were given while live become the transcript's speaker names.
      await keepLiveSpeakers(tx, d.keys, orgId, recordingId, LiveSpools.channelLabels(loaded!.streams));
      await recordingJobRepository.enqueue(tx, { recordingId, orgId, now: now() });
      await d.audit.record(tx, {
        orgId,
        actorId: null,
        actorKind: 'system',
        action: 'recording.live_stopped',
        targetType: 'recording',
        targetId: recordingId,
        details: {
          reason,
          seconds: Math.round(channels[0]!.length / LIVE_SAMPLE_RATE),
          streams: channels.length,
        },
      });
      return true;
    });
    // The sealed audio is committed (or the recording was deleted while it streamed): the spool goes.
    await d.spools.remove(orgId, recordingId);
    if (queued) return 'queued';
    await d.audio.remove(orgId, recordingId);
    return 'failed';
  } catch (err) {
    // Another node took the recording over: it is that node's to end, nothing is marked here.
    if (err instanceof SpoolFencedError) throw err;
    if (err instanceof SpoolIntegrityError) code = 'live_spool_tampered';
    if (code === 'internal')
      d.logger.warn({ recordingId, err: (err as Error).name }, 'live recording could not be finalised');
    await withTenant(d.db, { orgId, userId: null }, async (tx) => {
      await liveRecordingRepository.markFailed(tx, recordingId, code, now());
      if (code !== 'internal') await liveRecordingRepository.deleteSpool(tx, recordingId);
    }).catch(() => undefined);
    if (code !== 'internal') await d.spools.remove(orgId, recordingId).catch(() => undefined);
    return 'failed';
  }
}
