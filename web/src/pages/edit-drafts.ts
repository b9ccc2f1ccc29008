/**
 * Unsaved segment edits, kept in sessionStorage so a correction survives the session ending
 * under it (revoked on another device, expired): Save then lands on the log-in page, and after
 * logging in again the recording reopens with the edit as it was typed. sessionStorage, never
 * localStorage: it belongs to this tab and is gone when the tab closes. A draft is removed as
 * soon as it is saved or cancelled.
 */
const PREFIX = 'sotto.edit-draft.';

const keyOf = (recordingId: string, segmentId: string) => `${PREFIX}${recordingId}.${segmentId}`;

// Storage can throw (disabled, full, private modes); a draft is a convenience, never an error.
export function readDraft(recordingId: string, segmentId: string): string | null {
  try {
    return sessionStorage.getItem(keyOf(recordingId, segmentId));
  } catch {
    return null;
  }
}

export function keepDraft(recordingId: string, segmentId: string, text: string): void {
  try {
    sessionStorage.setItem(keyOf(recordingId, segmentId), text);
  } catch {
    // Nothing to do: the edit is still on screen.
  }
}

export function dropDraft(recordingId: string, segmentId: string): void {
  try {
    sessionStorage.removeItem(keyOf(recordingId, segmentId));
  } catch {
    // As above.
  }
}
