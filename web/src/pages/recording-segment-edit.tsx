import { useEffect, useRef, useState } from 'react';
import { sessionUserId } from '../api';
import type { TimedSegment } from '../api-recordings';
import { clock } from '../format';
import { keepDraft } from './edit-drafts';
import type { EditFn, TranscriptPatch } from './recording-speakers';

/** One line, single spaces: what the server stores (transcript.service.ts cleanText). */
const clean = (text: string) => text.normalize('NFC').replace(/\s+/g, ' ').trim();

/**
 * Where a split at the caret falls in the text the server will store: the space nearest to the
 * caret (a caret inside a word moves to the closer edge), as an offset in the cleaned text.
 * Null when there is no space with a word on each side.
 */
export function splitPoint(value: string, caret: number): number | null {
  let best = -1;
  for (let i = 0; i < value.length; i++)
    if (/\s/.test(value[i]!) && (best < 0 || Math.abs(i - caret) < Math.abs(best - caret))) best = i;
  if (best < 0) return null;
  const left = clean(value.slice(0, best));
  const right = clean(value.slice(best));
  return left && right ? left.length : null;
}

/**
 * The edit form of one segment: its text, its speaker, merge with the next segment (same
 * speaker only, as the server requires) and split at the caret. Ctrl+Enter (⌘+Enter) saves,
 * Escape cancels. Every keystroke is kept as a draft (edit-drafts.ts) with the revision it
 * started from.
 */
export function SegmentEditor({
  recordingId,
  s,
  revision,
  speakers,
  canMerge,
  initial,
  onEdit,
  onDone,
}: {
  recordingId: string;
  s: TimedSegment;
  revision: number;
  speakers: { id: string; name: string }[];
  /** The next segment exists and has the same speaker. */
  canMerge: boolean;
  initial: string;
  onEdit: EditFn;
  onDone: () => void;
}) {
  const [value, setValue] = useState(initial);
  const [speaker, setSpeaker] = useState(s.speaker);
  const [problem, setProblem] = useState<string | null>(null);
  // The save did not reach the server: the text stays here and is sent again when the browser
  // says it is back online (and every 10 s meanwhile, as `online` only means "a network").
  const [offline, setOffline] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);
  const sending = useRef(false);
  const lastOps = useRef<TranscriptPatch['ops']>([]);
  const id = `seg-${s.id}`;

  /** The text and speaker corrections plus `ops`, as one PATCH. */
  const save = (ops: TranscriptPatch['ops'] = []) => {
    const change: { id: string; text?: string; speaker?: string } = { id: s.id };
    if (value !== s.text) change.text = value;
    if (speaker !== s.speaker) change.speaker = speaker;
    const body: TranscriptPatch = {};
    if (change.text !== undefined || change.speaker !== undefined) body.segments = [change];
    if (ops.length) body.ops = ops;
    if (!body.segments && !body.ops) return onDone();
    if (sending.current) return;
    sending.current = true;
    lastOps.current = ops;
    void onEdit(body)
      .then((r) => {
        setOffline(!r.ok && r.offline);
        if (r.ok) onDone();
        else setProblem(r.error);
      })
      .finally(() => {
        sending.current = false;
      });
  };
  const retry = useRef(save);
  useEffect(() => {
    retry.current = save;
  });

  useEffect(() => {
    if (!offline) return;
    const again = () => retry.current(lastOps.current);
    window.addEventListener('online', again);
    const timer = setInterval(again, 10_000);
    return () => {
      window.removeEventListener('online', again);
      clearInterval(timer);
    };
  }, [offline]);

  const split = () => {
    const at = splitPoint(value, area.current?.selectionStart ?? value.length);
    if (at === null) {
      setProblem('Put the cursor between two words to split there.');
      return;
    }
    save([{ op: 'split', id: s.id, at }]);
  };

  return (
    <form
      className="segment-edit"
      onSubmit={(e) => {
        e.preventDefault();
        save();
      }}
    >
      <label htmlFor={id} className="visually-hidden">
        Text of the segment at {clock(s.start)}
      </label>
      <textarea
        id={id}
        ref={area}
        value={value}
        rows={3}
        autoFocus
        aria-describedby={problem ? `${id}-keys ${id}-problem` : `${id}-keys`}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            save();
          } else if (e.key === 'Escape') {
            e.preventDefault();
            onDone();
          }
        }}
        onChange={(e) => {
          setValue(e.target.value);
          setProblem(null);
          keepDraft(recordingId, s.id, e.target.value, { owner: sessionUserId(), revision, text: s.text });
        }}
      />
      <div className="segment-edit-tools">
        {speakers.length > 1 && (
          <>
            <label htmlFor={`${id}-speaker`}>Speaker</label>
            <select id={`${id}-speaker`} value={speaker} onChange={(e) => setSpeaker(e.target.value)}>
              {speakers.map((sp) => (
                <option key={sp.id} value={sp.id}>
                  {sp.name}
                </option>
              ))}
            </select>
          </>
        )}
        <button type="submit" className="primary">
          Save
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
        <button type="button" onClick={split}>
          Split at cursor
        </button>
        {canMerge && (
          <button type="button" onClick={() => save([{ op: 'merge', id: s.id }])}>
            Merge with next
          </button>
        )}
      </div>
      <p className="hint" id={`${id}-keys`}>
        Ctrl+Enter saves, Escape cancels.
      </p>
      {problem && (
        <p className="error-inline" role="alert" id={`${id}-problem`}>
          {problem}
        </p>
      )}
    </form>
  );
}

/**
 * A draft restored after someone else saved a different text for the segment: both versions,
 * and the choice. Keeping the draft re-bases it on the saved version (its Save then replaces
 * that version knowingly); discarding it drops the draft.
 */
export function DraftConflict({
  start,
  saved,
  draft,
  onKeep,
  onDiscard,
}: {
  start: number;
  saved: string;
  draft: string;
  onKeep: () => void;
  onDiscard: () => void;
}) {
  return (
    <div
      className="draft-conflict"
      role="group"
      aria-label={`Unsaved edit of the segment at ${clock(start)}`}
    >
      <p className="error-inline" role="alert">
        This segment was changed since your unsaved edit. Choose which version to keep.
      </p>
      <div className="draft-versions">
        <figure>
          <figcaption>Saved version</figcaption>
          <blockquote className="draft-saved">{saved}</blockquote>
        </figure>
        <figure>
          <figcaption>Your unsaved edit</figcaption>
          <blockquote className="draft-mine">{draft}</blockquote>
        </figure>
      </div>
      <button type="button" className="primary" onClick={onKeep}>
        Keep my edit
      </button>
      <button type="button" onClick={onDiscard}>
        Use the saved version
      </button>
    </div>
  );
}
