import { useState } from 'react';
import { exportTranscript } from '../api-recordings';
import { errorText } from '../format';

const EXPORTS = [
  { format: 'txt', label: 'Plain text (.txt)' },
  { format: 'srt', label: 'Subtitles (.srt)' },
  { format: 'vtt', label: 'WebVTT (.vtt)' },
  { format: 'json', label: 'JSON (.json)' },
  { format: 'docx', label: 'Word (.docx)' },
] as const;

/** The export menu: each format fetched with the token and saved through a blob: link. */
export function ExportMenu({ id, title }: { id: string; title: string }) {
  const [error, setError] = useState<string | null>(null);
  async function download(format: (typeof EXPORTS)[number]['format']) {
    setError(null);
    try {
      // The export needs the bearer token, so fetch it and hand the browser a blob: URL.
      const blob = await exportTranscript(id, format);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `${title.replace(/[^\w .-]+/g, '_')}.${format}`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setError(errorText(err));
    }
  }
  return (
    <details className="menu">
      <summary>Export</summary>
      <ul>
        {EXPORTS.map((e) => (
          <li key={e.format}>
            <button type="button" onClick={() => void download(e.format)}>
              {e.label}
            </button>
          </li>
        ))}
      </ul>
      {error && (
        <p className="error" role="alert">
          Export failed: {error}
        </p>
      )}
    </details>
  );
}
