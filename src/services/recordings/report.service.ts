import { normaliseWords } from '../../domain/wer.js';
import type { Segment } from '../../domain/transcript.js';

/**
 * Conversation statistics from a finished transcript (pure: no storage, no I/O).
 *
 * Definitions:
 * - speech: the union of the segments' spans; silence is the rest of the recording.
 * - a turn: a maximal run of time-ordered segments by the same speaker (a pause inside one
 *   speaker's talk does not make a new turn; someone else speaking does).
 * - talk time: the sum of a speaker's segment spans; share = talk time / all talk time.
 * - longest monologue: the longest turn (first word to last word).
 * - overlap: a segment that starts while another speaker's segment is still running.
 *   interruption: an overlap where the earlier speaker still had ≥ 0.5 s left and their
 *   segment continued past the takeover (they were cut into, not just finishing a word).
 * - top keywords: normalised words (see domain/wer.ts), not in a small English stop-word list,
 *   at least 3 letters, by count.
 */
export interface SpeakerStats {
  speaker: string;
  talkSeconds: number;
  share: number;
  turns: number;
  words: number;
  wordsPerMinute: number;
  longestMonologueSeconds: number;
}

export interface TranscriptReport {
  durationSeconds: number;
  speechSeconds: number;
  silenceSeconds: number;
  speakers: SpeakerStats[];
  turns: number;
  overlaps: number;
  interruptions: number;
  topKeywords: { word: string; count: number }[];
}

export interface ReportInput {
  durationSeconds: number;
  speakers?: string[];
  segments: readonly Segment[];
}

const TOP_KEYWORDS = 10;
const INTERRUPT_REMAINING_SECONDS = 0.5;

// Function words and fillers that would otherwise top every list. Small on purpose.
export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a about above after again against all also am an and any are as at be because been before being ' +
    'below between both but by can could did do does doing down during each few for from further get ' +
    'got had has have having he her here hers herself him himself his how i if in into is it its ' +
    'itself just let like me more most my myself no nor not now of off on once only or other our ours ' +
    'ourselves out over own same she should so some such than that the their theirs them themselves ' +
    'then there these they this those through to too under until up us very was we were what when ' +
    'where which while who whom why will with would yes yeah you your yours yourself yourselves ' +
    'im youre thats dont okay ok oh um uh hmm well really one two'
  ).split(/\s+/),
);

export function buildReport(result: ReportInput): TranscriptReport {
  const segments = [...result.segments].sort((a, b) => a.start - b.start || a.end - b.end);
  const duration = Math.max(0, result.durationSeconds);
  const speech = Math.min(duration || Infinity, unionSeconds(segments));

  interface Acc {
    talk: number;
    turns: number;
    words: number;
    longest: number;
  }
  const acc = new Map<string, Acc>();
  for (const s of result.speakers ?? []) acc.set(s, { talk: 0, turns: 0, words: 0, longest: 0 });
  const of = (speaker: string): Acc => {
    let a = acc.get(speaker);
    if (!a) acc.set(speaker, (a = { talk: 0, turns: 0, words: 0, longest: 0 }));
    return a;
  };

  let turns = 0;
  let turn: { speaker: string; start: number; end: number } | undefined;
  const closeTurn = (): void => {
    if (!turn) return;
    const a = of(turn.speaker);
    a.longest = Math.max(a.longest, turn.end - turn.start);
  };
  for (const seg of segments) {
    const a = of(seg.speaker);
    a.talk += Math.max(0, seg.end - seg.start);
    a.words += seg.words.length;
    if (turn?.speaker === seg.speaker) {
      turn.end = Math.max(turn.end, seg.end);
      continue;
    }
    closeTurn();
    turn = { speaker: seg.speaker, start: seg.start, end: seg.end };
    turns++;
    a.turns++;
  }
  closeTurn();

  let overlaps = 0;
  let interruptions = 0;
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    // The other speakers' segments still running when this one starts.
    for (let j = i - 1; j >= 0; j--) {
      const prev = segments[j]!;
      if (prev.speaker === seg.speaker || prev.end <= seg.start) continue;
      overlaps++;
      if (prev.end - seg.start >= INTERRUPT_REMAINING_SECONDS) interruptions++;
      break;
    }
  }

  const totalTalk = [...acc.values()].reduce((s, a) => s + a.talk, 0);
  const speakers: SpeakerStats[] = [...acc.entries()].map(([speaker, a]) => ({
    speaker,
    talkSeconds: round2(a.talk),
    share: totalTalk > 0 ? round4(a.talk / totalTalk) : 0,
    turns: a.turns,
    words: a.words,
    wordsPerMinute: a.talk > 0 ? round2(a.words / (a.talk / 60)) : 0,
    longestMonologueSeconds: round2(a.longest),
  }));

  return {
    durationSeconds: round2(duration),
    speechSeconds: round2(speech),
    silenceSeconds: round2(Math.max(0, duration - speech)),
    speakers,
    turns,
    overlaps,
    interruptions,
    topKeywords: topKeywords(segments),
  };
}

function topKeywords(segments: readonly Segment[]): { word: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const seg of segments) {
    for (const word of seg.words.flatMap((w) => normaliseWords(w.w))) {
      if (word.length < 3 || STOP_WORDS.has(word) || /^\d+$/.test(word)) continue;
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, TOP_KEYWORDS)
    .map(([word, count]) => ({ word, count }));
}

/** Seconds covered by at least one segment (segments sorted by start). */
function unionSeconds(segments: readonly Segment[]): number {
  let total = 0;
  let open: { start: number; end: number } | undefined;
  for (const s of segments) {
    if (open && s.start <= open.end) open.end = Math.max(open.end, s.end);
    else {
      if (open) total += open.end - open.start;
      open = { start: s.start, end: s.end };
    }
  }
  if (open) total += open.end - open.start;
  return total;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
