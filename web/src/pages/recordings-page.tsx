import { useCallback, useEffect, useRef, useState } from 'react';
import { del, getJson, uploadRecording, type Recording } from '../api';
import { clock, errorText, when } from '../format';
import { onLinkClick } from '../router';

const STATUS_TEXT: Record<Recording['status'], string> = {
  live: 'Live',
  queued: 'Waiting to be transcribed',
  processing: 'Transcribing',
  done: 'Ready',
  failed: 'Failed',
};

const POLL_MS = 1500;

export function RecordingsPage() {
  const [items, setItems] = useState<Recording[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const page = await getJson<{ items: Recording[] }>('/api/v1/recordings?limit=100');
      setItems(page.items);
      setError(null);
    } catch (err) {
      setError(errorText(err));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  // Poll only while something is still moving.
  const busy = items?.some((r) => r.status === 'queued' || r.status === 'processing' || r.status === 'live');
  useEffect(() => {
    if (!busy) return;
    const t = setInterval(() => void load(), POLL_MS);
    return () => clearInterval(t);
  }, [busy, load]);

  return (
    <section>
      <h1 tabIndex={-1}>Recordings</h1>
      <UploadPanel onUploaded={() => void load()} />
      <h2>Your recordings</h2>
      {error && (
        <p className="error" role="alert">
          Could not load your recordings: {error}{' '}
          <button type="button" onClick={() => void load()}>
            Try again
          </button>
        </p>
      )}
      {items === null && !error && <p aria-busy="true">Loading recordings…</p>}
      {items?.length === 0 && (
        <p className="empty">No recordings yet. Upload an audio file above to get a transcript.</p>
      )}
      {items && items.length > 0 && (
        <ul className="recordings" aria-live="polite">
          {items.map((r) => (
            <RecordingRow key={r.id} r={r} onDeleted={() => void load()} />
          ))}
        </ul>
      )}
    </section>
  );
}

function RecordingRow({ r, onDeleted }: { r: Recording; onDeleted: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const title = r.title ?? 'Untitled recording';
  return (
    <li className="recording" data-status={r.status}>
      <div className="recording-main">
        <a href={`/recordings/${r.id}`} onClick={onLinkClick} className="recording-title">
          {title}
        </a>
        <span className="meta">
          {when(r.createdAt)}
          {r.durationSeconds !== null && ` · ${clock(r.durationSeconds)}`}
        </span>
      </div>
      <div className="recording-status">
        <span className={`status status-${r.status}`}>{STATUS_TEXT[r.status]}</span>
        {(r.status === 'queued' || r.status === 'processing') && (
          <progress max={1} value={r.progress} aria-label={`Progress of ${title}`}>
            {Math.round(r.progress * 100)}%
          </progress>
        )}
        {r.status === 'failed' && r.error && <span className="error-inline">{r.error}</span>}
      </div>
      <div className="recording-actions">
        {confirming ? (
          <span role="group" aria-label={`Confirm deleting ${title}`}>
            <span>Delete for good?</span>{' '}
            <button
              type="button"
              className="danger"
              onClick={() =>
                void del(`/api/v1/recordings/${r.id}`).then(onDeleted, (err: unknown) =>
                  setError(errorText(err)),
                )
              }
            >
              Yes, delete
            </button>{' '}
            <button type="button" onClick={() => setConfirming(false)} autoFocus>
              Keep it
            </button>
          </span>
        ) : (
          <button type="button" onClick={() => setConfirming(true)} aria-label={`Delete ${title}`}>
            Delete
          </button>
        )}
        {error && (
          <span className="error-inline" role="alert">
            {error}
          </span>
        )}
      </div>
    </li>
  );
}

function UploadPanel({ onUploaded }: { onUploaded: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [title, setTitle] = useState('');
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const abort = useRef<AbortController | null>(null);

  function pick(f: File | undefined) {
    if (!f) return;
    setFile(f);
    setError(null);
    if (!title) setTitle(f.name.replace(/\.[^.]+$/, ''));
  }

  async function start() {
    if (!file) return;
    abort.current = new AbortController();
    setProgress(0);
    setError(null);
    try {
      await uploadRecording(file, title, setProgress, abort.current.signal);
      setFile(null);
      setTitle('');
      if (input.current) input.current.value = '';
      onUploaded();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setProgress(null);
    }
  }

  return (
    <section className="card" aria-labelledby="upload-heading">
      <h2 id="upload-heading">Upload a recording</h2>
      <div
        className={`dropzone${dragging ? ' dragging' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          pick(e.dataTransfer.files[0]);
        }}
      >
        <p>Drag an audio file here (WAV, FLAC, Ogg, MP3, M4A, WebM), or</p>
        <input
          ref={input}
          id="upload-file"
          className="visually-hidden"
          type="file"
          accept="audio/*,video/webm,.wav,.flac,.ogg,.mp3,.m4a,.webm"
          onChange={(e) => pick(e.target.files?.[0])}
        />
        <label htmlFor="upload-file" className="button">
          Choose a file
        </label>
        {file && <p className="meta">Selected: {file.name}</p>}
      </div>
      <label htmlFor="upload-title">Title (optional)</label>
      <input id="upload-title" value={title} maxLength={300} onChange={(e) => setTitle(e.target.value)} />
      {progress !== null ? (
        <div className="upload-progress">
          <label htmlFor="upload-bar">Uploading… {Math.round(progress * 100)}%</label>
          <progress id="upload-bar" max={1} value={progress} />
          <button type="button" onClick={() => abort.current?.abort()}>
            Cancel
          </button>
        </div>
      ) : (
        <button type="button" className="primary" disabled={!file} onClick={() => void start()}>
          Upload and transcribe
        </button>
      )}
      {error && (
        <p className="error" role="alert">
          Upload failed: {error}
        </p>
      )}
    </section>
  );
}
