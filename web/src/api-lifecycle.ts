import { del, getBlob, getJson, request, sendJson } from './api';
import { refusedAnswer } from './api-problem';
import type { OrgSettings } from './api-org';

/**
 * The data lifecycle's API calls and shapes (docs/lifecycle.md): the cold archive, the whole-org
 * export, the departed-user policy, and the two deletions that need the password again
 * (DELETE /api/v1/me, DELETE /api/v1/org).
 */

// ---- archive (owners and admins) ----

export interface ArchiveItem {
  id: string;
  recordingId: string;
  ownerId: string;
  title: string | null;
  recordingCreatedAt: string;
  archivedAt: string;
  reason: 'retention' | 'manual';
  sizeBytes: number;
  hasAudio: boolean;
}

export interface ArchivePage {
  items: ArchiveItem[];
  next: string | null;
}

export const ARCHIVE_PAGE = 50;

export function listArchive(after?: string): Promise<ArchivePage> {
  const q = new URLSearchParams({ limit: String(ARCHIVE_PAGE) });
  if (after) q.set('after', after);
  return getJson(`/api/v1/org/archive?${q.toString()}`);
}

export const restoreArchived = (id: string): Promise<{ recordingId: string }> =>
  sendJson('POST', `/api/v1/org/archive/${encodeURIComponent(id)}/restore`, {});

/** What was destroyed, by whom and when; the hashes are of the sealed bytes, never of plaintext. */
export interface DeletionReceipt {
  archiveId: string;
  recordingId: string;
  deletedAt: string;
  deletedBy: string;
  contentSha256: string;
  audioSha256: string | null;
}

/** A DELETE without a body (Fastify refuses an empty JSON body) whose answer is JSON. */
async function deleteForJson<T>(path: string): Promise<T> {
  const res = await request(path, { method: 'DELETE' });
  if (!res.ok) throw await refusedAnswer(res);
  return (await res.json()) as T;
}

export const deleteArchived = (id: string): Promise<DeletionReceipt> =>
  deleteForJson(`/api/v1/org/archive/${encodeURIComponent(id)}`);

// ---- whole-org export (owners and admins) ----

export type ExportStatus = 'queued' | 'building' | 'ready' | 'failed' | 'expired';

export interface OrgExport {
  id: string;
  status: ExportStatus;
  requestedBy: string | null;
  createdAt: string;
  readyAt: string | null;
  expiresAt: string | null;
  sizeBytes: number | null;
  sha256: string | null;
  errorCode: string | null;
  progress: { done: number; total: number };
}

export const requestExport = (): Promise<OrgExport> => sendJson('POST', '/api/v1/org/export', {});

export const listExports = async (): Promise<OrgExport[]> =>
  (await getJson<{ items: OrgExport[] }>('/api/v1/org/exports')).items;

export const downloadExport = (id: string): Promise<Blob> =>
  getBlob(`/api/v1/org/exports/${encodeURIComponent(id)}/download`);

export const deleteExport = (id: string): Promise<void> =>
  del(`/api/v1/org/exports/${encodeURIComponent(id)}`);

// ---- what happens to a departed user's recordings (org setting) ----

export type DepartedPolicy = 'transfer' | 'delete';

/** GET/PATCH /org/settings as the settings screen sees it: with the departed-user policy. */
export type SettingsWithPolicy = OrgSettings & { departedUserRecordings: DepartedPolicy };

export const getSettingsWithPolicy = (): Promise<SettingsWithPolicy> => getJson('/api/v1/org/settings');

export const updateSettingsWithPolicy = (patch: Partial<SettingsWithPolicy>): Promise<SettingsWithPolicy> =>
  sendJson('PATCH', '/api/v1/org/settings', patch);

// ---- deletions that ask for the password again (session only) ----

export interface Reauth {
  currentPassword: string;
  /** A TOTP or recovery code, only when the account has a second factor. */
  code?: string;
}

/** 202: login is refused from now on; the rest is done by `completeBy` at the latest. */
export const deleteMyAccount = (body: Reauth): Promise<{ completeBy: string; status: 'scheduled' }> =>
  sendJson('DELETE', '/api/v1/me', body);

export const deleteOrganization = (
  body: Reauth & { confirm: string },
): Promise<{ orgId: string; deletedAt: string; counts: Record<string, number> }> =>
  sendJson('DELETE', '/api/v1/org', body);

/** 1536 → "1.5 KB". */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
