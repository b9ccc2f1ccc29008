/**
 * From recognised words and diarization turns to transcript segments: every word gets the speaker
 * whose turns overlap it most, then consecutive words are grouped into segments. A new segment
 * starts at a speaker change, after a pause longer than `maxPauseSeconds`, or once a segment
 * would grow past `maxSegmentSeconds` (long monologues stay readable and seekable).
 */
import type { Segment, SpeakerTurn, Word } from './transcript.js';

export interface SegmentOptions {
  maxPauseSeconds?: number;
  maxSegmentSeconds?: number;
  /** Speaker for words when there are no turns at all (the VAD heard nothing the engine did). */
  fallbackSpeaker?: string;
}

export interface SpeakerWord extends Word {
  speaker: string;
}

/**
 * Speaker of each word by time overlap with the turns; a word that overlaps no turn (it fell in a
 * gap the VAD closed early) takes the nearest turn's speaker. Turns must be sorted by start.
 */
export function assignSpeakers(
  words: readonly Word[],
  turns: readonly SpeakerTurn[],
  fallbackSpeaker = 'S1',
): SpeakerWord[] {
  const sorted = [...turns].sort((a, b) => a.start - b.start);
  // Words and turns are both time-ordered: skip turns that end (at the latest) well before the
  // word, stop at the first turn starting after it.
  const out: SpeakerWord[] = [];
  let from = 0;
  const maxLen = sorted.reduce((m, t) => Math.max(m, t.end - t.start), 0);
  for (const word of words) {
    while (from < sorted.length - 1 && sorted[from]!.start < word.start - maxLen - 1) from++;
    const overlap = new Map<string, number>();
    let nearest: { speaker: string; distance: number } | undefined;
    for (let i = from; i < sorted.length; i++) {
      const t = sorted[i]!;
      const o = Math.min(t.end, word.end) - Math.max(t.start, word.start);
      if (o > 0) overlap.set(t.speaker, (overlap.get(t.speaker) ?? 0) + o);
      const distance = o > 0 ? 0 : Math.max(t.start - word.end, word.start - t.end);
      if (!nearest || distance < nearest.distance) nearest = { speaker: t.speaker, distance };
      if (t.start > word.end) break;
    }
    let speaker = nearest?.speaker ?? fallbackSpeaker;
    let best = 0;
    for (const [s, o] of overlap) {
      if (o > best) [speaker, best] = [s, o];
    }
    out.push({ ...word, speaker });
  }
  return out;
}

/** Groups speaker-tagged words (time-ordered) into segments with stable ids seg-0001, seg-0002, … */
export function buildSegments(words: readonly SpeakerWord[], opts: SegmentOptions = {}): Segment[] {
  const maxPause = opts.maxPauseSeconds ?? 1;
  const maxLength = opts.maxSegmentSeconds ?? 30;
  const segments: Segment[] = [];
  let current: { speaker: string; words: Word[] } | undefined;
  const flush = (): void => {
    if (!current || current.words.length === 0) return;
    const ws = current.words;
    segments.push({
      id: segmentId(segments.length + 1),
      speaker: current.speaker,
      start: ws[0]!.start,
      end: Math.max(...ws.map((w) => w.end)),
      text: ws.map((w) => w.w).join(' '),
      words: ws,
    });
  };
  for (const { speaker, ...word } of words) {
    const last = current?.words.at(-1);
    const startsNew =
      !current ||
      !last ||
      current.speaker !== speaker ||
      word.start - last.end > maxPause ||
      word.end - current.words[0]!.start > maxLength;
    if (startsNew) {
      flush();
      current = { speaker, words: [] };
    }
    current!.words.push(word);
  }
  flush();
  return segments;
}

export function segmentId(n: number): string {
  return `seg-${String(n).padStart(4, '0')}`;
}

/** Speaker labels in natural order (S2 before S10). */
export function sortSpeakers(labels: Iterable<string>): string[] {
  return [...new Set(labels)].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}
