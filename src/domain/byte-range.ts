/**
 * HTTP Range (RFC 9110 §14) for one representation of known size. Only single ranges are
 * honoured: `bytes=a-b`, `bytes=a-`, `bytes=-n`. A header we do not understand, another unit, or
 * several ranges is ignored — the RFC lets a server answer such a request with the whole
 * representation (200), which every player handles; serving multipart/byteranges would buy
 * nothing for audio. Numbers are parsed as digit strings with a length cap, so huge, negative
 * or fractional values can never overflow into a wrong slice.
 */
export type ByteRange = { start: number; end: number };

/** `full`: ignore the header; `unsatisfiable`: 416; otherwise the inclusive range to send. */
export type RangeDecision = { kind: 'full' } | { kind: 'unsatisfiable' } | ({ kind: 'partial' } & ByteRange);

const SINGLE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;
// 15 digits stay below Number.MAX_SAFE_INTEGER; longer positions are beyond any file anyway.
const MAX_DIGITS = 15;

export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  if (header.length > 200) return { kind: 'full' };
  const m = SINGLE.exec(header);
  if (!m) return { kind: 'full' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'full' };
  const big = (s: string) => s.replace(/^0+(?=\d)/, '').length > MAX_DIGITS;
  if (a === '') {
    // Suffix: the last n bytes. n = 0 cannot be satisfied; n beyond the size means everything.
    const n = big(b) ? Number.MAX_SAFE_INTEGER : Number(b);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  if (big(a)) return { kind: 'unsatisfiable' };
  const start = Number(a);
  if (start >= size) return { kind: 'unsatisfiable' };
  let end = size - 1;
  if (b !== '') {
    const last = big(b) ? Number.MAX_SAFE_INTEGER : Number(b);
    // first > last is syntactically invalid: ignore the header (RFC 9110 §14.1.1).
    if (last < start) return { kind: 'full' };
    end = Math.min(last, size - 1);
  }
  return { kind: 'partial', start, end };
}
