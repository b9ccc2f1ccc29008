import { useCallback, useEffect, useRef, useState } from 'react';
import {
  ApiError,
  getBlob,
  getJson,
  request,
  sendJson,
  type Recording,
  type Report,
  type Transcript,
} from '../api';
import { clock, errorText } from '../format';
import { ReportView } from './report-view';
import { NotFoundPage } from './not-found-page';

const EXPORTS = [
  { format: 'txt', label: 'Plain text (.txt)' },
  { format: 'srt', label: 'Subtitles (.srt)' },
  { format: 'vtt', label: 'WebVTT (.vtt)' },
  { format: 'json', label: 'JSON (.json)' },
  { format: 'docx', label: 'Word (.docx)' },
] as const;

type Load<T> = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ok'; data: T };

export function RecordingPage({ id }: { id: string }) {
  const [rec, setRec] = useState<Load<Recording> | { state: 'missing' }>({ state: 'loading' });
  const base = `/api/v1/recordings/${id}`;

  const loadRec = useCallback(async () => {
    try {
      setRec({ state: 'ok', data: await getJson<Recording>(base) });
    } catch (err) {
      // Another organization's recording is a 404 like one that never existed.
      if (err instanceof ApiError && err.status === 404) setRec({ state: 'missing' });
      else setRec({ state: 'error', message: errorText(err) });
    }
  }, [base]);

  useEffect(() => {
    void loadRec();
  }, [loadRec]);

  const moving = rec.state === 'ok' && (rec.data.status === 'queued' || rec.data.status === 'processing');
  useEffect(() => {
    if (!moving) return;
    const t = setInterval(() => void loadRec(), 1500);
    return () => clearInterval(t);
  }, [moving, loadRec]);

  if (rec.state === 'missing') return <NotFoundPage what="recording" />;
  if (rec.state === 'loading') return <p aria-busy="true">Loading…</p>;
  if (rec.state === 'error')
    return (
      <p className="error" role="alert">
        Could not load this recording: {rec.message}
      </p>
    );
  const r = rec.data;
  return (
    <section>
      <h1 tabIndex={-1}>{r.title ?? 'Untitled recording'}</h1>
      <p className="meta">
        {r.durationSeconds !== null && <>Length {clock(r.durationSeconds)} · </>}
        Status: <span className={`status status-${r.status}`}>{r.status}</span>
      </p>
      {moving && (
        <p>
          Transcribing… <progress max={1} value={r.progress} aria-label="Transcription progress" />
        </p>
      )}
      {r.status === 'failed' && (
        <p className="error" role="alert">
          Transcription failed: {r.error ?? 'unknown reason'}. Upload the file again, or ask your
          administrator.
        </p>
      )}
      {r.status === 'done' && <DoneRecording base={base} title={r.title ?? 'recording'} />}
    </section>
  );
}

