import { createElement, type ReactNode } from 'react';

/**
 * A search hit opens its recording at the moment it was said, with the searched words marked.
 * The time travels in the address's fragment (`#t=12.5`: never sent to the server, and it
 * survives a reload); the words stay in memory only (searched words can be confidential, so they
 * go into no URL, history entry or storage), handed from the list to the recording page once.
 */
let pending: { recordingId: string; q: string } | null = null;

export function hitHref(recordingId: string, start: number): string {
  return `/recordings/${recordingId}#t=${Math.max(0, start).toFixed(2)}`;
}

/** Called as a hit's link is followed. */
export function rememberHitQuery(recordingId: string, q: string): void {
  pending = { recordingId, q };
}

/** The recording page's start: the hit's time from the address, and the words once. */
export function takeHit(recordingId: string): { at: number | null; q: string } {
  const m = /^#t=(\d{1,6}(?:\.\d{1,3})?)$/.exec(location.hash);
  const at = m ? Number(m[1]) : null;
  // Find in transcript looks for one text: the search's first word or quoted phrase.
  const q = pending?.recordingId === recordingId ? (searchTerms(pending.q)[0] ?? '') : '';
  pending = null;
  return { at, q };
}

/** The words of a search as the server reads them: each word, or a "quoted phrase" whole. */
export function searchTerms(q: string): string[] {
  const terms: string[] = [];
  for (const m of q.matchAll(/"([^"]+)"|(\S+)/g)) {
    const t = (m[1] ?? m[2] ?? '').trim();
    if (t) terms.push(t);
  }
  return terms;
}

/** Lower case without accents, one output character per input character where possible. */
const fold = (c: string) => c.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

/**
 * `text` with every occurrence of the terms in <mark>, matched like the server's search
 * (case- and accent-insensitive).
 */
export function markTerms(text: string, terms: string[]): ReactNode[] {
  if (terms.length === 0) return [text];
  // Fold character by character, keeping where each folded character came from.
  let folded = '';
  const from: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const f = fold(text[i]!);
    for (let k = 0; k < f.length; k++) from.push(i);
    folded += f;
  }
  const ranges: [number, number][] = [];
  for (const term of terms.map((t) => [...t].map(fold).join('')).filter(Boolean)) {
    for (let at = folded.indexOf(term); at >= 0; at = folded.indexOf(term, at + term.length))
      ranges.push([from[at]!, from[at + term.length - 1]! + 1]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const out: ReactNode[] = [];
  let pos = 0;
  for (const [s, e] of ranges) {
    if (s < pos) continue;
    if (s > pos) out.push(text.slice(pos, s));
    out.push(createElement('mark', { key: s }, text.slice(s, e)));
    pos = e;
  }
  if (pos < text.length) out.push(text.slice(pos));
  return out;
}
