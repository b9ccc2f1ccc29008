import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, isOffline, type Recording, type Report } from '../api';
import {
  editTranscript,
  getRecording,
  getReport,
  getTranscript,
  type TimedTranscript,
} from '../api-recordings';
import { clock, errorText } from '../format';
import { onLinkClick } from '../router';
import { ReportView } from './report-view';
import { STATUS_TEXT } from './recordings-row';
import { RetryFailed } from './recording-retry';
import { FinishNotice, JobProgress, usePolling } from './recording-progress';
import { NotFoundPage } from './not-found-page';
import { ExportMenu } from './recording-export';
import { FindBar, findMatches } from './recording-find';
import { useAudio } from './recording-player';
import { AudioPlayer } from './recording-player-bar';
import { SegmentRow, wordAt, type SegmentMatch } from './recording-segments';
import { takeHit } from './search-hit';
import { SpeakerList, type EditFn } from './recording-speakers';
import { speakerColours } from './speaker-colour';

type Load<T> = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ok'; data: T };
type Version = 'current' | 'original';

export function RecordingPage({ id }: { id: string }) {
  const [rec, setRec] = useState<Load<Recording> | { state: 'missing' }>({ state: 'loading' });
  const loadRec = useCallback(async () => {
    try {
      setRec({ state: 'ok', data: await getRecording(id) });
    } catch (err) {
      // Another organization's recording is a 404 like one that never existed.
      if (err instanceof ApiError && err.status === 404) setRec({ state: 'missing' });
      else setRec({ state: 'error', message: errorText(err) });
    }
  }, [id]);

  useEffect(() => {
    void loadRec();
  }, [loadRec]);

  const moving =
    rec.state === 'ok' &&
    (rec.data.status === 'queued' || rec.data.status === 'processing' || rec.data.status === 'live');
  // Read again while the job moves, less often while nothing changes (recording-progress.tsx).
  const signature = rec.state === 'ok' ? `${rec.data.status}|${rec.data.stage}|${rec.data.progress}` : '';
  usePolling(moving, signature, loadRec);

  // The tab names the recording once known (the app set "Recording · Sotto" meanwhile).
  const shownTitle = rec.state === 'ok' ? (rec.data.title ?? 'Untitled recording') : null;
  useEffect(() => {
    if (shownTitle) document.title = `${shownTitle} · Sotto`;
  }, [shownTitle]);

  if (rec.state === 'missing') return <NotFoundPage what="recording" />;
  if (rec.state === 'loading') return <p aria-busy="true">Loading…</p>;
  if (rec.state === 'error')
    return (
      <p className="error" role="alert">
        Could not load this recording: {rec.message}. Reload the page to try again.
      </p>
    );
  const r = rec.data;
  return (
    <section>
      <h1 tabIndex={-1}>{r.title ?? 'Untitled recording'}</h1>
      <p className="meta">
        {r.durationSeconds !== null && <>Length {clock(r.durationSeconds)} · </>}
        Status: <span className={`status status-${r.status}`}>{STATUS_TEXT[r.status]}</span>
      </p>
      {r.status === 'live' && (
        <p className="notice-box">
          This recording is live.{' '}
          <a href={`/recordings/${r.id}/live`} onClick={onLinkClick}>
            Open the live view
          </a>{' '}
          to follow it; the full transcript appears here once it is stopped and transcribed.
        </p>
      )}
      {(r.status === 'queued' || r.status === 'processing') && <JobProgress r={r} />}
      <FinishNotice status={r.status} />
      {r.status === 'failed' && (
        <>
          <p className="error" role="alert">
            Transcription failed: {r.error ?? 'unknown reason'}. Upload the file again, or ask your
            administrator.
          </p>
          <RetryFailed id={r.id} onQueued={() => void loadRec()} />
        </>
      )}
      {r.status === 'done' && (
        <DoneRecording id={r.id} title={r.title ?? 'recording'} duration={r.durationSeconds ?? 0} />
      )}
    </section>
  );
}

