import { useId } from 'react';

/** One occurrence of the find text: segment index, and UTF-16 offsets in the segment's text. */
export interface Match {
  seg: number;
  from: number;
  to: number;
}

/**
 * Lower case without accents ("Zèbra" → "zebra", as the server's search folds them) that keeps
 * every offset where it was: a character whose folded form is longer stays as it is.
 */
function lowerSameLength(text: string): string {
  let out = '';
  for (const c of text) {
    const l = c.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
    out += l.length === c.length ? l : c.toLowerCase().length === c.length ? c.toLowerCase() : c;
  }
  return out;
}

/** Every case- and accent-insensitive occurrence of `query` in the segments' texts, in reading order. */
export function findMatches(segments: readonly { text: string }[], query: string): Match[] {
  const needle = lowerSameLength(query.trim());
  if (!needle) return [];
  const out: Match[] = [];
  segments.forEach((s, seg) => {
    const hay = lowerSameLength(s.text);
    for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + needle.length))
      out.push({ seg, from: at, to: at + needle.length });
  });
  return out;
}

/**
 * Find in transcript: the text, "3 of 12", previous/next. Enter goes to the next match,
 * Shift+Enter to the previous, Escape clears. The count is announced politely as it changes.
 */
export function FindBar({
  query,
  onQuery,
  count,
  current,
  onMove,
}: {
  query: string;
  onQuery: (q: string) => void;
  count: number;
  /** Index of the current match, or -1. */
  current: number;
  onMove: (delta: 1 | -1) => void;
}) {
  const id = useId();
  const status = !query.trim()
    ? ''
    : count === 0
      ? 'No matches'
      : `${current + 1} of ${count} match${count === 1 ? '' : 'es'}`;
  return (
    <div className="find-bar" role="search" aria-label="Search this transcript">
      <label htmlFor={`${id}-find`}>Find in transcript</label>
      <div className="inline">
        <input
          id={`${id}-find`}
          type="search"
          value={query}
          maxLength={200}
          aria-describedby={`${id}-count`}
          onChange={(e) => onQuery(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              if (count > 0) onMove(e.shiftKey ? -1 : 1);
            } else if (e.key === 'Escape' && query) {
              e.preventDefault();
              onQuery('');
            }
          }}
        />
        <button type="button" onClick={() => onMove(-1)} disabled={count === 0} aria-label="Previous match">
          ↑
        </button>
        <button type="button" onClick={() => onMove(1)} disabled={count === 0} aria-label="Next match">
          ↓
        </button>
        <span id={`${id}-count`} className="find-count meta" aria-live="polite">
          {status}
        </span>
      </div>
    </div>
  );
}
