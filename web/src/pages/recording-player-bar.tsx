import { useEffect } from 'react';
import type { AudioControl } from './recording-player';

const RATES = [0.75, 1, 1.25, 1.5, 2] as const;

/**
 * Where Space must keep its own meaning: typing in a field, or pressing the focused control
 * (a button, link, menu or the native player, which toggles itself).
 */
function ownsSpace(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  return /^(INPUT|TEXTAREA|SELECT|BUTTON|A|SUMMARY|AUDIO|VIDEO)$/.test(target.tagName);
}

/**
 * The audio bar: sticky at the bottom of the transcript, so pausing, seeking and slowing down
 * stay in reach while reading a long transcript. The native controls get a real width (a
 * percentage width inside a shrink-to-fit box collapsed them to 0 px), beside ±5 s buttons and a
 * speed choice; Space plays and pauses when focus is not in a field or on a control.
 */
export function AudioPlayer({ audio }: { audio: AudioControl }) {
  const { state, toggle } = audio;

  useEffect(() => {
    if (state !== 'ready') return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== ' ' || e.repeat || e.ctrlKey || e.metaKey || e.altKey || ownsSpace(e.target)) return;
      e.preventDefault(); // Space would otherwise scroll the page
      toggle();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [state, toggle]);

  if (state === 'checking') return null;
  if (state === 'absent')
    return <p className="meta">Audio is not kept for this recording (your organization's policy).</p>;
  return (
    <div className="player" role="group" aria-label="Audio player">
      {state === 'available' && (
        <button type="button" onClick={() => void audio.load()}>
          Load audio
        </button>
      )}
      {state === 'loading' && <span aria-busy="true">Loading audio…</span>}
      {state === 'error' && (
        <span className="error-inline">
          The audio could not be loaded.{' '}
          <button type="button" className="link" onClick={() => void audio.load()}>
            Try again
          </button>
        </span>
      )}
      <audio ref={audio.ref} controls hidden={state !== 'ready'} src={audio.url ?? undefined}>
        Your browser cannot play this audio.
      </audio>
      {state === 'ready' && (
        <div className="player-controls">
          <button type="button" onClick={() => audio.skip(-5)}>
            Back 5 s
          </button>
          <button type="button" onClick={() => audio.skip(5)}>
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
          <span className="hint player-hint">Space plays or pauses</span>
        </div>
      )}
    </div>
  );
}
