import { describe, expect, it } from 'vitest';
import { compile } from './recording-search.service.js';
import { documentTerms, queryTerms } from './search-tokens.js';
import { mulberry32 } from '../../../scripts/prng.js';

/**
 * The index's one rule (search-tokens.ts): whenever the matcher finds a query in a recording, the
 * recording's terms hold every term of the query. Checked on random texts (accents, several
 * scripts, punctuation, short and long words) against random queries cut from them the way users
 * type: word starts, several words, phrases whose last word is cut short.
 */
const WORDS = [
  'the',
  'of',
  'a',
  'to',
  'is',
  'budget',
  'Budgets',
  'quarterly',
  'meeting',
  'Crème',
  'brûlée',
  'Zoë',
  'straße',
  'Ελλάδα',
  '東京都',
  'naïve',
  'x',
  'internationalisation',
  'co-operate',
  "don't",
  'İstanbul',
  'ﬁnance',
  'e\u0301te\u0301',
  '42',
  'R2-D2',
];

/** Deterministic pseudo-random numbers, so every run builds the same cases. */
const rng = mulberry32;

describe('search tokens', () => {
  it('a match always holds every query term (no false negatives)', () => {
    const r = rng(1);
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
    let checked = 0;
    for (let doc = 0; doc < 300; doc++) {
      const sentence = () =>
        Array.from({ length: 3 + Math.floor(r() * 10) }, () => pick(WORDS)).join(
          pick([' ', ', ', ' — ', '. ']),
        );
      const title = r() < 0.5 ? sentence() : '';
      const segments = Array.from({ length: 1 + Math.floor(r() * 4) }, (_, i) => ({
        id: `s${i}`,
        start: i,
        text: sentence(),
      }));
      const terms = documentTerms(
        title,
        segments.map((s) => s.text),
      );
      for (let q = 0; q < 20; q++) {
        // Cut a query out of the text: a run of words, its last word maybe shortened.
        const source = pick([title, ...segments.map((s) => s.text)].filter(Boolean));
        const words = source.split(/\s+/);
        const from = Math.floor(r() * words.length);
        const run = words.slice(from, from + 1 + Math.floor(r() * 3));
        const last = run.at(-1)!;
        run[run.length - 1] = last.slice(0, Math.max(1, Math.floor(r() * (last.length + 1))));
        const text = run.join(' ');
        const query = r() < 0.5 ? `"${text}"` : text;
        const matcher = compile(query);
        const wanted = queryTerms(query);
        if (!matcher || !wanted) continue;
        if (!matcher(title, segments)) continue;
        checked++;
        for (const term of wanted) expect(terms.has(term), `${query} → ${JSON.stringify(term)}`).toBe(true);
      }
    }
    expect(checked).toBeGreaterThan(2000);
  });

  it('narrows phrases of short words, and leaves only unquoted short words to the scan', () => {
    expect(queryTerms('"of the"')!.length).toBeGreaterThan(0);
    expect(queryTerms('"budget of"')!.length).toBeGreaterThan(0);
    expect(queryTerms('of to')).toEqual([]);
    expect(queryTerms('   ')).toBeUndefined();
    expect(queryTerms('!!!')).toBeUndefined();
  });
});
