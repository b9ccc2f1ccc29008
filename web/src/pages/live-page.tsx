import { useEffect, useRef, useState } from 'react';
import { createLiveRecording } from '../api-live';
import { errorText } from '../format';
import { LiveSession, runningSession, type SourceSpec } from '../live/live-session';
import { navigate, onLinkClick } from '../router';

export { LiveRecordingPage } from './live-recording-page';

/**
 * Start a live recording: a title, the microphone (listed by name once the browser has granted
 * access: before that, device labels are empty), and optionally a browser tab's audio for an
 * online meeting, streamed as a second participant ("Meeting") beside the microphone's.
 */
type Phase = 'idle' | 'asking' | 'starting';

const LABEL_RE = /^[^\p{Cc}]{1,60}$/u;
const MEETING = 'Meeting';

function stopAll(stream: MediaStream | null): void {
  for (const t of stream?.getTracks() ?? []) t.stop();
}

async function listMics(media: MediaDevices | undefined): Promise<MediaDeviceInfo[]> {
  const all = (await media?.enumerateDevices()) ?? [];
  return all.filter((d) => d.kind === 'audioinput');
}

export function LiveStartPage() {
  const media = typeof navigator !== 'undefined' ? navigator.mediaDevices : undefined;
  const [title, setTitle] = useState('');
  const [me, setMe] = useState('Me');
  const [mics, setMics] = useState<MediaDeviceInfo[] | null>(null);
  const [checked, setChecked] = useState(false);
  const [micId, setMicId] = useState('');
  const [tab, setTab] = useState<MediaStream | null>(null);
  const [phase, setPhase] = useState<Phase>('idle');
  const [error, setError] = useState<string | null>(null);
  const running = runningSession();

  // Access granted earlier (this site remembered): the names are readable without asking.
  useEffect(() => {
    void listMics(media)
      .then((found) => {
        if (found.some((d) => d.label)) {
          setMics(found);
          setMicId(found[0]?.deviceId ?? '');
        }
      })
      .finally(() => setChecked(true));
  }, [media]);

  // Tab sharing ends with this screen unless it was handed to a started recording.
  const tabRef = useRef<MediaStream | null>(null);
  tabRef.current = tab;
  useEffect(() => () => stopAll(tabRef.current), []);

  async function allowMic() {
    setError(null);
    setPhase('asking');
    try {
      const probe = await media!.getUserMedia({ audio: true });
      stopAll(probe);
      const found = await listMics(media);
      setMics(found);
      setMicId((id) => id || (found[0]?.deviceId ?? ''));
    } catch (err) {
      setError(
        err instanceof DOMException && err.name === 'NotAllowedError'
          ? 'The browser was not allowed to use the microphone. Allow it in the address bar’s site settings, then try again.'
          : `No microphone could be opened: ${errorText(err)}`,
      );
    } finally {
      setPhase('idle');
    }
  }

  async function addTab() {
    setError(null);
    try {
      // Chrome shares a tab's audio only alongside its video; the video is dropped at once.
      const s = await media!.getDisplayMedia({ video: true, audio: true });
      for (const t of s.getVideoTracks()) t.stop();
      if (s.getAudioTracks().length === 0) {
        setError('No audio was shared. Choose a browser tab and tick “Share tab audio”.');
        return;
      }
      s.getAudioTracks()[0]!.addEventListener('ended', () => setTab(null));
      setTab(s);
    } catch (err) {
      if (!(err instanceof DOMException && err.name === 'NotAllowedError'))
        setError(`The tab’s audio could not be shared: ${errorText(err)}`);
    }
  }

  async function start(e: React.FormEvent) {
    e.preventDefault();
    setError(null);
    const label = me.trim();
    if (!LABEL_RE.test(label) || (tab && label === MEETING)) {
      setError(
        `Your name in the transcript must be 1 to 60 characters${tab ? ` and not “${MEETING}”` : ''}.`,
      );
      return;
    }
    setPhase('starting');
    let mic: MediaStream | null = null;
    try {
      mic = await media!.getUserMedia({
        audio: {
          ...(micId ? { deviceId: { exact: micId } } : {}),
          echoCancellation: true,
          noiseSuppression: true,
        },
      });
      const specs: SourceSpec[] = [{ label, stream: mic }];
      if (tab) specs.push({ label: MEETING, stream: tab });
      const id = await createLiveRecording(title);
      const session = await LiveSession.start(id, specs);
      session.title = title.trim() || null;
      tabRef.current = null; // handed over: the session stops it
      navigate(`/recordings/${id}/live`);
    } catch (err) {
      stopAll(mic);
      setError(`The live recording could not start: ${errorText(err)}`);
      setPhase('idle');
    }
  }

  if (!media?.getUserMedia)
    return (
      <section className="card narrow">
        <h1 tabIndex={-1}>Live recording</h1>
        <p className="error" role="alert">
          This browser offers no microphone here. Live recording needs a current browser and an https://
          address.
        </p>
      </section>
    );

  return (
    <section className="card narrow live-start">
      <h1 tabIndex={-1}>Live recording</h1>
      <p className="meta">
        Record a conversation and watch its transcript appear as people speak. When you stop, it is
        transcribed once more in full, like an upload.
      </p>
      {running && (
        <p className="live-running" role="status">
          This tab is recording “{running.title ?? 'Untitled live recording'}”.{' '}
          <a href={`/recordings/${running.id}/live`} onClick={onLinkClick}>
            Back to it
          </a>
        </p>
      )}
      <form onSubmit={(e) => void start(e)}>
        <label htmlFor="live-title">Title (optional)</label>
        <input id="live-title" value={title} maxLength={200} onChange={(e) => setTitle(e.target.value)} />

        <fieldset className="live-sources">
          <legend>Your microphone</legend>
          {!checked ? (
            <p className="meta" aria-busy="true">
              Looking for microphones…
            </p>
          ) : mics === null ? (
            <>
              <p className="meta">
                The browser asks once for access to your microphone, then lists them here.
              </p>
              <button type="button" onClick={() => void allowMic()} disabled={phase !== 'idle'}>
                {phase === 'asking' ? 'Asking…' : 'Allow microphone'}
              </button>
            </>
          ) : mics.length === 0 ? (
            <p className="error">No microphone was found. Plug one in, then reload this page.</p>
          ) : (
            <>
              <label htmlFor="live-mic">Microphone</label>
              <select id="live-mic" value={micId} onChange={(e) => setMicId(e.target.value)}>
                {mics.map((d, i) => (
                  <option key={d.deviceId || i} value={d.deviceId}>
                    {d.label || `Microphone ${i + 1}`}
                  </option>
                ))}
              </select>
            </>
          )}
          <label htmlFor="live-me">Your name in the transcript</label>
          <input id="live-me" value={me} maxLength={60} required onChange={(e) => setMe(e.target.value)} />
        </fieldset>

        {typeof media.getDisplayMedia === 'function' && (
          <fieldset className="live-sources">
            <legend>Online meeting (optional)</legend>
            {tab ? (
              <p>
                A tab’s audio will be recorded as “{MEETING}”.{' '}
                <button
                  type="button"
                  className="link"
                  onClick={() => {
                    stopAll(tab);
                    setTab(null);
                  }}
                >
                  Remove
                </button>
              </p>
            ) : (
              <>
                <p className="meta">
                  To transcribe the other side of a call held in this browser, share the meeting’s tab with
                  its audio. It is labelled “{MEETING}” in the transcript.
                </p>
                <button type="button" onClick={() => void addTab()} disabled={phase !== 'idle'}>
                  Add a browser tab’s audio
                </button>
              </>
            )}
          </fieldset>
        )}

        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={phase !== 'idle'}>
          {phase === 'starting' ? 'Starting…' : 'Start recording'}
        </button>
      </form>
    </section>
  );
}
