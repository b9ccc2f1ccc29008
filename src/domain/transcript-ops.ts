/**
 * Structural transcript edits (PATCH /recordings/:id/transcript `ops`): merge a segment with the
 * next one, split a segment at a character offset. Pure functions over the stored segments; the
 * service applies them after text and speaker corrections, in the order given, and refuses the
 * whole edit (422) when one of them cannot apply.
 */
import { segmentId } from './segments.js';
import type { Segment, Word } from './transcript.js';

export type SegmentOp = { op: 'merge'; id: string } | { op: 'split'; id: string; at: number };

export interface OpSegment extends Segment {
  edited?: boolean;
}

/** Why an op cannot apply; the service turns it into a validation error at `body.ops.<i>`. */
export class OpRefused extends Error {}

/** The same limit as one segment's corrected text: a merge must not build a bigger one. */
export const MAX_SEGMENT_TEXT = 10_000;

export function applyOp(segments: readonly OpSegment[], op: SegmentOp, retime: RetimeFn): OpSegment[] {
  const i = segments.findIndex((s) => s.id === op.id);
  if (i < 0) throw new OpRefused(`unknown segment id "${op.id}"`);
  const out = [...segments];
  if (op.op === 'merge') out.splice(i, 2, merged(segments[i]!, segments[i + 1]));
  else out.splice(i, 1, ...split(segments[i]!, op.at, newId(segments), retime));
  return out;
}

export type RetimeFn = (seg: Segment, text: string) => Word[];

function merged(a: OpSegment, b: OpSegment | undefined): OpSegment {
  if (!b) throw new OpRefused('the last segment has no next segment to merge with');
  // One segment has one speaker: the person moves one of them first if that is what they mean.
  if (a.speaker !== b.speaker)
    throw new OpRefused(
      'segments of different speakers cannot be merged; move one to the other speaker first',
    );
  const text = [a.text, b.text].filter(Boolean).join(' ');
  if (text.length > MAX_SEGMENT_TEXT)
    throw new OpRefused(`the merged text would be longer than ${MAX_SEGMENT_TEXT} characters`);
  return {
    id: a.id,
    speaker: a.speaker,
    start: Math.min(a.start, b.start),
    end: Math.max(a.end, b.end),
    text,
    words: [...a.words, ...b.words],
    edited: true,
  };
}

/**
 * Splits between words: `at` is a character offset in the text that must fall on a space
 * (the panel moves the caret to the nearest one). The recognised word timings go with their
 * words, so each half keeps its real start and end; a segment whose words no longer match its
 * text one to one is re-timed first (as a text correction would be).
 */
function split(s: OpSegment, at: number, rightId: string, retime: RetimeFn): [OpSegment, OpSegment] {
  if (at <= 0 || at >= s.text.length)
    throw new OpRefused(`the split point must be inside the text (1 to ${Math.max(1, s.text.length - 1)})`);
  if (!/\s/.test(s.text[at - 1]!) && !/\s/.test(s.text[at]!))
    throw new OpRefused('the split point must be at a space between two words');
  const left = s.text.slice(0, at).trim();
  const right = s.text.slice(at).trim();
  if (!left || !right) throw new OpRefused('both parts of a split need at least one word');
  const tokens = s.text.split(' ').filter(Boolean);
  const words = s.words.length === tokens.length ? s.words : retime(s, s.text);
  const n = left.split(' ').filter(Boolean).length;
  const lw = words.slice(0, n);
  const rw = words.slice(n);
  const cut = lw.at(-1)?.end ?? s.start;
  return [
    { id: s.id, speaker: s.speaker, start: s.start, end: cut, text: left, words: lw, edited: true },
    {
      id: rightId,
      speaker: s.speaker,
      start: rw[0]?.start ?? cut,
      end: s.end,
      text: right,
      words: rw,
      edited: true,
    },
  ];
}

/** The next free id in the pipeline's seg-0001 scheme. */
function newId(segments: readonly { id: string }[]): string {
  const taken = new Set(segments.map((s) => s.id));
  let n = segments.reduce((m, s) => Math.max(m, Number(/^seg-(\d{1,9})$/.exec(s.id)?.[1] ?? 0)), 0);
  let id = segmentId(++n);
  while (taken.has(id)) id = segmentId(++n);
  return id;
}
