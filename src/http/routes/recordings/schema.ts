import { z } from 'zod';
import { NO_CONTROL } from '../text.schema.js';
import { EXPORT_FORMATS } from '../../../services/recordings/export.service.js';

/**
 * Request and response shapes of /api/v1/recordings. The upload is multipart (a file is not
 * JSON): its text fields are validated with `uploadFields` after the stream is staged.
 */

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

const status = z.enum(['live', 'queued', 'processing', 'done', 'failed']);

export const recordingResponse = z.object({
  id: z.string(),
  title: z.string().nullable(),
  status,
  /** 0..1 */
  progress: z.number(),
  /**
   * What the job is doing (docs/panel.md, "Progress"): `queued` while it waits, then `decoding`,
   * `transcribing`, `speakers` (identifying speakers) and `saving`; null otherwise.
   */
  stage: z.enum(['queued', 'decoding', 'transcribing', 'speakers', 'saving']).nullable(),
  /** Seconds since the job started processing (server clock), while processing; else null. */
  elapsedSeconds: z.number().nullable(),
  /** Estimated seconds left, from the elapsed time and the progress; null until it means something. */
  remainingSeconds: z.number().nullable(),
  /** Why a failed job failed, written for the user. */
  error: z.string().nullable(),
  /** Why a queued recording has not started (e.g. waiting for a speech-recognition engine). */
  waiting: z.string().nullable(),
  language: z.string().nullable(),
  speakersHint: z.number().int().nullable(),
  durationSeconds: z.number().nullable(),
  channels: z.number().int().nullable(),
  engine: z.string().nullable(),
  ownerId: z.string(),
  createdAt: z.iso.datetime(),
  completedAt: z.iso.datetime().nullable(),
});

const DAY_MS = 86_400_000;
/**
 * A point in time for the list's date range: an ISO date (`2026-03-01`) or an ISO date-time
 * with `Z` or an offset. A bare date is midnight UTC starting that day, or with `endOfDay` the
 * midnight ending it (so `to=2026-03-01` includes the 1st). Years 2000–2999 only.
 */
export const instant = (endOfDay: boolean) =>
  z
    .union([z.iso.date(), z.iso.datetime({ offset: true })])
    .transform((v) =>
      v.length === 10 ? new Date(Date.parse(`${v}T00:00:00Z`) + (endOfDay ? DAY_MS : 0)) : new Date(v),
    )
    .refine((d) => !Number.isNaN(d.getTime()) && d.getUTCFullYear() >= 2000 && d.getUTCFullYear() < 3000, {
      message: 'must be a date between the years 2000 and 2999',
    });

export const listQuery = z
  .strictObject({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    /** Id of the last recording of the previous page (with `q`: where the last scan stopped). */
    after: id.optional(),
    /**
     * Search titles and transcripts (case- and accent-insensitive; every word must appear, or a
     * "quoted phrase"). A page may then hold fewer than `limit` items while `next` is not null.
     */
    q: z.string().trim().min(1).max(200).regex(NO_CONTROL, 'must not contain control characters').optional(),
    /**
     * Only this speaker's segments (their display name, case- and accent-insensitive, compared
     * whole): with `q` the words must be theirs, without it the recordings where they speak.
     * Answered like a search (`match`, `scan`, pages that may be short).
     */
    speaker: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .regex(NO_CONTROL, 'must not contain control characters')
      .regex(/[\p{L}\p{N}]/u, 'must contain a letter or digit')
      .optional(),
    status: status.optional(),
    /** `me`, or a user id of the organization (a member only ever sees their own anyway). */
    owner: z.union([z.literal('me'), id]).optional(),
    /** Created at or after (inclusive). */
    from: instant(false).optional(),
    /** Created before (exclusive; a bare date means up to the end of that day, UTC). */
    to: instant(true).optional(),
  })
  .refine((q) => !q.from || !q.to || q.from < q.to, { message: '`from` must be before `to`', path: ['to'] });

const searchMatch = z.object({
  /** The title matched (at least one of the words). */
  title: z.boolean(),
  /** Up to 3 transcript segments that matched, text cut around the match. */
  snippets: z.array(z.object({ segmentId: z.string(), start: z.number(), text: z.string() })),
});

export const listResponse = z.object({
  /** `match` is present on search results only. */
  items: z.array(recordingResponse.extend({ match: searchMatch.optional() })),
  next: z.string().nullable(),
  /**
   * Search results only: recordings decrypted by this request, and the visible recordings the
   * filters let through in all. With the index `scanned` is about the hits, not the recordings
   * looked at (the index looked at all of them): do not add it up as "searched N of M".
   */
  scan: z.object({ scanned: z.number().int(), total: z.number().int() }).optional(),
});