function DoneRecording({ base, title }: { base: string; title: string }) {
  const [transcript, setTranscript] = useState<Load<Transcript>>({ state: 'loading' });
  const [report, setReport] = useState<Load<Report>>({ state: 'loading' });
  const [notice, setNotice] = useState<string | null>(null);
  const audio = useRef<HTMLAudioElement>(null);
  // Segment times become "play from here" buttons once the audio is loaded.
  const [canPlay, setCanPlay] = useState(false);

  const load = useCallback(async () => {
    try {
      setTranscript({ state: 'ok', data: await getJson<Transcript>(`${base}/transcript`) });
    } catch (err) {
      setTranscript({ state: 'error', message: errorText(err) });
    }
    try {
      setReport({ state: 'ok', data: await getJson<Report>(`${base}/report`) });
    } catch (err) {
      setReport({ state: 'error', message: errorText(err) });
    }
  }, [base]);

  useEffect(() => {
    void load();
  }, [load]);

  async function edit(body: {
    speakers?: { id: string; name: string }[];
    segments?: { id: string; text: string }[];
  }) {
    if (transcript.state !== 'ok') return false;
    try {
      const next = await sendJson<Transcript>('PATCH', `${base}/transcript`, {
        revision: transcript.data.revision,
        ...body,
      });
      setTranscript({ state: 'ok', data: next });
      setNotice('Saved.');
      // The report follows the edit: speaker names, and word counts, rates and keywords of text.
      void getJson<Report>(`${base}/report`).then((d) => setReport({ state: 'ok', data: d }));
      return true;
    } catch (err) {
      setNotice(
        err instanceof ApiError && err.status === 409
          ? 'Someone else changed this transcript in the meantime. Reload the page to see their changes, then edit again.'
          : `Not saved: ${errorText(err)}`,
      );
      return false;
    }
  }

  return (
    <>
      <div className="toolbar">
        <ExportMenu base={base} title={title} />
        <AudioPlayer base={base} audio={audio} onReady={() => setCanPlay(true)} />
      </div>
      <p className="notice" role="status" aria-live="polite">
        {notice}
      </p>
      <div className="columns">
        <section aria-labelledby="transcript-heading" className="card">
          <h2 id="transcript-heading">Transcript</h2>
          {transcript.state === 'loading' && <p aria-busy="true">Loading transcript…</p>}
          {transcript.state === 'error' && (
            <p className="error" role="alert">
              {transcript.message}
            </p>
          )}
          {transcript.state === 'ok' && (
            <TranscriptView t={transcript.data} onEdit={edit} audio={canPlay ? audio : null} />
          )}
        </section>
        <section aria-labelledby="report-heading" className="card">
          <h2 id="report-heading">Report</h2>
          {report.state === 'loading' && <p aria-busy="true">Loading report…</p>}
          {report.state === 'error' && (
            <p className="error" role="alert">
              {report.message}
            </p>
          )}
          {report.state === 'ok' && <ReportView report={report.data} />}
        </section>
      </div>
    </>
  );
}

type EditFn = (body: {
  speakers?: { id: string; name: string }[];
  segments?: { id: string; text: string }[];
}) => Promise<boolean>;

function TranscriptView({
  t,
  onEdit,
  audio,
}: {
  t: Transcript;
  onEdit: EditFn;
  audio: React.RefObject<HTMLAudioElement | null> | null;
}) {
  const names = new Map(t.speakers.map((s) => [s.id, s.name]));
  if (t.segments.length === 0) return <p className="empty">No speech was found in this recording.</p>;
  return (
    <>
      <h3>Speakers</h3>
      <ul className="speakers">
        {t.speakers.map((s) => (
          <SpeakerName key={s.id} id={s.id} name={s.name} onEdit={onEdit} />
        ))}
      </ul>
      <ol className="segments">
        {t.segments.map((s) => (
          <SegmentRow
            key={s.id}
            s={s}
            speaker={names.get(s.speaker) ?? s.speaker}
            onEdit={onEdit}
            audio={audio}
          />
        ))}
      </ol>
    </>
  );
}

function SpeakerName({ id, name, onEdit }: { id: string; name: string; onEdit: EditFn }) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(name);
  if (!editing)
    return (
      <li>
        <span className="speaker-name">{name}</span>{' '}
        <button
          type="button"
          onClick={() => {
            setValue(name);
            setEditing(true);
          }}
          aria-label={`Rename ${name}`}
        >
          Rename
        </button>
      </li>
    );
  return (
    <li>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void onEdit({ speakers: [{ id, name: value.trim() }] }).then((ok) => ok && setEditing(false));
        }}
      >
        <label htmlFor={`speaker-${id}`}>New name for {name}</label>
        <input
          id={`speaker-${id}`}
          value={value}
          maxLength={100}
          required
          autoFocus
          onChange={(e) => setValue(e.target.value)}
        />
        <button type="submit" className="primary">
          Save
        </button>
        <button type="button" onClick={() => setEditing(false)}>
          Cancel
        </button>
      </form>
    </li>
  );
}

