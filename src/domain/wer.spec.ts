import { describe, expect, it } from 'vitest';
import { normaliseWords, wordErrorRate } from './wer.js';

describe('normaliseWords', () => {
  it('lowercases, drops punctuation and apostrophes, splits on hyphens', () => {
    expect(normaliseWords("Hello, David! I'd like a follow-up — today.")).toEqual([
      'hello',
      'david',
      'id',
      'like',
      'a',
      'follow',
      'up',
      'today',
    ]);
  });

  it('keeps letters of other scripts and digits', () => {
    expect(normaliseWords('Größe: 10 Äpfel, café')).toEqual(['größe', '10', 'äpfel', 'café']);
  });

  it('does not turn numbers into words (out of scope)', () => {
    expect(wordErrorRate('ten', '10').substitutions).toBe(1);
  });
});

describe('wordErrorRate', () => {
  it('is zero for the same words whatever the case and punctuation', () => {
    const r = wordErrorRate('Thank you, Sarah. Does that work?', 'thank you sarah does that work');
    expect(r).toMatchObject({ wer: 0, substitutions: 0, deletions: 0, insertions: 0, hits: 6 });
  });

  it('counts one substitution', () => {
    const r = wordErrorRate('the cat sat', 'the bat sat');
    expect(r).toMatchObject({ substitutions: 1, deletions: 0, insertions: 0, hits: 2, referenceWords: 3 });
    expect(r.wer).toBeCloseTo(1 / 3);
  });

  it('counts deletions and insertions separately', () => {
    expect(wordErrorRate('a b c d', 'a c d')).toMatchObject({
      deletions: 1,
      insertions: 0,
      substitutions: 0,
    });
    expect(wordErrorRate('a b c', 'a b x c')).toMatchObject({
      deletions: 0,
      insertions: 1,
      substitutions: 0,
    });
  });

  it('finds the minimum alignment (a shift is one deletion plus one insertion, not n substitutions)', () => {
    const r = wordErrorRate('one two three four five', 'two three four five six');
    expect(r).toMatchObject({ deletions: 1, insertions: 1, substitutions: 0, hits: 4 });
    expect(r.wer).toBeCloseTo(0.4);
  });

  it('an empty hypothesis deletes every word; a long one can exceed 1', () => {
    expect(wordErrorRate('a b c', '')).toMatchObject({ wer: 1, deletions: 3 });
    expect(wordErrorRate('a', 'x y z').wer).toBe(3);
  });

  it('accepts word arrays (engine output) and normalises each word', () => {
    expect(wordErrorRate(['Hello,', 'World.'], ['hello', 'world']).wer).toBe(0);
  });

  it('refuses an empty reference: the rate is undefined', () => {
    expect(() => wordErrorRate(' ... ', 'a')).toThrow(RangeError);
  });

  it('S + D + I equals the plain Levenshtein distance on random inputs', () => {
    const levenshtein = (a: string[], b: string[]): number => {
      const m = Array.from({ length: a.length + 1 }, (_, i) =>
        Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
      );
      for (let i = 1; i <= a.length; i++)
        for (let j = 1; j <= b.length; j++)
          m[i]![j] = Math.min(
            m[i - 1]![j]! + 1,
            m[i]![j - 1]! + 1,
            m[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
          );
      return m[a.length]![b.length]!;
    };
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const vocab = ['a', 'b', 'c', 'd'];
    for (let n = 0; n < 200; n++) {
      const ref = Array.from({ length: 1 + Math.floor(rand() * 8) }, () => vocab[Math.floor(rand() * 4)]!);
      const hyp = Array.from({ length: Math.floor(rand() * 8) }, () => vocab[Math.floor(rand() * 4)]!);
      const r = wordErrorRate(ref, hyp);
      expect(r.substitutions + r.deletions + r.insertions).toBe(levenshtein(ref, hyp));
      expect(r.hits + r.substitutions + r.deletions).toBe(ref.length);
      expect(r.hits + r.substitutions + r.insertions).toBe(hyp.length);
    }
  });
});