const word = z.object({ w: z.string(), start: z.number(), end: z.number(), conf: z.number() });

export const transcriptQuery = z.strictObject({
  /** `original`: the machine transcript as recognised, before any user edit. */
  version: z.enum(['current', 'original']).default('current'),
});

export const transcriptResponse = z.object({
  /** Increases by one with every edit; send it back in PATCH. */
  revision: z.number().int(),
  version: z.enum(['current', 'original']),
  segments: z.array(
    z.object({
      id: z.string(),
      speaker: z.string(),
      start: z.number(),
      end: z.number(),
      text: z.string(),
      words: z.array(word),
      /** A user corrected this segment's text. */
      edited: z.boolean(),
    }),
  ),
  speakers: z.array(z.object({ id: z.string(), name: z.string() })),
});

const MAX_EDITS = 500;
const MAX_OPS = 50;
const editId = z.string().min(1).max(100);

export const transcriptEdit = z
  .strictObject({
    /** The `revision` the edits are based on; a stale one is refused with 409. */
    revision: z.number().int().min(0).max(2_147_483_647),
    speakers: z
      .array(
        z.strictObject({
          id: editId,
          name: z.string().trim().min(1).max(100).regex(NO_CONTROL, 'must not contain control characters'),
        }),
      )
      .max(MAX_EDITS)
      .optional(),
    segments: z
      .array(
        z
          .strictObject({
            id: editId,
            /** The corrected text (words are re-timed to it). */
            text: z.string().max(10_000).regex(NO_CONTROL, 'must not contain control characters').optional(),
            /** Moves the segment to another of the transcript's speakers (an id of `speakers`). */
            speaker: editId.optional(),
          })
          .refine((s) => s.text !== undefined || s.speaker !== undefined, 'give a text, a speaker or both'),
      )
      .max(MAX_EDITS)
      .optional(),
    /**
     * Structural edits, applied after the corrections above, in order: `merge` joins a segment
     * with the next one (same speaker only); `split` cuts one at a character offset of its text
     * that falls on a space, the second part getting a new id.
     */
    ops: z
      .array(
        z.discriminatedUnion('op', [
          z.strictObject({ op: z.literal('merge'), id: editId }),
          z.strictObject({ op: z.literal('split'), id: editId, at: z.number().int().min(1).max(10_000) }),
        ]),
      )
      .max(MAX_OPS)
      .optional(),
  })
  .refine((e) => editCount(e) > 0, 'there is nothing to change')
  .refine((e) => editCount(e) <= MAX_EDITS, {
    message: `at most ${MAX_EDITS} edits per request`,
  })
  .refine((e) => unique(e.speakers) && unique(e.segments), 'an id is edited twice in one request');

function editCount(e: {
  speakers?: unknown[] | undefined;
  segments?: unknown[] | undefined;
  ops?: unknown[] | undefined;
}): number {
  return (e.speakers?.length ?? 0) + (e.segments?.length ?? 0) + (e.ops?.length ?? 0);
}

function unique(edits: { id: string }[] | undefined): boolean {
  return !edits || new Set(edits.map((e) => e.id)).size === edits.length;
}

export const exportQuery = z.strictObject({ format: z.enum(EXPORT_FORMATS) });

const text = z.string();
/** One schema per media type (DOCX is binary); the body is sent as bytes, never re-serialised. */
export const exportResponse = {
  description: 'The transcript as a file (Content-Disposition: attachment)',
  content: {
    'text/plain': { schema: text.describe('[HH:MM:SS] Name: text, one line per segment') },
    'application/x-subrip': { schema: text.describe('SubRip subtitles') },
    'text/vtt': { schema: text.describe('WebVTT subtitles with <v Name> voice spans') },
    'application/json': {
      schema: z.object({
        title: z.string(),
        speakers: z.array(z.object({ id: z.string(), name: z.string() })),
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
      }),
    },
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document': {
      schema: text.meta({ format: 'binary' }).describe('Office Open XML document'),
    },
  },
};

export const reportResponse = z.object({
  durationSeconds: z.number(),
  /** Seconds covered by at least one segment. */
  speechSeconds: z.number(),
  silenceSeconds: z.number(),
  speakers: z.array(
    z.object({
      speaker: z.string(),
      name: z.string(),
      talkSeconds: z.number(),
      /** 0..1 of all talk time. */
      share: z.number(),
      turns: z.number().int(),
      words: z.number().int(),
      wordsPerMinute: z.number(),
      longestMonologueSeconds: z.number(),
    }),
  ),
  turns: z.number().int(),
  overlaps: z.number().int(),
  interruptions: z.number().int(),
  topKeywords: z.array(z.object({ word: z.string(), count: z.number().int() })),
});

export const noContent = z.null().describe('No content');
