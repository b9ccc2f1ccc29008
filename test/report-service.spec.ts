/**
 * Conversation report rules on hand-made transcripts where every number can be worked out by
 * hand (the corpus checks live in pipeline-corpus.spec.ts).
 */
import { describe, expect, it } from 'vitest';
import type { Segment } from '../src/domain/transcript.js';
import { buildReport, STOP_WORDS } from '../src/services/recordings/report.service.js';

let n = 0;
function seg(speaker: string, start: number, end: number, text: string): Segment {
  const tokens = text.split(' ');
  const step = (end - start) / tokens.length;
  return {
    id: `seg-${String(++n).padStart(4, '0')}`,
    speaker,
    start,
    end,
    text,
    words: tokens.map((w, i) => ({ w, start: start + i * step, end: start + (i + 1) * step, conf: 1 })),
  };
}

describe('buildReport', () => {
  it('talk time, shares, turns, monologues, words per minute, speech and silence', () => {
    const report = buildReport({
      durationSeconds: 100,
      speakers: ['S1', 'S2', 'S3'],
      segments: [
        seg('S1', 0, 10, 'budget budget review for the quarter'),
        seg('S1', 12, 20, 'the budget is late'), // same turn after a pause
        seg('S2', 21, 51, 'I think the review should wait'),
        seg('S1', 55, 65, 'fine'),
      ],
    });
    expect(report.durationSeconds).toBe(100);
    expect(report.speechSeconds).toBe(58);
    expect(report.silenceSeconds).toBe(42);
    expect(report.turns).toBe(3);
    const [s1, s2, s3] = report.speakers;
    expect(s1).toEqual({
      speaker: 'S1',
      talkSeconds: 28,
      share: 0.4828,
      turns: 2,
      words: 11,
      wordsPerMinute: 23.57,
      longestMonologueSeconds: 20,
    });
    expect(s2).toMatchObject({
      talkSeconds: 30,
      turns: 1,
      words: 6,
      wordsPerMinute: 12,
      longestMonologueSeconds: 30,
    });
    // A named speaker without speech is listed with zeros, not dropped.
    expect(s3).toEqual({
      speaker: 'S3',
      talkSeconds: 0,
      share: 0,
      turns: 0,
      words: 0,
      wordsPerMinute: 0,
      longestMonologueSeconds: 0,
    });
    expect(report.speakers.reduce((s, x) => s + x.share, 0)).toBeCloseTo(1, 3);
    expect(report.overlaps).toBe(0);
    expect(report.interruptions).toBe(0);
    expect(report.topKeywords[0]).toEqual({ word: 'budget', count: 3 });
    expect(report.topKeywords[1]).toEqual({ word: 'review', count: 2 });
    for (const k of report.topKeywords) expect(STOP_WORDS.has(k.word)).toBe(false);
  });

  it('counts overlaps, and interruptions when the other speaker had more to say', () => {
    const report = buildReport({
      durationSeconds: 30,
      segments: [
        seg('S1', 0, 10, 'a long explanation of things'),
        seg('S2', 9.8, 12, 'right'), // overlaps the last 0.2 s: an overlap, not an interruption
        seg('S1', 13, 20, 'so as I was saying'),
        seg('S2', 15, 18, 'wait no'), // cuts in with 5 s left: an interruption
      ],
    });
    expect(report.overlaps).toBe(2);
    expect(report.interruptions).toBe(1);
    expect(report.speechSeconds).toBe(19);
    expect(report.turns).toBe(4);
  });

  it('an empty transcript is all silence', () => {
    const report = buildReport({ durationSeconds: 12.5, segments: [] });
    expect(report).toEqual({
      durationSeconds: 12.5,
      speechSeconds: 0,
      silenceSeconds: 12.5,
      speakers: [],
      turns: 0,
      overlaps: 0,
      interruptions: 0,
      topKeywords: [],
    });
  });
});
