import { useEffect, useState } from 'react';
import { ApiError, getMe } from '../api';
import { retryRecording } from '../api-recordings';
import { errorText } from '../format';

/**
 * "Retry transcription" under a failed recording, for owners and admins (POST …/:id/retry): a
 * failure whose cause has passed (an outage, a missing engine) is queued again while the
 * recording's audio is still stored. Members do not see it.
 */
export function RetryFailed({ id, onQueued }: { id: string; onQueued: () => void }) {
  const [admin, setAdmin] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);

  useEffect(() => {
    getMe().then(
      (me) => setAdmin(me.role === 'owner' || me.role === 'admin'),
      () => setAdmin(false),
    );
  }, []);

  if (!admin) return null;
  const retry = async () => {
    setBusy(true);
    setMessage(null);
    try {
      await retryRecording(id);
      onQueued();
    } catch (err) {
      setMessage(
        err instanceof ApiError && err.status === 409
          ? 'This recording cannot be retried: its audio is no longer stored. Upload the file again.'
          : errorText(err),
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <p>
      <button type="button" onClick={() => void retry()} disabled={busy}>
        Retry transcription
      </button>
      {message && (
        <span className="error" role="alert">
          {' '}
          {message}
        </span>
      )}
    </p>
  );
}
