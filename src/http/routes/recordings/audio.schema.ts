import { z } from 'zod';

/**
 * Shapes of /api/v1/recordings/:id/audio. The audio itself is bytes in the content type sniffed
 * at upload (never re-serialised); only its headers are worth documenting.
 */
export const audioParams = z.strictObject({ id: z.guid() });

/** The Range header is parsed by the service (RFC 9110); here only its size is bounded. */
export const audioHeaders = z.looseObject({ range: z.string().max(200).optional() });

const bytes = z.string().meta({ format: 'binary' });

export const audioResponse = {
  200: {
    description:
      'The whole audio (no Range, or a Range we answer in full: several ranges, or one we do not parse)',
    content: { 'audio/*': { schema: bytes } },
  },
  206: {
    description: 'One byte range (Content-Range: bytes start-end/size)',
    content: { 'audio/*': { schema: bytes } },
  },
};

/**
 * The panel's <audio> source: a ticket (256 random bits, base64url) instead of the bearer token.
 * The query string is cut off every logged URL (src/http/logger.ts).
 */
export const audioStreamQuery = z.strictObject({ ticket: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });

export const audioTicketResponse = z.object({
  /** Relative URL to use as the audio source: GET with or without Range, no Authorization. */
  url: z.string(),
  /** Seconds the URL works for; ask for a new one after that (playback in progress is cut). */
  expiresIn: z.number().int(),
});

export const audioDeleted = z.null().describe('No content');
