import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { encodeWav } from '../../audio/wav.js';
import { SpoolIntegrityError } from '../../crypto/spool-cipher.js';
import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { liveRecordingRepository } from '../../repositories/live/live-recording.repository.js';
import { SpoolFencedError } from '../../adapters/redis/live-spool-replica.adapter.js';
import { recordingJobRepository } from '../../repositories/transcription/recording-job.repository.js';
import type { UploadFileStore } from '../../adapters/storage/upload-file.adapter.js';
import type { AudioStoreService } from '../recordings/audio-store.service.js';
import type { AuditService } from '../operations/audit.service.js';
import { LIVE_SAMPLE_RATE } from './live-session.js';
import type { KeyService } from '../keys/key.service.js';
import { keepLiveSpeakers } from './live-speakers.js';
import { LiveSpools, type StreamSpool } from './live-spool.js';

export interface FinaliseDeps {
  db: Database;
  audit: AuditService;
  keys: Pick<KeyService, 'encryptJson'>;
  audio: Pick<AudioStoreService, 'seal' | 'remove'>;
  uploads: Pick<UploadFileStore, 'save'>;
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
 *
 * Fenced by `generation` (the one this node took when it started holding the session,
 * liveRecordingRepository.takeGeneration): the audio is sealed under a blob id of its own, and
 * the transaction that names it the recording's audio and queues the job commits only under that
 * generation. A node that stalled past its claim while another took the session over (a newer
 * generation) is refused whenever it seals, before or after the other node: it deletes its own
 * blob, touches nothing else and throws SpoolFencedError (its caller lets the session go).
 */
export async function sealLiveRecording(
  d: FinaliseDeps,
  s: {
    orgId: string;
    recordingId: string;
    spools: Iterable<StreamSpool>;
    opening: Iterable<Promise<unknown>>;
    generation: number;
  },
  reason: string,
): Promise<'queued' | 'failed'> {
  const { orgId, recordingId, generation } = s;
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
    let fenced = false;
    // Sealed before the job exists: queued audio never waits in plaintext (as uploads). The audio
    // row, the status and the job commit together, under this node's generation only.
    const queued = await d.audio.seal(orgId, recordingId, staged.path, 'audio/wav', async (tx) => {
      if (!(await liveRecordingRepository.markQueued(tx, recordingId, generation, now()))) {
        fenced = await liveRecordingRepository.stillExists(tx, recordingId);
        return false;
      }
      await liveRecordingRepository.deleteSpool(tx, recordingId);
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
    // Another node holds the session now (or ended it): its spool, its audio, its stop.
    if (fenced) throw new SpoolFencedError();
    // The sealed audio is committed (or the recording was deleted while it streamed, and this
    // node's blob is gone again): the spool goes.
    await d.spools.remove(orgId, recordingId);
    return queued ? 'queued' : 'failed';
  } catch (err) {
    // Another node took the recording over: it is that node's to end, nothing is marked here.
    if (err instanceof SpoolFencedError) throw err;
    if (err instanceof SpoolIntegrityError) code = 'live_spool_tampered';
    if (code === 'internal')
      d.logger.warn({ recordingId, err: (err as Error).name }, 'live recording could not be finalised');
    // Fenced like the success: a stale node's failure (say, no audio on its disk) must not end a
    // session another node holds now.
    const marked = await withTenant(d.db, { orgId, userId: null }, async (tx) => {
      if (await liveRecordingRepository.markFailed(tx, recordingId, code, now(), generation)) {
        if (code !== 'internal') await liveRecordingRepository.deleteSpool(tx, recordingId);
        return true;
      }
      return !(await liveRecordingRepository.stillExists(tx, recordingId));
    }).catch(() => true);
    if (!marked) throw new SpoolFencedError();
    if (code !== 'internal') await d.spools.remove(orgId, recordingId).catch(() => undefined);
    return 'failed';
  }
}
