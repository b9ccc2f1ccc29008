import { z } from 'zod';
import { NO_CONTROL } from '../text.schema.js';
import { workerFailureCodes } from '../../../domain/errors.js';

/**
 * Request and response shapes of /api/v1/worker (the remote worker protocol, docs/workers.md).
 * A worker's result is untrusted input like any other: every number is finite and bounded, every
 * string and array has a maximum length, and every segment's speaker is one of the listed ones.
 */

/** Longest recording a result may describe (the decoder's own cap is 8 h by default). */
export const MAX_RESULT_SECONDS = 24 * 3600;
export const MAX_SEGMENTS = 50_000;
export const MAX_WORDS_PER_SEGMENT = 5_000;
export const MAX_WORDS = 500_000;
/** The complete route's body limit: a full day of dense speech fits with room to spare. */
export const COMPLETE_BODY_LIMIT = 32 * 1024 * 1024;

/** Failure codes a worker may report; anything else is refused (400). */
export const WORKER_FAILURE_CODES = workerFailureCodes;

const leaseId = z.guid();
export const jobParams = z.strictObject({ id: z.guid() });
export const audioQuery = z.strictObject({ lease: leaseId });

const time = z.number().min(0).max(MAX_RESULT_SECONDS);
const speakerLabel = z.string().regex(/^S[1-9][0-9]{0,2}$/, 'speaker labels are S1, S2, …');

const word = z.strictObject({
  w: z.string().max(200),
  start: time,
  end: time,
  conf: z.number().min(0).max(1),
});

const segment = z.strictObject({
  id: z.string().min(1).max(64).regex(NO_CONTROL),
  speaker: speakerLabel,
  start: time,
  end: time,
  text: z.string().max(100_000),
  words: z.array(word).max(MAX_WORDS_PER_SEGMENT),
});

export const claimResponse = z.object({
  job: z.object({
    id: z.string(),
    leaseId: z.string(),
    leaseSeconds: z.number().int(),
    language: z.string().nullable(),
    speakersHint: z.number().int().nullable(),
  }),
});

export const heartbeatBody = z.strictObject({ leaseId, progress: z.number().min(0).max(1) });
export const heartbeatResponse = z.object({ leaseSeconds: z.number().int() });

export const completeBody = z
  .strictObject({
    leaseId,
    segments: z.array(segment).max(MAX_SEGMENTS),
    speakers: z.array(speakerLabel).max(100),
    durationSeconds: time,
    channels: z.number().int().min(1).max(64),
    engine: z.string().min(1).max(200).regex(NO_CONTROL, 'must not contain control characters'),
  })
  .superRefine((b, ctx) => {
    const speakers = new Set(b.speakers);
    if (speakers.size !== b.speakers.length)
      ctx.addIssue({ code: 'custom', path: ['speakers'], message: 'speakers must be unique' });
    let words = 0;
    for (const [i, s] of b.segments.entries()) {
      words += s.words.length;
      if (s.end < s.start)
        ctx.addIssue({ code: 'custom', path: ['segments', i, 'end'], message: 'end is before start' });
      if (!speakers.has(s.speaker))
        ctx.addIssue({ code: 'custom', path: ['segments', i, 'speaker'], message: 'not in speakers' });
      if (s.end > b.durationSeconds + 1)
        ctx.addIssue({ code: 'custom', path: ['segments', i, 'end'], message: 'beyond durationSeconds' });
    }
    if (words > MAX_WORDS) ctx.addIssue({ code: 'custom', path: ['segments'], message: 'too many words' });
  });

export const failBody = z.strictObject({ leaseId, code: z.enum(WORKER_FAILURE_CODES) });
export const failResponse = z.object({ outcome: z.enum(['retry', 'failed', 'lost']) });

export const releaseBody = z.strictObject({
  leaseId,
  // Due again only after this many seconds: the backoff of a hand-back after an outage
  // (job-runner.service.ts). Bounded: a worker cannot park a job for long.
  delaySeconds: z.number().int().min(0).max(600).optional(),
});

export const okResponse = z.object({ ok: z.literal(true) });
export const noContent = z.null().describe('No content: nothing is due for this worker');

export const whoamiResponse = z.object({ id: z.string(), name: z.string(), orgId: z.string().nullable() });
