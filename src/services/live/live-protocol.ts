import { createHash } from 'node:crypto';
import type { Word } from '../../domain/transcript.js';
import type { RecognizerSession } from '../../adapters/asr/engine.js';

/* The live protocol's shapes, close codes and limits (docs/live.md lists them for client authors). */

/** Bus payloads are sealed with the org's data key, bound to the recording (AAD). */
export const liveSegmentLocation = (orgId: string, recordingId: string) =>
  ({ orgId, table: 'live', rowId: recordingId, field: 'segment' }) as const;

/** WebSocket close codes of the live protocol (docs/live.md lists them for client authors). */
export const LIVE_CLOSE = {
  normal: 1000,
  shuttingDown: 1001,
  /** An infrastructure failure (database, Redis, disk) ended the socket: reconnect and resume. */
  tryAgainLater: 1013,
  malformed: 4400,
  unauthenticated: 4401,
  notFound: 4404,
  idle: 4408,
  conflict: 4409,
  tooLarge: 4413,
  sequenceGap: 4422,
  overloaded: 4429,
} as const;

/** A protocol violation or refusal: the socket is closed with `code` and `reason`. */
export class LiveProtocolError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'LiveProtocolError';
  }
}

export interface LiveLimits {
  maxFrameBytes: number;
  /** Longest audio one stream may send (the session stops itself there). */
  maxSeconds: number;
  maxStreams: number;
  /** Utterance audio waiting for live recognition beyond this is skipped (the final job covers it). */
  maxBacklogSeconds: number;
  /** Audio kept in memory per stream (the rest is on the spool); Infinity keeps everything. */
  keepSeconds?: number;
  /** Seconds between partial results of an utterance still being spoken; 0 or absent: none. */
  partialSeconds?: number;
}

export interface LiveSegment {
  id: string;
  /** Order of emission within the recording, from 1. */
  seq: number;
  speaker: string;
  start: number;
  end: number;
  text: string;
  words: Word[];
}

/** Words of one stretch of PCM, times shifted by `offsetSeconds`. */
export type Recognise = (pcm: Int16Array, offsetSeconds: number) => Promise<Word[]>;

/** The words so far of an utterance still being spoken; `id` is the one its final segment gets. */
export interface LivePartial {
  id: string;
  speaker: string;
  start: number;
  end: number;
  text: string;
}

export interface LiveSessionEvents {
  segment(segment: LiveSegment): Promise<void>;
  /**
   * A partial result, replaced by the final with the same id. Never spooled or stored with the
   * recording; kept sealed in the live backlog (for late viewers) only until the session ends.
   */
  partial?(partial: LivePartial): Promise<void>;
  /** Live recognition fell behind and skipped an utterance (the stored transcript still has it). */
  lagging(): void;
  /** Recognition failed for one utterance (engine error); the session goes on. */
  failed(err: unknown): void;
}

/** Opens a participant's streaming recognizer; undefined when the engine cannot stream. */
export type OpenRecognizer = (label: string) => RecognizerSession | undefined;

/**
 * Stable across a restart (the same utterance of the same stream gets the same id), so a viewer
 * that sees a segment again after a restart can de-duplicate it by id.
 */
export function segmentId(recordingId: string, label: string, from: number): string {
  const h = createHash('sha256').update(`${recordingId}|${label}|${from}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
