import { memo, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { sessionUserId } from '../api';
import type { TimedSegment } from '../api-recordings';
import { clock } from '../format';
import { draftConflicts, dropDraft, readDraft, rebaseDraft } from './edit-drafts';
import { DraftConflict, SegmentEditor } from './recording-segment-edit';
import type { EditFn } from './recording-speakers';

/** A find match inside one segment: offsets in its text, and its index among all matches. */
export interface SegmentMatch {
  from: number;
  to: number;
  idx: number;
}

interface WordRange {
  from: number;
  to: number;
  start: number;
  /** Index in the segment's words (what the played-word highlight refers to). */
  wi: number;
}

/**
 * Where each timed word sits in the segment's text, found left to right (case-insensitive). The
 * text is what is shown, never rebuilt from the words: punctuation and casing stay as stored.
 * A word that cannot be found (should not happen: edits re-time words to the new text) is
 * simply not clickable.
 */
function wordRanges(s: TimedSegment): WordRange[] {
  const hay = s.text.toLowerCase();
  const out: WordRange[] = [];
  let cursor = 0;
  for (const [wi, w] of s.words.entries()) {
    const needle = w.w.toLowerCase();
    if (!needle) continue;
    const at = hay.indexOf(needle, cursor);
    if (at < 0 || hay.length !== s.text.length) continue;
    out.push({ from: at, to: at + needle.length, start: w.start, wi });
    cursor = at + needle.length;
  }
  return out;
}

/** The text cut at word and match edges: words become spans, matches <mark>s. */
function renderText(
  text: string,
  words: WordRange[],
  marks: SegmentMatch[],
  current: number,
  activeWord: number,
  onWord: ((start: number) => void) | null,
): ReactNode[] {
  const cuts = new Set([0, text.length]);
  for (const r of [...words, ...marks]) {
    cuts.add(Math.max(0, Math.min(text.length, r.from)));
    cuts.add(Math.max(0, Math.min(text.length, r.to)));
  }
  const edges = [...cuts].sort((a, b) => a - b);
  const out: ReactNode[] = [];
  let group: { wi: number; parts: ReactNode[] } | null = null;
  const flush = () => {
    if (!group) return;
    const wi = group.wi;
    const w = words[wi]!;
    out.push(
      <span
        key={`w${wi}`}
        className={`word${w.wi === activeWord ? ' playing' : ''}${onWord ? ' playable' : ''}`}
        aria-current={w.wi === activeWord ? 'true' : undefined}
        data-start={w.start}
        title={onWord ? `Play from ${clock(w.start)}` : undefined}
        onClick={onWord ? () => onWord(w.start) : undefined}
      >
        {group.parts}
      </span>,
    );
    group = null;
  };
  for (let i = 0; i + 1 < edges.length; i++) {
    const a = edges[i]!;
    const b = edges[i + 1]!;
    const piece = text.slice(a, b);
    const mark = marks.find((m) => m.from <= a && a < m.to);
    const node = mark ? (
      <mark key={`m${a}`} data-match={mark.idx} className={mark.idx === current ? 'current' : undefined}>
        {piece}
      </mark>
    ) : (
      <span key={`t${a}`}>{piece}</span>
    );
    const wi = words.findIndex((w) => w.from <= a && a < w.to);
    if (wi < 0) {
      flush();
      out.push(node);
    } else {
      if (group && group.wi !== wi) flush();
      group ??= { wi, parts: [] };
      group.parts.push(node);
    }
  }
  flush();
  return out;
}

/**
 * One segment: time (a "play from here" button when audio is kept), speaker (in its colour, the
 * same as in the report's charts), text with clickable words, find highlights, the word being
 * played (followed on screen), and the edit form (current version only). Memoised: while audio
 * plays only the segment holding the played word re-renders.
 */
export const SegmentRow = memo(function SegmentRow({
  recordingId,
  s,
  speaker,
  colour,
  speakers,
  revision,
  canMerge,
  onEdit,
  onPlay,
  marks,
  current,
  activeWord,
}: {
  recordingId: string;
  s: TimedSegment;
  speaker: string;
  colour: number;
  speakers: { id: string; name: string }[];
  revision: number;
  canMerge: boolean;
  onEdit: EditFn | null;
  onPlay: ((start: number) => void) | null;
  marks: SegmentMatch[];
  current: number;
  activeWord: number;
}) {
  // An edit typed before the session ended reopens as it was (see edit-drafts.ts) — or, when
  // someone saved another text for this segment meanwhile, as a conflict to resolve.
  const [draft, setDraft] = useState(() => (onEdit ? readDraft(recordingId, s.id, sessionUserId()) : null));
  const [conflict, setConflict] = useState(() => draft !== null && draftConflicts(draft, revision, s.text));
  const [editing, setEditing] = useState(draft !== null);
  const stopEditing = () => {
    dropDraft(recordingId, s.id);
    setDraft(null);
    setConflict(false);
    setEditing(false);
  };
  const words = useMemo(() => wordRanges(s), [s]);
  const item = useRef<HTMLLIElement>(null);

  // Follow the played word: bring it on screen when it leaves it (above the sticky audio bar),
  // unless the person is typing somewhere.
  useEffect(() => {
    if (activeWord < 0) return;
    const el = item.current?.querySelector('.word.playing');
    const active = document.activeElement;
    if (!el || active instanceof HTMLTextAreaElement) return;
    const r = el.getBoundingClientRect();
    const bar = document.querySelector('.player')?.getBoundingClientRect().height ?? 0;
    if (r.top < 0 || r.bottom > window.innerHeight - bar) el.scrollIntoView({ block: 'center' });
  }, [activeWord]);

  const body = (() => {
    if (!onEdit || !editing)
      return (
        <p className="segment-text">
          {renderText(s.text, words, marks, current, activeWord, onPlay)}{' '}
          {onEdit && (
            <button
              type="button"
              className="link small"
              onClick={() => setEditing(true)}
              aria-label={`Edit the segment at ${clock(s.start)}`}
            >
              Edit
            </button>
          )}
        </p>
      );
    if (conflict && draft)
      return (
        <DraftConflict
          start={s.start}
          saved={s.text}
          draft={draft.text}
          onKeep={() => {
            const owner = sessionUserId();
            if (owner) rebaseDraft(recordingId, s.id, { owner, revision, text: s.text });
            setConflict(false);
          }}
          onDiscard={stopEditing}
        />
      );
    return (
      <SegmentEditor
        recordingId={recordingId}
        s={s}
        revision={revision}
        speakers={speakers}
        canMerge={canMerge}
        initial={draft?.text ?? s.text}
        onEdit={onEdit}
        onDone={stopEditing}
      />
    );
  })();

  return (
    <li ref={item} className={`segment${activeWord >= 0 ? ' segment-playing' : ''}`}>
      <div className="segment-head">
        {onPlay ? (
          <button
            type="button"
            className="time link"
            onClick={() => onPlay(s.start)}
            aria-label={`Play from ${clock(s.start)}`}
          >
            {clock(s.start)}
          </button>
        ) : (
          <span className="time">{clock(s.start)}</span>
        )}
        <span className={`segment-speaker spk spk-${colour}`}>{speaker}</span>
        {s.edited && <span className="badge">edited</span>}
      </div>
      {body}
    </li>
  );
});

/** Segment and word index playing at `t` (seconds), or null between words. */
export function wordAt(segments: readonly TimedSegment[], t: number): { seg: number; word: number } | null {
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (t < s.start || t > s.end + 0.25) continue;
    const wi = s.words.findIndex((w) => w.start <= t && t < Math.max(w.end, w.start + 0.1));
    if (wi >= 0) return { seg: i, word: wi };
  }
  return null;
}
