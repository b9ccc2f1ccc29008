import { useEffect } from 'react';
import type { AudioControl } from './recording-player';

const RATES = [0.75, 1, 1.25, 1.5, 2] as const;
const SKIP_SECONDS = 5;

/**
 * Where a shortcut key must keep its own meaning: typing in a field (Space and the arrows move
 * the caret there), or, for Space, pressing the focused control (a button, link, menu). The
 * native player handles both itself when it has focus.
 */
function ownsKey(target: EventTarget | null, key: string): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (/^(INPUT|TEXTAREA|SELECT|AUDIO|VIDEO)$/.test(target.tagName)) return true;
  return key === ' ' && /^(BUTTON|A|SUMMARY)$/.test(target.tagName);
}

/**
 * The audio bar: sticky at the bottom of the transcript, so pausing, seeking and slowing down
 * stay in reach while reading a long transcript. The native controls (play/pause, scrubber) get
 * a real width (a percentage width inside a shrink-to-fit box collapsed them to 0 px), beside
 * ±5 s buttons and a speed choice. Keys, when focus is not in a field: Space plays and pauses,
 * ← and → move 5 s.
 */
export function AudioPlayer({ audio }: { audio: AudioControl }) {
  const { state, toggle, skip } = audio;

  useEffect(() => {
    if (state !== 'ready') return;
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey || e.shiftKey || ownsKey(e.target, e.key)) return;
      if (e.key === ' ' && !e.repeat) toggle();
      else if (e.key === 'ArrowLeft') skip(-SKIP_SECONDS);
      else if (e.key === 'ArrowRight') skip(SKIP_SECONDS);
      else return;
      e.preventDefault(); // Space and the arrows would otherwise scroll the page
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [state, toggle, skip]);

  if (state === 'checking') return null;
  if (state === 'absent')
    return <p className="meta">Audio is not kept for this recording (your organization's policy).</p>;
  return (
    <div className="player" role="group" aria-label="Audio player">
      {state === 'error' && (
        <span className="error-inline">
          The audio could not be played.{' '}
          <button type="button" className="link" onClick={audio.retry}>
            Try again
          </button>
        </span>
      )}
      {/* preload="metadata": the duration and the first bytes only; the rest streams as it plays. */}
      <audio
        ref={audio.ref}
        controls
        preload="metadata"
        hidden={state !== 'ready'}
        src={audio.url ?? undefined}
      >
        Your browser cannot play this audio.
      </audio>
      {state === 'ready' && (
        <div className="player-controls">
          <button type="button" onClick={() => skip(-SKIP_SECONDS)} aria-keyshortcuts="ArrowLeft">
            Back 5 s
          </button>
          <button type="button" onClick={() => skip(SKIP_SECONDS)} aria-keyshortcuts="ArrowRight">
            Forward 5 s
          </button>
          <label htmlFor="player-rate">Speed</label>
          <select id="player-rate" value={audio.rate} onChange={(e) => audio.setRate(Number(e.target.value))}>
            {RATES.map((r) => (
              <option key={r} value={r}>
                {r}×
              </option>
            ))}
          </select>
          <span className="hint player-hint">Space plays or pauses, ← → move 5 s</span>
        </div>
      )}
    </div>
  );
}
