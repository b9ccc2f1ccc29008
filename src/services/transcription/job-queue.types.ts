/** The job queue's options and the shapes it hands out (job-queue.service.ts). */
import type { Readable } from 'node:stream';
import type { RandomSource } from '../../domain/backoff.js';
import type { ClaimedJob } from '../../repositories/transcription/recording-job.repository.js';
import type { TranscriptBody } from '../recordings/recording.service.js';

export interface JobQueueOptions {
  leaseSeconds: number;
  maxAttempts: number;
  /**
   * The shortest wait before a retry. The wait is random (jitter: domain/backoff.ts) between it and
   * a ceiling that starts at twice it and doubles with each attempt.
   */
  backoffSeconds: number;
  /** The backoff's random source (tests pass a fixed one); Math.random by default. */
  random?: RandomSource;
  /**
   * Reclaims after a lapsed lease (its server or worker killed) allowed before the job fails as
   * `worker_crashed` (default 5). They use no attempt: a crash is not the recording's fault, but a
   * recording that kills its worker every time must not loop for ever.
   */
  maxLeaseLapses?: number;
  /**
   * Jobs of one org running at once, on every worker together (default: no limit). Claims already
   * prefer the org with the fewest running; a limit also keeps workers free for other orgs'
   * work that arrives later, at the cost of leaving them idle when only one org has work.
   */
  maxRunningPerOrg?: number;
}

/** Default of JobQueueOptions.maxLeaseLapses. */
export const MAX_LEASE_LAPSES = 5;

/** A job as its holder knows it (audioPath: a plain staged file of a job queued before 0007). */
export type HeldJob = Pick<ClaimedJob, 'recordingId' | 'orgId' | 'leaseId' | 'attempts'> & {
  audioPath?: string | null;
};

export interface JobResult {
  body: TranscriptBody;
  durationSeconds: number;
  channels: number;
  engine: string;
}

export type FailOutcome = 'retry' | 'failed' | 'lost';

/** Failures that another attempt cannot fix: the job fails at once. */
export const PERMANENT_FAILURES = new Set([
  'undecodable_audio',
  'unsupported_media_type',
  'payload_too_large',
  'engine_unavailable',
  'decoder_unavailable',
  // Sealed audio that fails authentication (tampered, or its org's keys were shredded).
  'decryption_failed',
]);

/** What the queue needs of the audio store (AudioStoreService). */
export interface JobAudio {
  openPlain(
    orgId: string,
    recordingId: string,
  ): Promise<{ stream: Readable; size: number; contentType: string }>;
  /** Once a job has ended (done or failed for good): the audio is kept or destroyed per the org. */
  settle(orgId: string, recordingId: string): Promise<void>;
}

/**
 * A remote worker counts as active (able to take jobs, so a queued recording is not "waiting for
 * an engine") when its token was used this recently: a polling worker is seen once a minute.
 */
export const REMOTE_WORKER_ACTIVE_SECONDS = 180;
