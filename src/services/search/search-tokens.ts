import { createHmac } from 'node:crypto';

/**
 * Tokenisation of the encrypted search index (docs/search.md). Pure: text in, keyed tokens out.
 *
 * The index is a *candidate filter*, never the answer: search decrypts every candidate and
 * confirms it with the same matcher the scan uses, so the tokens only have to satisfy one rule —
 * a recording that matches a query must hold every token of that query (no false negatives).
 * False positives (32-bit truncation, a prefix longer than MAX_PREFIX, a pair that is not the
 * phrase) cost one decryption and are dropped by the confirmation.
 *
 * Matching is on folded text (foldFast: NFKD, marks removed, lower case, non-letters/digits as
 * spaces), a query word matching the *start* of a word, a phrase being adjacent words in one
 * segment (or the title) with its last word again a word start. Hence two kinds of terms:
 *   - `p`: every prefix of 3..MAX_PREFIX characters of every word (a whole word is its own
 *     prefix), for all-words queries and each word of a phrase;
 *   - `b`: each pair of adjacent words as (first word, first 3 characters of the second) and as
 *     (first word, first character of the second), so a phrase's pairs — whose last word may be
 *     only a prefix, even of one or two characters — are found without storing every prefix of
 *     every pair.
 *   - `s`: the folded display name of each speaker of a segment (scheme 2), so `speaker=` narrows
 *     to recordings where that speaker speaks; the word tokens are not tied to a speaker (that
 *     would multiply the row), so "this speaker said it" is left to the confirmation.
 * Query words shorter than 3 characters add no token (their prefixes would be in nearly every
 * recording); a query with no token at all falls back to the scan.
 */
export const SEARCH_SCHEME = 2;
export const MIN_PREFIX = 3;
export const MAX_PREFIX = 10;
/** Characters of the second word kept in a pair term: a long head, and a short one for short prefixes. */
const PAIR_HEAD = 3;
const PAIR_HEAD_SHORT = 1;

/** The folding of the search matcher, on a whole string at once (leading space kept). */
export function foldFast(text: string): string {
  return ` ${text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')}`;
}

/** A query as the matcher reads it: a phrase when it is in double quotes, its folded words. */
export function parseQuery(q: string): { phrase: boolean; words: string[] } {
  const trimmed = q.trim();
  const phrase = trimmed.length > 2 && trimmed.startsWith('"') && trimmed.endsWith('"');
  const words = foldFast(phrase ? trimmed.slice(1, -1) : trimmed)
    .split(' ')
    .filter(Boolean);
  return { phrase, words };
}

/**
 * A speaker's display name as the filter compares it: folded like the text, words joined by one
 * space ("  Zoë  O'Brien " and "zoe o brien" are the same speaker); empty when it has no letter
 * or digit.
 */
export function speakerKey(name: string): string {
  return foldFast(name).split(' ').filter(Boolean).join(' ');
}

export const speakerTerm = (name: string): string => `s\u0000${speakerKey(name)}`;
const prefixTerm = (w: string): string => `p\u0000${w.slice(0, MAX_PREFIX)}`;
const pairTerm = (a: string, b: string, head = PAIR_HEAD): string => `b\u0000${a}\u0000${b.slice(0, head)}`;

/**
 * The terms of a recording: its title and each segment, pairs never crossing a segment, and the
 * display names of the segments' speakers.
 */
export function documentTerms(
  title: string,
  texts: Iterable<string>,
  speakers: Iterable<string> = [],
): Set<string> {
  const terms = new Set<string>();
  const add = (text: string) => {
    const words = foldFast(text).split(' ').filter(Boolean);
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      for (let k = MIN_PREFIX; k <= Math.min(w.length, MAX_PREFIX); k++) terms.add(prefixTerm(w.slice(0, k)));
      const next = words[i + 1];
      if (next !== undefined) {
        terms.add(pairTerm(w, next));
        terms.add(pairTerm(w, next, PAIR_HEAD_SHORT));
      }
    }
  };
  add(title);
  for (const t of texts) add(t);
  for (const name of speakers) if (speakerKey(name)) terms.add(speakerTerm(name));
  return terms;
}

/**
 * The terms every match of `q` must hold; empty when the query has words but none narrow it
 * (all shorter than 3 characters), undefined when it has no searchable word at all.
 */
export function queryTerms(q: string): string[] | undefined {
  const { phrase, words } = parseQuery(q);
  if (words.length === 0) return undefined;
  const terms = new Set<string>();
  for (const w of words) if (w.length >= MIN_PREFIX) terms.add(prefixTerm(w));
  if (phrase)
    for (let i = 0; i + 1 < words.length; i++) {
      const next = words[i + 1]!;
      // Inside the phrase the next word is whole; the last one may be a prefix of the stored
      // word, which matches a pair's head only when it is at least that long.
      const whole = i + 2 < words.length;
      terms.add(pairTerm(words[i]!, next, whole || next.length >= PAIR_HEAD ? PAIR_HEAD : PAIR_HEAD_SHORT));
    }
  return [...terms];
}

/** Keyed token of a term: HMAC-SHA256 under the org's index key, first 32 bits as a signed int. */
export function tokenOf(key: Buffer, term: string): number {
  return createHmac('sha256', key).update(term, 'utf8').digest().readInt32BE(0);
}

export function tokensOf(key: Buffer, terms: Iterable<string>): number[] {
  const out = new Set<number>();
  for (const t of terms) out.add(tokenOf(key, t));
  // Sorted: the stored array does not keep the order terms were met in (which would follow the text).
  return [...out].sort((a, b) => a - b);
}
