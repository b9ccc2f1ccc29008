import { useEffect, useRef, useState } from 'react';
import { clock } from '../format';
import { WatchSocket, type WatchView } from '../live/watch-socket';

/**
 * The live transcript of a recording, through a viewer socket: final segments with their speaker,
 * the utterances still being spoken shown apart (and replaced by their final), and a polite live
 * region that reads each new final segment once (partials are never announced: they change).
 */
export function useWatch(id: string): WatchView {
  const [view, setView] = useState<WatchView>({
    state: 'connecting',
    segments: [],
    latest: null,
    partials: [],
    stopStatus: null,
    stopStage: null,
    notice: null,
    error: null,
  });
  useEffect(() => {
    const socket = new WatchSocket(id, setView);
    return () => socket.close();
  }, [id]);
  return view;
}

export function LiveTranscript({ view }: { view: WatchView }) {
  const list = useRef<HTMLOListElement>(null);
  const last = view.latest;
  const count = view.segments.length + view.partials.length;

  // Follow the newest line, unless the reader scrolled up to read an earlier one.
  const pinned = useRef(true);
  useEffect(() => {
    const el = list.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [count, last?.id]);

  return (
    <section className="card live-transcript" aria-labelledby="live-transcript-heading">
      <h2 id="live-transcript-heading">Live transcript</h2>
      {view.notice && <p className="meta">{view.notice}</p>}
      {count === 0 ? (
        <p className="empty">
          {view.state === 'stopped' ? 'No speech was recognised live.' : 'Waiting for speech…'}
        </p>
      ) : (
        <ol
          className="segments live-segments"
          ref={list}
          tabIndex={0}
          aria-label="Transcript so far"
          onScroll={(e) => {
            const el = e.currentTarget;
            pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          }}
        >
          {view.segments.map((s) => (
            <li key={s.id} className="segment live-final">
              <div className="segment-head">
                <span className="time">{clock(s.start)}</span>
                <span className="segment-speaker">{s.speaker}</span>
              </div>
              <p className="segment-text">{s.text}</p>
            </li>
          ))}
          {view.partials.map((p) => (
            <li key={p.id} className="segment live-partial">
              <div className="segment-head">
                <span className="time">{clock(p.start)}</span>
                <span className="segment-speaker">{p.speaker}</span>
                <span className="badge">speaking…</span>
              </div>
              <p className="segment-text">{p.text}</p>
            </li>
          ))}
        </ol>
      )}
      <p className="visually-hidden" aria-live="polite" aria-atomic="true">
        {last ? `${last.speaker}: ${last.text}` : ''}
      </p>
    </section>
  );
}
