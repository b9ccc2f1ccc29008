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
  /** Plays when paused, pauses when playing (the Space key). */
  toggle: () => void;
  /** Moves the play position by `delta` seconds, kept within the audio. */
  skip: (delta: number) => void;
  rate: number;
  setRate: (rate: number) => void;
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
  const [rate, setRateState] = useState(1);
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
    // A new blob: URL resets the element's rate; keep the one the listener chose.
    el.defaultPlaybackRate = el.playbackRate = rate;
    if (el.readyState >= 1) onReady();
    return () => {
      el.removeEventListener('timeupdate', onTime);
      el.removeEventListener('seeked', onTime);
      el.removeEventListener('play', onPlay);
      el.removeEventListener('pause', onPause);
      el.removeEventListener('loadedmetadata', onReady);
    };
    // Not re-run on rate changes: setRate applies those to the element itself.
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

  const toggle = useCallback(() => {
    const el = ref.current;
    if (!el || state !== 'ready') return;
    if (el.paused) void el.play().catch(() => undefined);
    else el.pause();
  }, [state]);

  const skip = useCallback((delta: number) => {
    const el = ref.current;
    if (!el) return;
    const end = Number.isFinite(el.duration) ? el.duration : Infinity;
    el.currentTime = Math.min(end, Math.max(0, el.currentTime + delta));
    setTime(el.currentTime);
  }, []);

  const setRate = useCallback((next: number) => {
    setRateState(next);
    const el = ref.current;
    if (el) el.defaultPlaybackRate = el.playbackRate = next;
  }, []);

  return { state, ref, url, time, playing, load, playFrom, toggle, skip, rate, setRate };
}
