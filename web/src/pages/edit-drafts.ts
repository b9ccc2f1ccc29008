/**
 * Unsaved segment edits, kept in sessionStorage so a correction survives the session ending
 * under it (revoked on another device, expired): Save then lands on the log-in page, and after
 * logging in again the recording reopens with the edit as it was typed. sessionStorage, never
 * localStorage: it belongs to this tab and is gone when the tab closes. A draft is removed as
 * soon as it is saved or cancelled, every draft of the tab when someone logs out here
 * (clearDrafts, from api.ts), and a draft is never shown to another account signing in on the
 * same tab (it is dropped instead): confidential text must not outlive the person who typed it.
 *
 * Beside the text, a draft remembers what it was based on (the transcript revision and a
 * fingerprint of the segment's saved text), so a draft restored after someone else changed that
 * segment is shown as a conflict instead of silently overwriting their version.
 */
const PREFIX = 'sotto.edit-draft.';
const BASE_PREFIX = 'sotto.edit-draft-base.';

export interface DraftBase {
  /** The account that typed it (the access token's subject). */
  owner: string;
  revision: number;
  /** Fingerprint of the segment text the edit started from (not the text itself). */
  fingerprint: string;
}

export interface Draft {
  text: string;
  base: DraftBase | null;
}

const keyOf = (recordingId: string, segmentId: string) => `${PREFIX}${recordingId}.${segmentId}`;
const baseKeyOf = (recordingId: string, segmentId: string) => `${BASE_PREFIX}${recordingId}.${segmentId}`;

/** FNV-1a, 32 bits: enough to tell whether a segment's text changed, and reveals nothing readable. */
export function fingerprint(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `${text.length}:${h.toString(16)}`;
}

// Storage can throw (disabled, full, private modes); a draft is a convenience, never an error.
/** The draft `userId` typed for this segment; anyone else's is dropped, never returned. */
export function readDraft(recordingId: string, segmentId: string, userId: string | null): Draft | null {
  try {
    const text = sessionStorage.getItem(keyOf(recordingId, segmentId));
    if (text === null) return null;
    const raw = sessionStorage.getItem(baseKeyOf(recordingId, segmentId));
    const base = raw ? (JSON.parse(raw) as Partial<DraftBase>) : null;
    if (
      !base ||
      typeof base.revision !== 'number' ||
      typeof base.fingerprint !== 'string' ||
      !userId ||
      base.owner !== userId
    ) {
      dropDraft(recordingId, segmentId);
      return null;
    }
    return { text, base: base as DraftBase };
  } catch {
    return null;
  }
}

/** `base`: the revision and saved text the edit started from (kept from the first keystroke). */
export function keepDraft(
  recordingId: string,
  segmentId: string,
  text: string,
  base: { owner: string | null; revision: number; text: string },
): void {
  // Without a known account there is nobody to give it back to: keep nothing.
  if (!base.owner) return;
  try {
    sessionStorage.setItem(keyOf(recordingId, segmentId), text);
    const k = baseKeyOf(recordingId, segmentId);
    if (sessionStorage.getItem(k) === null) sessionStorage.setItem(k, baseOf({ ...base, owner: base.owner }));
  } catch {
    // Nothing to do: the edit is still on screen.
  }
}

/** The person chose their draft over a newer saved version: it is now based on that version. */
export function rebaseDraft(
  recordingId: string,
  segmentId: string,
  base: { owner: string; revision: number; text: string },
): void {
  try {
    sessionStorage.setItem(baseKeyOf(recordingId, segmentId), baseOf(base));
  } catch {
    // As above.
  }
}

function baseOf(b: { owner: string; revision: number; text: string }): string {
  const base: DraftBase = { owner: b.owner, revision: b.revision, fingerprint: fingerprint(b.text) };
  return JSON.stringify(base);
}

export function dropDraft(recordingId: string, segmentId: string): void {
  try {
    sessionStorage.removeItem(keyOf(recordingId, segmentId));
    sessionStorage.removeItem(baseKeyOf(recordingId, segmentId));
  } catch {
    // As above.
  }
}

/**
 * Whether a restored draft conflicts with the transcript as it is now: the transcript moved on
 * since the draft's base and this segment's saved text is no longer the one the edit started
 * from. (A rename of a speaker meanwhile moves the revision but is no conflict.)
 */
export function draftConflicts(draft: Draft, revision: number, savedText: string): boolean {
  if (!draft.base) return false;
  return draft.base.revision !== revision && draft.base.fingerprint !== fingerprint(savedText);
}

/** Every draft of this tab (log out). */
export function clearDrafts(): void {
  try {
    for (const k of Object.keys(sessionStorage))
      if (k.startsWith(PREFIX) || k.startsWith(BASE_PREFIX)) sessionStorage.removeItem(k);
  } catch {
    // As above.
  }
}
