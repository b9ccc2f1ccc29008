import { z } from 'zod';

/**
 * Request and response shapes of /api/v1/recordings. The upload is multipart (a file is not
 * JSON): its text fields are validated with `uploadFields` after the stream is staged.
 */
// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001f\u007f-\u009f]*$/;

export const id = z.guid();
export const idParams = z.strictObject({ id });

export const uploadFields = z.strictObject({
  title: z
    .string()
    .trim()
    .min(1)
    .max(300)
    .regex(NO_CONTROL, 'must not contain control characters')
    .optional(),
  language: z
    .string()
    .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/, 'must be a language tag such as "en" or "en-US"')
    .optional(),
  speakers: z.coerce.number().int().min(1).max(20).optional(),
});

export const created = z.object({ id: z.string(), status: z.literal('queued') });

const status = z.enum(['queued', 'processing', 'done', 'failed']);

export const recordingResponse = z.object({
  id: z.string(),
  title: z.string().nullable(),
  status,
  /** 0..1 */
  progress: z.number(),
  /** Why a failed job failed, written for the user. */
  error: z.string().nullable(),
  language: z.string().nullable(),
  speakersHint: z.number().int().nullable(),
  durationSeconds: z.number().nullable(),
  channels: z.number().int().nullable(),
  engine: z.string().nullable(),
  ownerId: z.string(),
  createdAt: z.iso.datetime(),
  completedAt: z.iso.datetime().nullable(),
});

export const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** Id of the last recording of the previous page. */
  after: id.optional(),
});

export const listResponse = z.object({ items: z.array(recordingResponse), next: z.string().nullable() });

const word = z.object({ w: z.string(), start: z.number(), end: z.number(), conf: z.number() });

export const transcriptResponse = z.object({
  segments: z.array(
    z.object({
      id: z.string(),
      speaker: z.string(),
      start: z.number(),
      end: z.number(),
      text: z.string(),
      words: z.array(word),
    }),
  ),
  speakers: z.array(z.object({ id: z.string(), name: z.string() })),
});

export const noContent = z.null().describe('No content');
