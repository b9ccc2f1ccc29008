import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from '../api';
import { audioTicket } from '../api-recordings';

export type AudioState = 'checking' | 'absent' | 'ready' | 'error';

export interface AudioControl {
  state: AudioState;
  ref: React.RefObject<HTMLAudioElement | null>;
  url: string | null;
  /** Current play position (seconds), updated as the audio plays or is sought. */
  time: number;
  playing: boolean;
  /** Asks for a fresh source after an error ("Try again"). */
  retry: () => void;
  /** Seeks and plays. */
  playFrom: (seconds: number) => void;
  /** Plays when paused, pauses when playing (the Space key). */
  toggle: () => void;
  /** Moves the play position by `delta` seconds, kept within the audio. */
  skip: (delta: number) => void;
  rate: number;
  setRate: (rate: number) => void;
}

/** Two failed sources this close together are a real error, not an expired ticket. */
const RENEW_WINDOW_MS = 10_000;

/**
 * The <audio> element streams kept audio with HTTP ranges from a ticket URL (POST
 * …/audio-ticket): it cannot send the bearer token, and the token never goes into a URL. The
 * browser fetches only what it plays or seeks to, so a long recording is never held whole in
 * memory. A ticket lives five minutes; when the element's next request is refused (a seek after a
 * long pause), it gets a new URL and goes back to where it was, playing if it was.
 */
export function useAudio(id: string, startAt?: number | null): AudioControl {
  const [state, setState] = useState<AudioState>('checking');
  const [url, setUrl] = useState<string | null>(null);
  const [time, setTime] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [rate, setRateState] = useState(1);
  const ref = useRef<HTMLAudioElement>(null);
  // Where to continue (and whether to play) once a new source has its metadata.
  // At first, a search hit's moment (search-hit.ts): sought to, not played.
  const resume = useRef<{ at: number; play: boolean } | null>(
    startAt != null ? { at: startAt, play: false } : null,
  );
  const lastRenew = useRef(0);
  // Read by the error handler, which must not re-subscribe on every play/pause.
  const playingRef = useRef(false);
  playingRef.current = playing;

  const fetchUrl = useCallback(async () => {
    try {
      setUrl((await audioTicket(id)).url);
      setState('ready');
    } catch (err) {
      setState(err instanceof ApiError && err.status === 404 ? 'absent' : 'error');
    }
  }, [id]);

  useEffect(() => {
    setState('checking');
    void fetchUrl();
  }, [fetchUrl]);

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
      const r = resume.current;
      if (!r) return;
      resume.current = null;
      el.currentTime = r.at;
      setTime(r.at);
      if (r.play) void el.play().catch(() => undefined);
    };
    const onError = () => {
      // Most likely the ticket expired. Once: a new URL and back to the same place; twice in a
      // row: the audio itself is the problem.
      const now = Date.now();
      if (now - lastRenew.current < RENEW_WINDOW_MS) {
        setState('error');
        return;
      }
      lastRenew.current = now;
      resume.current ??= { at: el.currentTime, play: !el.paused || playingRef.current };
      void fetchUrl();
    };
    el.addEventListener('timeupdate', onTime);
    el.addEventListener('seeked', onTime);
    el.addEventListener('play', onPlay);
    el.addEventListener('pause', onPause);
    el.addEventListener('loadedmetadata', onReady);
    el.addEventListener('error', onError);
    // A new source resets the element's rate; keep the one the listener chose.
    el.defaultPlaybackRate = el.playbackRate = rate;
    if (el.readyState >= 1) onReady();
    return () => {
      el.removeEventListener('timeupdate', onTime);
      el.removeEventListener('seeked', onTime);
      el.removeEventListener('play', onPlay);
      el.removeEventListener('pause', onPause);
      el.removeEventListener('loadedmetadata', onReady);
      el.removeEventListener('error', onError);
    };
    // Not re-run on rate changes: setRate applies those to the element itself.
    // eslint-disable-next-line react-hooks/exhaustive-deps -- rate is read once per new source, on purpose
  }, [url, fetchUrl]);

  const retry = useCallback(() => {
    lastRenew.current = Date.now();
    setState('checking');
    void fetchUrl();
  }, [fetchUrl]);

  const playFrom = useCallback(
    (seconds: number) => {
      const el = ref.current;
      if (state === 'ready' && el) seek(el, seconds);
      else if (state === 'error') {
        resume.current = { at: seconds, play: true };
        retry();
      }
    },
    [state, retry],
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

  return { state, ref, url, time, playing, retry, playFrom, toggle, skip, rate, setRate };
}
