import { useRef, useState } from 'react';
import { uploadRecording } from '../api-upload';
import { errorText } from '../format';

/**
 * Upload: drop a file on the zone or pick one, optional title, a real progress bar (XMLHttpRequest
 * upload events) and Cancel. The zone is also the label's neighbour, so keyboard users pick a file
 * with the button and never need to drag.
 */
export function UploadPanel({ onUploaded, bare = false }: { onUploaded: () => void; bare?: boolean }) {
  const [file, setFile] = useState<File | null>(null);
  const [title, setTitle] = useState('');
  // Whether the title is the person's own: only then does choosing another file leave it alone.
  const [titleTyped, setTitleTyped] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [refused, setRefused] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const abort = useRef<AbortController | null>(null);

  function pick(f: File | undefined) {
    if (!f) return;
    // A drop (or a picker set to "All files") can bring anything; a refused file changes
    // nothing, so the previous choice and its title stay as they were.
    if (!looksLikeAudio(f)) {
      setRefused(`${f.name} is not an audio file. Choose a WAV, FLAC, Ogg, MP3, M4A or WebM file.`);
      return;
    }
    setFile(f);
    setError(null);
    setRefused(null);
    if (!titleTyped) setTitle(f.name.replace(/\.[^.]+$/, ''));
  }

  async function start() {
    if (!file) return;
    abort.current = new AbortController();
    setProgress(0);
    setError(null);
    try {
      await uploadRecording(file, title, setProgress, abort.current.signal);
      setFile(null);
      setTitle('');
      setTitleTyped(false);
      if (input.current) input.current.value = '';
      onUploaded();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setProgress(null);
    }
  }

  return (
    // Bare inside the phone's upload drawer, whose own heading names it.
    <section className={bare ? 'upload-bare' : 'card'} aria-labelledby={bare ? undefined : 'upload-heading'}>
      {!bare && <h2 id="upload-heading">Upload a recording</h2>}
      <div
        className={`dropzone${dragging ? ' dragging' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          pick(e.dataTransfer.files[0]);
        }}
      >
        <p>Drag an audio file here (WAV, FLAC, Ogg, MP3, M4A, WebM), or</p>
        <input
          ref={input}
          id="upload-file"
          className="visually-hidden"
          type="file"
          accept="audio/*,video/webm,.wav,.flac,.ogg,.mp3,.m4a,.webm"
          onChange={(e) => pick(e.target.files?.[0])}
        />
        <label htmlFor="upload-file" className="button">
          Choose a file
        </label>
        {file && <p className="meta">Selected: {file.name}</p>}
      </div>
      {refused && (
        <p className="error" role="alert">
          {refused}
        </p>
      )}
      <label htmlFor="upload-title">Title (optional)</label>
      <input
        id="upload-title"
        value={title}
        maxLength={300}
        onChange={(e) => {
          setTitle(e.target.value);
          // Emptied, it follows the next file again.
          setTitleTyped(e.target.value !== '');
        }}
      />
      {progress !== null ? (
        <div className="upload-progress">
          <label htmlFor="upload-bar">Uploading… {Math.round(progress * 100)}%</label>
          <progress id="upload-bar" max={1} value={progress} />
          <button type="button" onClick={() => abort.current?.abort()}>
            Cancel
          </button>
        </div>
      ) : (
        <button type="button" className="primary" disabled={!file} onClick={() => void start()}>
          Upload and transcribe
        </button>
      )}
      {error && (
        <p className="error" role="alert">
          Upload failed: {error}
        </p>
      )}
    </section>
  );
}

/** What the file input's `accept` lists: audio of any kind, WebM, or one of those extensions. */
function looksLikeAudio(f: File): boolean {
  if (f.type.startsWith('audio/') || f.type === 'video/webm') return true;
  return /\.(wav|flac|ogg|oga|opus|mp3|m4a|webm)$/i.test(f.name);
}
