import { useEffect, useState, useSyncExternalStore } from 'react';
import { ApiError, type Recording } from '../api';
import { getRecording } from '../api-live';
import { clock, errorText } from '../format';
import { sessionFor, type LiveSession, type SourceView } from '../live/live-session';
import type { WatchView } from '../live/watch-socket';
import { onLinkClick } from '../router';
import { LiveTranscript, useWatch } from './live-transcript';
import { NotFoundPage } from './not-found-page';

/**
 * A live recording: in the tab that captures it, the level of each source, the time recorded,
 * the connection's state and the stop button; for everyone else allowed to see it (same org),
 * only the transcript as it appears. Both read the transcript through a viewer socket.
 */
type Load =
  | { state: 'loading' }
  | { state: 'missing' }
  | { state: 'error'; message: string }
  | { state: 'ok'; rec: Recording };

export function LiveRecordingPage({ id }: { id: string }) {
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const session = sessionFor(id);

  useEffect(() => {
    let on = true;
    getRecording(id).then(
      (rec) => on && setLoad({ state: 'ok', rec }),
      (err: unknown) =>
        on &&
        setLoad(
          err instanceof ApiError && err.status === 404
            ? { state: 'missing' }
            : { state: 'error', message: errorText(err) },
        ),
    );
    return () => {
      on = false;
    };
  }, [id]);

  // The capturing tab keeps its controls (above all, Stop) even if the recording cannot be read.
  if (session) {
    const title =
      (load.state === 'ok' ? load.rec.title : session.title) ?? session.title ?? 'Untitled live recording';
    return <LiveScreen id={id} title={title} session={session} />;
  }
  if (load.state === 'missing') return <NotFoundPage what="recording" />;
  if (load.state === 'loading') return <p aria-busy="true">Loading…</p>;
  if (load.state === 'error')
    return (
      <p className="error" role="alert">
        Could not load this recording: {load.message}
      </p>
    );
  const title = load.rec.title ?? 'Untitled live recording';
  if (load.rec.status !== 'live')
    return (
      <section className="card narrow">
        <h1 tabIndex={-1}>{title}</h1>
        <p>This recording is not live any more.</p>
        <TranscriptLink id={id} />
      </section>
    );
  return <LiveScreen id={id} title={title} session={undefined} />;
}

function TranscriptLink({ id }: { id: string }) {
  return (
    <p>
      <a href={`/recordings/${id}`} onClick={onLinkClick}>
        Open the transcript
      </a>
    </p>
  );
}

const noSubscribe = () => () => undefined;

function LiveScreen({ id, title, session }: { id: string; title: string; session: LiveSession | undefined }) {
  const watch = useWatch(id);
  // Re-render on the session's (throttled) changes; a version number is the snapshot.
  const version = useSyncExternalStore(session ? (fn) => session.subscribe(fn) : noSubscribe, () =>
    session
      ? `${session.state}:${session.elapsed}:${session.view.map((v) => v.level.toFixed(2)).join()}`
      : '',
  );
  void version;
  const status = statusOf(session, watch);
  const over = status.kind === 'stopped' || (status.kind === 'failed' && !session);

  return (
    <section className="live-screen">
      <h1 tabIndex={-1}>{title}</h1>
      <p className="live-status-line">
        <span className={`live-status live-status-${status.kind}`} role="status">
          {status.text}
        </span>
        {session && <span className="live-elapsed">Recorded {clock(session.elapsed)}</span>}
        {!session && status.kind !== 'stopped' && (
          <span className="meta">You are watching; another device is recording.</span>
        )}
      </p>
      {status.error && (
        <p className="error" role="alert">
          {status.error}
        </p>
      )}
      {session && <CaptureControls session={session} />}
      {over && <TranscriptLink id={id} />}
      <LiveTranscript view={watch} />
    </section>
  );
}

type Status = {
  kind: 'live' | 'reconnecting' | 'connecting' | 'stopping' | 'stopped' | 'failed';
  text: string;
  error?: string;
};

function statusOf(session: LiveSession | undefined, watch: WatchView): Status {
  const state = session ? session.state : watch.state;
  switch (state) {
    case 'live':
      return { kind: 'live', text: 'Live' };
    case 'connecting':
      return { kind: 'connecting', text: 'Connecting…' };
    case 'reconnecting':
      return { kind: 'reconnecting', text: 'Reconnecting…' };
    case 'stopping':
      return { kind: 'stopping', text: stoppingText(watch.stopStage) };
    case 'stopped': {
      const failed = (session?.stopStatus ?? watch.stopStatus) === 'failed';
      return failed
        ? {
            kind: 'stopped',
            text: 'Stopped',
            error: 'No audio reached the server, so there is nothing to transcribe.',
          }
        : { kind: 'stopped', text: 'Stopped — transcript processing' };
    }
    case 'failed': {
      const why = session?.view.find((v) => v.error)?.error ?? watch.error ?? 'unknown reason';
      return { kind: 'failed', text: 'Disconnected', error: `The live connection ended: ${why}.` };
    }
  }
}

/** A stop says what it waits for: the server's `stopping` stages, or the client's own flush. */
function stoppingText(stage: WatchView['stopStage']): string {
  if (stage === 'recognising') return 'Stopping: recognising the last words…';
  if (stage === 'saving') return 'Stopping: saving the audio securely…';
  return 'Stopping: sending the last audio…';
}

/** Level in decibels mapped to 0…1 over -60…0 dBFS: speech then sits in the meter's middle. */
function meterValue(peak: number): number {
  if (peak <= 0) return 0;
  return Math.max(0, Math.min(1, 1 + (20 * Math.log10(peak)) / 60));
}

function CaptureControls({ session }: { session: LiveSession }) {
  const [confirming, setConfirming] = useState(false);
  const sources: SourceView[] = session.view;
  const state = session.state;
  const running = state === 'live' || state === 'reconnecting';
  return (
    <div className="card live-controls">
      <ul className="live-meters">
        {sources.map((s, i) => (
          <li key={s.label}>
            <label htmlFor={`live-level-${i}`}>{s.label}</label>
            <meter
              id={`live-level-${i}`}
              aria-label={`${s.label} sound level`}
              min={0}
              max={1}
              low={0.5}
              high={0.9}
              optimum={0.6}
              value={meterValue(s.level)}
            >
              {Math.round(meterValue(s.level) * 100)}%
            </meter>
            {s.ended && running && <span className="error-inline">This source stopped sending audio.</span>}
            {s.dropped > 0 && (
              <span className="error-inline">
                {clock(s.dropped / 10)} of audio could not be kept during the outage.
              </span>
            )}
          </li>
        ))}
      </ul>
      {running && !confirming && (
        <button type="button" className="danger" onClick={() => setConfirming(true)}>
          Stop recording
        </button>
      )}
      {running && confirming && (
        <div
          className="live-confirm"
          role="group"
          aria-labelledby="live-confirm-text"
          onKeyDown={(e) => {
            if (e.key === 'Escape') setConfirming(false);
          }}
        >
          <p id="live-confirm-text">
            Stop the recording? It cannot be resumed; the full transcript is made next.
          </p>
          <button type="button" className="danger" autoFocus onClick={() => void session.stop()}>
            Stop now
          </button>{' '}
          <button type="button" onClick={() => setConfirming(false)}>
            Keep recording
          </button>
        </div>
      )}
    </div>
  );
}
