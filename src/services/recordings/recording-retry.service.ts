import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { recordingAudioRepository } from '../../repositories/recordings/recording-audio.repository.js';
import { recordingJobRepository } from '../../repositories/transcription/recording-job.repository.js';
import { recordingRepository } from '../../repositories/recordings/recording.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import { requirePermission } from '../orgs/org.service.js';

/**
 * An admin's second chance for a failed recording (issue 17): a job that used up its attempts on
 * a cause since fixed (an outage longer than the retries, a missing model, a full disk) is queued
 * again, attempts from zero. Only while its sealed audio still exists — the org keeps audio
 * (storeAudio), or it failed before the audio was settled; otherwise there is nothing to
 * transcribe and the answer is 409.
 */
export class RecordingRetryService {
  constructor(
    private readonly db: Database,
    private readonly audit: Pick<AuditService, 'record'>,
    private readonly clock: Clock,
  ) {}

  async retry(actor: Actor, recordingId: string): Promise<{ id: string; status: 'queued' }> {
    requirePermission(actor, 'org.manage');
    const now = this.clock.now();
    await withTenant(this.db, actor, async (tx) => {
      const rec = await recordingRepository.find(tx, recordingId, {});
      if (!rec) throw notFound('Recording');
      if (rec.status !== 'failed') throw new AppError('conflict', 'Only a failed recording can be retried');
      if (!(await recordingAudioRepository.find(tx, recordingId)))
        throw new AppError('conflict', "The recording's audio is no longer stored: it cannot be retried");
      if (!(await recordingRepository.requeueFailed(tx, recordingId, now)))
        throw new AppError('conflict', 'Only a failed recording can be retried');
      await recordingJobRepository.enqueue(tx, { recordingId, orgId: actor.orgId, now });
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: actor.viaSupportGrant ? 'support' : 'user',
        action: 'recording.retried',
        targetType: 'recording',
        targetId: recordingId,
        ip: actor.ip,
        details: { previousError: rec.errorCode ?? null },
      });
    });
    return { id: recordingId, status: 'queued' };
  }
}
