/**
 * Recording calls of the panel beyond what api.ts has always exported: the list with its
 * filters, search and cursor, the transcript with word timings and its machine original, and
 * who the caller is (to offer the owner filter only to those who see everyone's recordings).
 */
import { del, getJson, sendJson, type Recording, type RecordingStatus, type Segment } from './api';

export interface ListedRecording extends Recording {
  ownerId: string;
  match?: { title: boolean; snippets: { segmentId: string; start: number; text: string }[] };
}

export interface ListFilters {
  q: string;
  status: RecordingStatus | '';
  /** '' anyone, 'me', or a user id. */
  owner: string;
  /** yyyy-mm-dd from <input type="date">, or ''. */
  from: string;
  to: string;
}

export const NO_FILTERS: ListFilters = { q: '', status: '', owner: '', from: '', to: '' };

export interface ListPage {
  items: ListedRecording[];
  next: string | null;
  /** Search only: recordings this request scanned, and all the filters let through. */
  scan?: { scanned: number; total: number };
}

export const PAGE_SIZE = 25;

export function listRecordings(f: ListFilters, after?: string | null, limit = PAGE_SIZE): Promise<ListPage> {
  const p = new URLSearchParams({ limit: String(limit) });
  if (f.q.trim()) p.set('q', f.q.trim());
  if (f.status) p.set('status', f.status);
  if (f.owner) p.set('owner', f.owner);
  // Dates as the user picked them; the server reads a bare `to` date as the end of that day.
  if (f.from) p.set('from', f.from);
  if (f.to) p.set('to', f.to);
  if (after) p.set('after', after);
  return getJson(`/api/v1/recordings?${p.toString()}`);
}

export function deleteRecording(id: string): Promise<void> {
  return del(`/api/v1/recordings/${encodeURIComponent(id)}`);
}

export interface Word {
  w: string;
  start: number;
  end: number;
  conf: number;
}

export interface TimedSegment extends Segment {
  words: Word[];
}

export interface TimedTranscript {
  revision: number;
  version: 'current' | 'original';
  segments: TimedSegment[];
  speakers: { id: string; name: string }[];
}

export function getTranscript(base: string, version: 'current' | 'original'): Promise<TimedTranscript> {
  return getJson(`${base}/transcript${version === 'original' ? '?version=original' : ''}`);
}

export interface Member {
  id: string;
  name: string;
  email: string;
}

/** The caller's role, and the organization's members when the caller sees every recording. */
export async function ownerChoices(): Promise<{ seesAll: boolean; me: string; members: Member[] }> {
  const me = await getJson<{ user: { id: string }; role: string }>('/api/v1/me');
  const seesAll = me.role === 'owner' || me.role === 'admin' || me.role === 'support';
  if (!seesAll) return { seesAll, me: me.user.id, members: [] };
  try {
    const members = await getJson<Member[]>('/api/v1/org/members?limit=200');
    return { seesAll, me: me.user.id, members };
  } catch {
    // The filter still offers "me" and "anyone" without the list.
    return { seesAll, me: me.user.id, members: [] };
  }
}

/** A short-lived URL to stream kept audio from (the <audio> element cannot send the token). */
export interface AudioTicket {
  url: string;
  expiresIn: number;
}

/** POST …/audio-ticket; 404 (ApiError) when the recording keeps no audio the caller may play. */
export function audioTicket(base: string): Promise<AudioTicket> {
  return sendJson('POST', `${base}/audio-ticket`, {});
}
