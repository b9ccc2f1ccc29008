import { useEffect, useMemo, useRef, useState } from 'react';
import type { Recording } from '../api';
import { clock } from '../format';
import { STAGE_TEXT, STATUS_TEXT } from './recordings-row';

/**
 * The recording page's status area while a job moves (docs/panel.md, "Progress"): the stage in
 * the list's words, the percentage, the time elapsed and an estimate of the time left (both from
 * the server, counted on locally between two reads), and a spoken notice when the job the user
 * is looking at finishes. Reading the recording again backs off while nothing changes.
 */

/** First and longest wait between two reads of a moving recording. */
const POLL_MIN_MS = 1500;
const POLL_MAX_MS = 10_000;

/**
 * Calls `poll` while `active`: after POLL_MIN_MS, then half as long again each time the answer
 * (`signature`) did not change, up to POLL_MAX_MS; back to the minimum as soon as it changes.
 */
export function usePolling(active: boolean, signature: string, poll: () => Promise<void>): void {
  const delay = useRef(POLL_MIN_MS);
  const [round, setRound] = useState(0);
  // Declared before the timer's effect, so a changed answer resets the delay before the next wait.
  useEffect(() => {
    delay.current = POLL_MIN_MS;
  }, [signature]);
  useEffect(() => {
    if (!active) return;
    let on = true;
    const timer = setTimeout(() => {
      delay.current = Math.min(POLL_MAX_MS, delay.current * 1.5);
      void poll().finally(() => on && setRound((n) => n + 1));
    }, delay.current);
    return () => {
      on = false;
      clearTimeout(timer);
    };
  }, [active, round, poll]);
}

/** "about 2 minutes", "about 40 seconds": an estimate is not a countdown to the second. */
function roughly(seconds: number): string {
  if (seconds < 10) return 'a few seconds';
  if (seconds < 60) return `about ${Math.round(seconds / 10) * 10} seconds`;
  const minutes = Math.round(seconds / 60);
  return `about ${minutes} minute${minutes === 1 ? '' : 's'}`;
}

export function JobProgress({ r }: { r: Recording }) {
  // When this answer arrived: elapsed time goes on between two reads.
  // eslint-disable-next-line react-hooks/exhaustive-deps -- a new answer (r) is what restarts the clock
  const readAt = useMemo(() => Date.now(), [r]);
  const [now, setNow] = useState(readAt);
  useEffect(() => {
    if (r.status !== 'processing') return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [r.status]);
  const drift = Math.max(0, (now - readAt) / 1000);
  const percent = Math.round(r.progress * 100);
  const stage = r.stage ? STAGE_TEXT[r.stage] : undefined;
  const elapsed = typeof r.elapsedSeconds === 'number' ? r.elapsedSeconds + drift : null;
  const left = typeof r.remainingSeconds === 'number' ? Math.max(0, r.remainingSeconds - drift) : null;

  if (r.status === 'queued')
    return (
      <div className="job-progress">
        <p>
          <span className="job-stage">{STATUS_TEXT.queued}…</span>
        </p>
      </div>
    );
  return (
    <div className="job-progress">
      <p>
        <span className="job-stage">
          {STATUS_TEXT.processing}
          {stage && ` · ${stage}`}
        </span>{' '}
        <span className="job-percent">{percent}%</span>
      </p>
      <progress max={1} value={r.progress} aria-label="Transcription progress">
        {percent}%
      </progress>
      {elapsed !== null && (
        <p className="meta job-time">
          Elapsed {clock(elapsed)}
          {left !== null && ` · ${roughly(left)} left`}
        </p>
      )}
    </div>
  );
}

/**
 * Announced (role="status", polite) when a job this page showed moving ends; empty otherwise.
 * The element is always there: a live region added together with its text is often not read.
 */
export function FinishNotice({ status }: { status: Recording['status'] | undefined }) {
  const previous = useRef(status);
  const [notice, setNotice] = useState('');
  useEffect(() => {
    const was = previous.current;
    previous.current = status;
    if (was !== 'queued' && was !== 'processing') return;
    if (status === 'done') setNotice('Transcription finished: the transcript is ready below.');
    else if (status === 'failed') setNotice('Transcription failed.');
  }, [status]);
  return (
    <p role="status" className={notice ? 'notice-box' : 'visually-hidden'}>
      {notice}
    </p>
  );
}
