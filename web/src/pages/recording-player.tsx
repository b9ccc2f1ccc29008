import { useCallback, useEffect, useRef, useState } from 'react';
import { getBlob, request } from '../api';

export type AudioState = 'checking' | 'absent' | 'available' | 'loading' | 'ready' | 'error';

export interface AudioControl {
  state: AudioState;
  ref: React.RefObject<HTMLAudioElement | null>;
  url: string | null;
  /** Current play position (seconds), updated as the audio plays or is sought. */
  time: number;
  playing: boolean;
  load: () => Promise<void>;
  /** Seeks and plays; loads the kept audio first when it is not loaded yet. */
  playFrom: (seconds: number) => void;
}

/**
 * GET /audio needs the bearer token, which an <audio src> cannot send (and the access token is
 * never put in a cookie or URL). So the panel checks with a one-byte range request whether the
 * audio is kept, and on request fetches it with the token and plays it from a blob: URL (the CSP
 * allows media-src blob:). Fine for consultation-length files; very long ones would want a
 * short-lived signed URL, which the API does not offer yet.
 */
export function useAudio(base: string): AudioControl {
  const [state, setState] = useState<AudioState>('checking');
  const [url, setUrl] = useState<string | null>(null);
  const [time, setTime] = useState(0);
  const [playing, setPlaying] = useState(false);
  const ref = useRef<HTMLAudioElement>(null);
  // A click on a word before the audio was loaded: where to start once it is.
  const pending = useRef<number | null>(null);

  useEffect(() => {
    let live = true;
    void request(`${base}/audio`, { headers: { range: 'bytes=0-0' } }).then(
      (res) => live && setState(res.ok ? 'available' : 'absent'),
      () => live && setState('absent'),
    );
    return () => {
      live = false;
    };
  }, [base]);

  useEffect(() => () => void (url && URL.revokeObjectURL(url)), [url]);

  const load = useCallback(async () => {
    setState('loading');
    try {
      setUrl(URL.createObjectURL(await getBlob(`${base}/audio`)));
      setState('ready');
    } catch {
      setState('error');
    }
  }, [base]);

  const seek = (el: HTMLAudioElement, seconds: number) => {
    el.currentTime = seconds;
    setTime(seconds);
    void el.play().catch(() => undefined); // a refused autoplay still leaves it sought
  };

  // The element's events drive `time`: timeupdate fires about 4 times a second while playing.
  useEffect(() => {
    const el = ref.current;
    if (!el || !url) return;
    const onTime = () => setTime(el.currentTime);
    const onPlay = () => setPlaying(true);
    const onPause = () => setPlaying(false);
    const onReady = () => {
      if (pending.current !== null) {
        seek(el, pending.current);
        pending.current = null;
      }
    };
    el.addEventListener('timeupdate', onTime);
    el.addEventListener('seeked', onTime);
    el.addEventListener('play', onPlay);
    el.addEventListener('pause', onPause);
    el.addEventListener('loadedmetadata', onReady);
    if (el.readyState >= 1) onReady();
    return () => {
      el.removeEventListener('timeupdate', onTime);
      el.removeEventListener('seeked', onTime);
      el.removeEventListener('play', onPlay);
      el.removeEventListener('pause', onPause);
      el.removeEventListener('loadedmetadata', onReady);
    };
  }, [url]);

  const playFrom = useCallback(
    (seconds: number) => {
      const el = ref.current;
      if (state === 'ready' && el) seek(el, seconds);
      else if (state === 'available' || state === 'error') {
        pending.current = seconds;
        void load();
      }
    },
    [state, load],
  );

  return { state, ref, url, time, playing, load, playFrom };
}

export function AudioPlayer({ audio }: { audio: AudioControl }) {
  const { state } = audio;
  if (state === 'checking') return null;
  if (state === 'absent')
    return <p className="meta">Audio is not kept for this recording (your organization's policy).</p>;
  return (
    <div className="player">
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
    </div>
  );
}
