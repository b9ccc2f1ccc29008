import { api } from './api';
import { unwrap, type Answer, type Body } from './api-client';

/**
 * The data lifecycle's API calls and shapes (docs/lifecycle.md): the cold archive, the whole-org
 * export, the departed-user policy, and the two deletions that need the password again
 * (DELETE /api/v1/me, DELETE /api/v1/org).
 */

// ---- archive (owners and admins) ----

export type ArchivePage = Answer<'/api/v1/org/archive', 'get'>;
export type ArchiveItem = ArchivePage['items'][number];

export const ARCHIVE_PAGE = 50;

export function listArchive(after?: string): Promise<ArchivePage> {
  const query = { limit: ARCHIVE_PAGE, ...(after ? { after } : {}) };
  return unwrap(api.GET('/api/v1/org/archive', { params: { query } }));
}

export const restoreArchived = (id: string): Promise<Answer<'/api/v1/org/archive/{id}/restore', 'post'>> =>
  unwrap(api.POST('/api/v1/org/archive/{id}/restore', { params: { path: { id } } }));

/** What was destroyed, by whom and when; the hashes are of the sealed bytes, never of plaintext. */
export type DeletionReceipt = Answer<'/api/v1/org/archive/{id}', 'delete'>;

/** A DELETE without a body (so without a JSON content type: Fastify refuses an empty JSON body). */
export const deleteArchived = (id: string): Promise<DeletionReceipt> =>
  unwrap(api.DELETE('/api/v1/org/archive/{id}', { params: { path: { id } } }));

// ---- whole-org export (owners and admins) ----

export type OrgExport = Answer<'/api/v1/org/exports/{id}', 'get'>;
export type ExportStatus = OrgExport['status'];

export const requestExport = (): Promise<OrgExport> => unwrap(api.POST('/api/v1/org/export', { body: {} }));

export const listExports = async (): Promise<OrgExport[]> =>
  (await unwrap(api.GET('/api/v1/org/exports'))).items;

export const downloadExport = (id: string): Promise<Blob> =>
  unwrap(api.GET('/api/v1/org/exports/{id}/download', { params: { path: { id } }, parseAs: 'blob' }));

export async function deleteExport(id: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/org/exports/{id}', { params: { path: { id } } }));
}

// ---- what happens to a departed user's recordings (org setting) ----

/** GET/PATCH /org/settings as the settings screen sees it: with the departed-user policy. */
export type SettingsWithPolicy = Answer<'/api/v1/org/settings', 'get'>;
export type DepartedPolicy = SettingsWithPolicy['departedUserRecordings'];

export const getSettingsWithPolicy = (): Promise<SettingsWithPolicy> =>
  unwrap(api.GET('/api/v1/org/settings'));

export const updateSettingsWithPolicy = (
  patch: Body<'/api/v1/org/settings', 'patch'>,
): Promise<SettingsWithPolicy> => unwrap(api.PATCH('/api/v1/org/settings', { body: patch }));

// ---- deletions that ask for the password again (session only) ----

/** The password again, and a TOTP or recovery code only when the account has a second factor. */
export type Reauth = Body<'/api/v1/me', 'delete'>;

/** 202: login is refused from now on; the rest is done by `completeBy` at the latest. */
export const deleteMyAccount = (body: Reauth): Promise<Answer<'/api/v1/me', 'delete', 202>> =>
  unwrap(api.DELETE('/api/v1/me', { body }));

export const deleteOrganization = (
  body: Body<'/api/v1/org', 'delete'>,
): Promise<Answer<'/api/v1/org', 'delete'>> => unwrap(api.DELETE('/api/v1/org', { body }));

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
