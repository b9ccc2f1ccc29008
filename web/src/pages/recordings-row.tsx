import { useState } from 'react';
import { deleteRecording, type ListedRecording } from '../api-recordings';
import { clock, errorText, when } from '../format';
import { onLinkClick } from '../router';
import { ConfirmDialog } from './recordings-confirm';
import { hitHref, markTerms, rememberHitQuery, searchTerms } from './search-hit';

export const STATUS_TEXT: Record<ListedRecording['status'], string> = {
  live: 'Live',
  queued: 'Waiting to be transcribed',
  processing: 'Transcribing',
  done: 'Ready',
  failed: 'Failed',
};

/** What a moving job is doing (the API's `stage`), in the words the list and the recording page share. */
export const STAGE_TEXT: Record<string, string> = {
  queued: 'Waiting to be transcribed',
  decoding: 'Reading the audio',
  transcribing: 'Recognising speech',
  speakers: 'Identifying speakers',
  saving: 'Saving the transcript',
};

/** "Recognising speech · 45%" for a processing job; the status word alone otherwise. */
export function stageLine(r: Pick<ListedRecording, 'status' | 'stage' | 'progress'>): string | null {
  if (r.status !== 'processing') return null;
  const stage = r.stage ? STAGE_TEXT[r.stage] : undefined;
  return `${stage ? `${stage} · ` : ''}${Math.round(r.progress * 100)}%`;
}

/** One recording in the list: title link (live ones to their live screen), status, delete. */
export function RecordingRow({
  r,
  owner,
  query = '',
  onDeleted,
}: {
  r: ListedRecording;
  /** The owner's name, when the caller sees colleagues' recordings too. */
  owner?: string | undefined;
  /** The search that found it: its words are marked in the snippets. */
  query?: string;
  onDeleted: (id: string) => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const title = r.title ?? 'Untitled recording';
  const href = r.status === 'live' ? `/recordings/${r.id}/live` : `/recordings/${r.id}`;

  async function remove() {
    setBusy(true);
    setError(null);
    try {
      await deleteRecording(r.id);
      setConfirming(false);
      onDeleted(r.id);
    } catch (err) {
      setError(`Not deleted: ${errorText(err)}. Try again, or reload the list.`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <li className="recording" data-status={r.status}>
      <div className="recording-main">
        <a href={href} onClick={onLinkClick} className="recording-title">
          {title}
        </a>
        <span className="meta">
          {when(r.createdAt)}
          {r.durationSeconds !== null && ` · ${clock(r.durationSeconds)}`}
          {owner && ` · ${owner}`}
        </span>
        {r.match && r.match.snippets.length > 0 && (
          <ul className="snippets">
            {r.match.snippets.map((s) => (
              <li key={s.segmentId}>
                {/* Opens the recording at this moment, with the words marked (search-hit.ts). */}
                <a
                  href={hitHref(r.id, s.start)}
                  onClick={(e) => {
                    rememberHitQuery(r.id, query);
                    onLinkClick(e);
                  }}
                  className="time"
                  aria-label={`${clock(s.start)} in ${title}`}
                >
                  {clock(s.start)}
                </a>{' '}
                {markTerms(s.text, searchTerms(query))}
              </li>
            ))}
          </ul>
        )}
      </div>
      <div className="recording-status">
        <span className={`status status-${r.status}`}>{STATUS_TEXT[r.status]}</span>
        {stageLine(r) && <span className="stage small">{stageLine(r)}</span>}
        {(r.status === 'queued' || r.status === 'processing') && (
          <progress max={1} value={r.progress} aria-label={`Progress of ${title}`}>
            {Math.round(r.progress * 100)}%
          </progress>
        )}
        {r.status === 'live' && (
          <a href={href} onClick={onLinkClick} className="small">
            Open live view
          </a>
        )}
        {r.status === 'failed' && r.error && <span className="error-inline">{r.error}</span>}
      </div>
      <div className="recording-actions">
        <button type="button" onClick={() => setConfirming(true)} aria-label={`Delete ${title}`}>
          Delete
        </button>
        {confirming && (
          <ConfirmDialog
            title={`Delete “${title}”?`}
            confirmLabel="Yes, delete"
            cancelLabel="Keep it"
            busy={busy}
            error={error}
            onConfirm={() => void remove()}
            onCancel={() => {
              setConfirming(false);
              setError(null);
            }}
          >
            <p>
              The recording, its transcript and any kept audio are deleted for good. This cannot be undone.
            </p>
          </ConfirmDialog>
        )}
      </div>
    </li>
  );
}