function DoneRecording({ id, title, duration }: { id: string; title: string; duration: number }) {
  const [version, setVersion] = useState<Version>('current');
  const [transcript, setTranscript] = useState<Load<TimedTranscript>>({ state: 'loading' });
  const [report, setReport] = useState<Load<Report>>({ state: 'loading' });
  const [notice, setNotice] = useState<string | null>(null);
  // Opened from a search hit: its moment (the address's #t=) and the searched words.
  const [hit] = useState(() => takeHit(id));
  const [query, setQuery] = useState(hit.q);
  const [current, setCurrent] = useState(0);
  const audio = useAudio(id, hit.at);

  const loadTranscript = useCallback(
    async (v: Version) => {
      setTranscript({ state: 'loading' });
      try {
        setTranscript({ state: 'ok', data: await getTranscript(id, v) });
      } catch (err) {
        setTranscript({ state: 'error', message: `${errorText(err)}. Reload the page to try again.` });
      }
    },
    [id],
  );

  useEffect(() => {
    void loadTranscript(version);
  }, [loadTranscript, version]);

  useEffect(() => {
    void getReport(id).then(
      (d) => setReport({ state: 'ok', data: d }),
      (err: unknown) => setReport({ state: 'error', message: errorText(err) }),
    );
  }, [id]);

  const revision = transcript.state === 'ok' ? transcript.data.revision : null;
  const edit: EditFn = useCallback(
    async (body) => {
      if (revision === null) return { ok: false, error: 'The transcript is still loading.', offline: false };
      setNotice(null);
      try {
        const next = await editTranscript(id, { revision, ...body });
        setTranscript({ state: 'ok', data: next });
        setNotice('Saved.');
        // The report follows the edit: speaker names, and word counts, rates and keywords of text.
        void getReport(id).then((d) => setReport({ state: 'ok', data: d }));
        return { ok: true };
      } catch (err) {
        // Said beside the control that was used (the editor, the rename form), not at the top.
        return {
          ok: false,
          offline: isOffline(err),
          error:
            err instanceof ApiError && err.status === 409
              ? 'Someone else changed this transcript in the meantime. Reload the page to see their changes, then edit again.'
              : isOffline(err)
                ? 'Not saved yet: Sotto cannot be reached. Your text is kept here and is saved as soon as the connection is back.'
                : `Not saved: ${errorText(err)}`,
        };
      }
    },
    [id, revision],
  );

  const t = transcript.state === 'ok' ? transcript.data : null;
  const matches = useMemo(() => (t ? findMatches(t.segments, query) : []), [t, query]);
  // The hit's own match first: the first one said at or after its moment, not the transcript's first.
  const [hitApplied, setHitApplied] = useState(false);
  if (!hitApplied && t && hit.at !== null && matches.length > 0) {
    const at = hit.at;
    const idx = matches.findIndex((m) => (t.segments[m.seg]?.end ?? 0) > at);
    setHitApplied(true);
    if (idx > 0) setCurrent(idx);
  }
  const cur = matches.length ? Math.min(current, matches.length - 1) : -1;
  const bySegment = useMemo(() => {
    const m = new Map<number, SegmentMatch[]>();
    matches.forEach((x, idx) => m.set(x.seg, [...(m.get(x.seg) ?? []), { from: x.from, to: x.to, idx }]));
    return m;
  }, [matches]);

  // Bring the current match into view when it changes (not on every render). The first time (the
  // jump from a search hit, or the first find) lands at once: a smooth scroll fixes its target
  // when it starts, so the page settling under it (the audio player, the report) could leave the
  // hit off screen, where an instant one is kept in place by the browser's scroll anchoring.
  const scrolledToMatch = useRef(false);
  useEffect(() => {
    if (cur < 0) return;
    const behavior = scrolledToMatch.current ? 'smooth' : 'auto';
    scrolledToMatch.current = true;
    document.querySelector(`mark[data-match="${cur}"]`)?.scrollIntoView({ block: 'center', behavior });
  }, [cur, query]);

  const playing = t && audio.state === 'ready' ? wordAt(t.segments, audio.time) : null;
  const canPlay = audio.state === 'ready' || audio.state === 'error';
  const onPlay = canPlay ? audio.playFrom : null;
  const names = new Map(t?.speakers.map((s) => [s.id, s.name]));
  const colours = speakerColours(t?.speakers.map((s) => s.id) ?? []);
  const editable = version === 'current' ? edit : null;

  return (
    <>
      <div className="toolbar">
        <ExportMenu id={id} title={title} />
      </div>
      <p className="notice" role="status" aria-live="polite">
        {notice}
      </p>
      <div className="columns">
        <section aria-labelledby="transcript-heading" className="card">
          <h2 id="transcript-heading">Transcript</h2>
          <div className="transcript-tools">
            <div className="segmented" role="group" aria-label="Transcript version">
              <button
                type="button"
                aria-pressed={version === 'current'}
                onClick={() => setVersion('current')}
              >
                Edited
              </button>
              <button
                type="button"
                aria-pressed={version === 'original'}
                onClick={() => setVersion('original')}
              >
                Machine original
              </button>
            </div>
            <FindBar
              query={query}
              onQuery={(q) => {
                setQuery(q);
                setCurrent(0);
              }}
              count={matches.length}
              current={cur}
              onMove={(d) => setCurrent((c) => (Math.max(0, c) + d + matches.length) % matches.length)}
            />
          </div>
          {version === 'original' && (
            <p className="notice-box">
              The machine original, as recognised before any edit. Read-only: switch to “Edited” to make
              changes.
            </p>
          )}
          {transcript.state === 'loading' && <p aria-busy="true">Loading transcript…</p>}
          {transcript.state === 'error' && (
            <p className="error" role="alert">
              {transcript.message}
            </p>
          )}
          {t && t.segments.length === 0 && <p className="empty">No speech was found in this recording.</p>}
          {t && t.segments.length > 0 && (
            <>
              <h3>Speakers</h3>
              <SpeakerList speakers={t.speakers} onEdit={editable} />
              <ol className="segments" data-version={t.version}>
                {t.segments.map((s, i) => (
                  <SegmentRow
                    key={`${t.version}-${s.id}`}
                    recordingId={id}
                    s={s}
                    speaker={names.get(s.speaker) ?? s.speaker}
                    colour={colours.get(s.speaker) ?? 0}
                    speakers={t.speakers}
                    revision={t.revision}
                    canMerge={t.segments[i + 1]?.speaker === s.speaker}
                    onEdit={editable}
                    onPlay={onPlay}
                    marks={bySegment.get(i) ?? NONE}
                    current={cur}
                    activeWord={playing?.seg === i ? playing.word : -1}
                  />
                ))}
              </ol>
            </>
          )}
          {/* Last in the card, so it sticks to the bottom of the screen while the transcript runs. */}
          <AudioPlayer audio={audio} />
        </section>
        <section aria-labelledby="report-heading" className="card">
          <h2 id="report-heading">Report</h2>
          {report.state === 'loading' && <p aria-busy="true">Loading report…</p>}
          {report.state === 'error' && (
            <p className="error" role="alert">
              {report.message}
            </p>
          )}
          {report.state === 'ok' && (
            <ReportView report={report.data} segments={t?.segments ?? null} duration={duration} />
          )}
        </section>
      </div>
    </>
  );
}

const NONE: SegmentMatch[] = [];
