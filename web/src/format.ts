/** 83.4 → "1:23"; 3725 → "1:02:05". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function when(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * An error as a sentence for the person. A fetch that never reached the server rejects with a
 * TypeError whose message ("Failed to fetch") means nothing to them: it becomes what to do.
 */
export function errorText(err: unknown): string {
  if (err instanceof TypeError && /fetch|network|load failed/i.test(err.message))
    return 'Sotto could not be reached. Check your connection and try again.';
  return err instanceof Error ? err.message : 'Something went wrong. Try again.';
}