function SegmentRow({
  s,
  speaker,
  onEdit,
  audio,
}: {
  s: Transcript['segments'][number];
  speaker: string;
  onEdit: EditFn;
  audio: React.RefObject<HTMLAudioElement | null> | null;
}) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(s.text);
  const play = () => {
    const el = audio?.current;
    if (!el?.src) return;
    el.currentTime = s.start;
    void el.play();
  };
  return (
    <li className="segment">
      <div className="segment-head">
        {audio ? (
          <button
            type="button"
            className="time link"
            onClick={play}
            aria-label={`Play from ${clock(s.start)}`}
          >
            {clock(s.start)}
          </button>
        ) : (
          <span className="time">{clock(s.start)}</span>
        )}
        <span className="segment-speaker">{speaker}</span>
        {s.edited && <span className="badge">edited</span>}
      </div>
      {editing ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void onEdit({ segments: [{ id: s.id, text: value }] }).then((ok) => ok && setEditing(false));
          }}
        >
          <label htmlFor={`seg-${s.id}`} className="visually-hidden">
            Text of the segment at {clock(s.start)}
          </label>
          <textarea
            id={`seg-${s.id}`}
            value={value}
            rows={3}
            autoFocus
            onChange={(e) => setValue(e.target.value)}
          />
          <button type="submit" className="primary">
            Save
          </button>
          <button type="button" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <p className="segment-text">
          {s.text}{' '}
          <button
            type="button"
            className="link small"
            onClick={() => {
              setValue(s.text);
              setEditing(true);
            }}
            aria-label={`Edit the segment at ${clock(s.start)}`}
          >
            Edit
          </button>
        </p>
      )}
    </li>
  );
}

function ExportMenu({ base, title }: { base: string; title: string }) {
  const [error, setError] = useState<string | null>(null);
  async function download(format: string) {
    setError(null);
    try {
      // The export needs the bearer token, so fetch it and hand the browser a blob: URL.
      const blob = await getBlob(`${base}/export?format=${format}`);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `${title.replace(/[^\w .-]+/g, '_')}.${format}`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <details className="menu">
      <summary>Export</summary>
      <ul>
        {EXPORTS.map((e) => (
          <li key={e.format}>
            <button type="button" onClick={() => void download(e.format)}>
              {e.label}
            </button>
          </li>
        ))}
      </ul>
      {error && (
        <p className="error" role="alert">
          Export failed: {error}
        </p>
      )}
    </details>
  );
}

/**
 * GET /audio needs the bearer token, which an <audio src> cannot send (and the access token is
 * never put in a cookie or URL). So the panel checks with a one-byte range request whether the
 * audio is kept, and on request fetches it with the token and plays it from a blob: URL (the CSP
 * allows media-src blob:). Fine for consultation-length files; very long ones would want a
 * short-lived signed URL, which the API does not offer yet.
 */
function AudioPlayer({
  base,
  audio,
  onReady,
}: {
  base: string;
  audio: React.RefObject<HTMLAudioElement | null>;
  onReady: () => void;
}) {
  const [state, setState] = useState<'checking' | 'absent' | 'available' | 'loading' | 'ready' | 'error'>(
    'checking',
  );
  const url = useRef<string | null>(null);

  useEffect(() => {
    let live = true;
    void request(`${base}/audio`, { headers: { range: 'bytes=0-0' } }).then(
      (res) => live && setState(res.ok ? 'available' : 'absent'),
      () => live && setState('absent'),
    );
    return () => {
      live = false;
      if (url.current) URL.revokeObjectURL(url.current);
    };
  }, [base]);

  async function load() {
    setState('loading');
    try {
      url.current = URL.createObjectURL(await getBlob(`${base}/audio`));
      setState('ready');
      onReady();
    } catch {
      setState('error');
    }
  }

  if (state === 'checking') return null;
  if (state === 'absent')
    return <p className="meta">Audio is not kept for this recording (your organization's policy).</p>;
  return (
    <div className="player">
      {state === 'available' && (
        <button type="button" onClick={() => void load()}>
          Load audio
        </button>
      )}
      {state === 'loading' && <span aria-busy="true">Loading audio…</span>}
      {state === 'error' && <span className="error-inline">The audio could not be loaded.</span>}
      <audio
        ref={audio}
        controls
        hidden={state !== 'ready'}
        src={state === 'ready' ? (url.current ?? undefined) : undefined}
      >
        Your browser cannot play this audio.
      </audio>
    </div>
  );
}
