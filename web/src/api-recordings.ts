/**
 * Recording calls of the panel beyond what api.ts has always exported: the list with its
 * filters, search and cursor, the transcript with word timings and its machine original, and
 * who the caller is (to offer the owner filter only to those who see everyone's recordings).
 */
import { api, getMe, type Recording, type RecordingStatus, type Report } from './api';
import { unwrap, type Answer, type Body, type Query } from './api-client';

export type ListPage = Answer<'/api/v1/recordings', 'get'>;
export type ListedRecording = ListPage['items'][number];

export interface ListFilters {
  q: string;
  /** A speaker's display name: only their segments are searched ('' any speaker). */
  speaker: string;
  status: RecordingStatus | '';
  /** '' anyone, 'me', or a user id. */
  owner: string;
  /** yyyy-mm-dd from <input type="date">, or ''. */
  from: string;
  to: string;
}

export const NO_FILTERS: ListFilters = { q: '', speaker: '', status: '', owner: '', from: '', to: '' };

export const PAGE_SIZE = 25;

export function listRecordings(f: ListFilters, after?: string | null, limit = PAGE_SIZE): Promise<ListPage> {
  const query = {
    limit,
    ...(f.q.trim() ? { q: f.q.trim() } : {}),
    ...(f.speaker.trim() ? { speaker: f.speaker.trim() } : {}),
    ...(f.status ? { status: f.status } : {}),
    ...(f.owner ? { owner: f.owner } : {}),
    // Dates as the user picked them; the server reads a bare `to` date as the end of that day.
    ...(f.from ? { from: f.from } : {}),
    ...(f.to ? { to: f.to } : {}),
    ...(after ? { after } : {}),
  };
  return unwrap(api.GET('/api/v1/recordings', { params: { query } }));
}

export async function deleteRecording(id: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/recordings/{id}', { params: { path: { id } } }));
}

export type TimedTranscript = Answer<'/api/v1/recordings/{id}/transcript', 'get'>;
export type TimedSegment = TimedTranscript['segments'][number];
export type Word = TimedSegment['words'][number];

export function getTranscript(id: string, version: 'current' | 'original'): Promise<TimedTranscript> {
  return unwrap(
    api.GET('/api/v1/recordings/{id}/transcript', {
      params: { path: { id }, query: version === 'original' ? { version } : {} },
    }),
  );
}

/** The transcript edit (PATCH): the answer is the transcript as it now is. */
export function editTranscript(
  id: string,
  body: Body<'/api/v1/recordings/{id}/transcript', 'patch'>,
): Promise<TimedTranscript> {
  return unwrap(api.PATCH('/api/v1/recordings/{id}/transcript', { params: { path: { id } }, body }));
}

export const getReport = (id: string): Promise<Report> =>
  unwrap(api.GET('/api/v1/recordings/{id}/report', { params: { path: { id } } }));

export const getRecording = (id: string): Promise<Recording> =>
  unwrap(api.GET('/api/v1/recordings/{id}', { params: { path: { id } } }));

/** An export file (txt, srt, vtt, json, docx) of the transcript; the caller owns the blob. */
export const exportTranscript = (
  id: string,
  format: Query<'/api/v1/recordings/{id}/export', 'get'>['format'],
): Promise<Blob> =>
  unwrap(
    api.GET('/api/v1/recordings/{id}/export', {
      params: { path: { id }, query: { format } },
      parseAs: 'blob',
    }),
  );

/** POST …/retry (owners, admins): the failed recording is queued again. */
export async function retryRecording(id: string): Promise<void> {
  await unwrap(api.POST('/api/v1/recordings/{id}/retry', { params: { path: { id } } }));
}

export type Member = Pick<Answer<'/api/v1/org/members', 'get'>[number], 'id' | 'name' | 'email'>;

/** The caller's role, and the organization's members when the caller sees every recording. */
export async function ownerChoices(): Promise<{ seesAll: boolean; me: string; members: Member[] }> {
  const me = await getMe();
  const seesAll = me.role === 'owner' || me.role === 'admin' || me.role === 'support';
  if (!seesAll) return { seesAll, me: me.user.id, members: [] };
  try {
    const members = await unwrap(api.GET('/api/v1/org/members', { params: { query: { limit: 200 } } }));
    return { seesAll, me: me.user.id, members };
  } catch {
    // The filter still offers "me" and "anyone" without the list.
    return { seesAll, me: me.user.id, members: [] };
  }
}

/** A short-lived URL to stream kept audio from (the <audio> element cannot send the token). */
export type AudioTicket = Answer<'/api/v1/recordings/{id}/audio-ticket', 'post', 201>;

/** POST …/audio-ticket; 404 (ApiError) when the recording keeps no audio the caller may play. */
export const audioTicket = (id: string): Promise<AudioTicket> =>
  unwrap(api.POST('/api/v1/recordings/{id}/audio-ticket', { params: { path: { id } } }));
