import { useEffect, useState } from 'react';
import { api, onSessionChange, setSupportOrg } from './api';
import { publicApi, unwrap, type Answer, type Body, type Query } from './api-client';

/**
 * The organization screens' API calls and shapes (/api/v1/org, /api/v1/audit, /api/v1/support,
 * /api/v1/auth/accept-invitation), and the two bits of state the header shares with them: who I
 * am (GET /me) and, for platform support, the organization they act in.
 */

/** GET /me: the user, their organization (null for platform support) and role there. */
export type MeInfo = Answer<'/api/v1/me', 'get'>;
export type OrgRole = Exclude<MeInfo['role'], 'support'>;

export const isSupport = (me: MeInfo | null): boolean => Boolean(me?.support);
export const canManageOrg = (me: MeInfo | null): boolean => me?.role === 'owner' || me?.role === 'admin';

// One GET /me per session, shared by the header and the pages; dropped when the session changes.
let mePromise: Promise<MeInfo> | null = null;
onSessionChange(() => {
  mePromise = null;
  chooseSupportOrg(null);
});

export function loadMe(): Promise<MeInfo> {
  mePromise ??= unwrap(api.GET('/api/v1/me')).catch((err: unknown) => {
    mePromise = null;
    throw err;
  });
  return mePromise;
}

/** Who I am, or null while loading (or when it could not be loaded). */
export function useMe(enabled = true): MeInfo | null {
  const [me, setMe] = useState<MeInfo | null>(null);
  useEffect(() => {
    if (!enabled) {
      setMe(null);
      return;
    }
    let live = true;
    loadMe().then(
      (m) => live && setMe(m),
      () => live && setMe(null),
    );
    return () => {
      live = false;
    };
  }, [enabled]);
  return me;
}

// ---- support: the organization a platform support user acts in ----

export interface SupportOrgChoice {
  id: string;
  name: string;
}

let chosen: SupportOrgChoice | null = null;
const choiceListeners = new Set<(c: SupportOrgChoice | null) => void>();

/** Sets (or clears) the org every API call acts in, as X-Sotto-Org. */
export function chooseSupportOrg(choice: SupportOrgChoice | null): void {
  if (chosen?.id === choice?.id) return;
  chosen = choice;
  setSupportOrg(choice?.id ?? null);
  for (const l of choiceListeners) l(choice);
}

export function useSupportOrg(): SupportOrgChoice | null {
  const [c, setC] = useState(chosen);
  useEffect(() => {
    choiceListeners.add(setC);
    setC(chosen);
    return () => {
      choiceListeners.delete(setC);
    };
  }, []);
  return c;
}

export type GrantedOrg = Answer<'/api/v1/support/orgs', 'get'>[number];

export const listGrantedOrgs = (): Promise<GrantedOrg[]> => unwrap(api.GET('/api/v1/support/orgs'));

// ---- organization ----

export type Member = Answer<'/api/v1/org/members', 'get'>[number];

export const MEMBERS_PAGE = 50;

export function listMembers(after?: string): Promise<Member[]> {
  const query = { limit: MEMBERS_PAGE, ...(after ? { after } : {}) };
  return unwrap(api.GET('/api/v1/org/members', { params: { query } }));
}

export const changeRole = (id: string, role: OrgRole): Promise<Member> =>
  unwrap(api.PATCH('/api/v1/org/members/{id}', { params: { path: { id } }, body: { role } }));

export async function removeMember(id: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/org/members/{id}', { params: { path: { id } } }));
}

/** `emailSentAt`: when the mail server accepted its email; null when none went out. */
export type Invitation = Answer<'/api/v1/org/invitations', 'get'>[number];
export type InvitationStatus = Invitation['status'];

export const listInvitations = (): Promise<Invitation[]> => unwrap(api.GET('/api/v1/org/invitations'));

/** The answer carries the link to send (`inviteUrl`) and whether the email went out. */
export const createInvitation = (
  email: string,
  role: Invitation['role'],
): Promise<Answer<'/api/v1/org/invitations', 'post', 201>> =>
  unwrap(api.POST('/api/v1/org/invitations', { body: { email, role } }));

export async function revokeInvitation(id: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/org/invitations/{id}', { params: { path: { id } } }));
}

export type OrgSettings = Answer<'/api/v1/org/settings', 'get'>;

export const getSettings = (): Promise<OrgSettings> => unwrap(api.GET('/api/v1/org/settings'));

export const updateSettings = (patch: Body<'/api/v1/org/settings', 'patch'>): Promise<OrgSettings> =>
  unwrap(api.PATCH('/api/v1/org/settings', { body: patch }));

export type SupportGrant = Answer<'/api/v1/org/support-grants', 'get'>[number];

export const listGrants = (): Promise<SupportGrant[]> => unwrap(api.GET('/api/v1/org/support-grants'));

export const createGrant = (hours: number): Promise<SupportGrant> =>
  unwrap(api.POST('/api/v1/org/support-grants', { body: { hours } }));

export async function revokeGrant(id: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/org/support-grants/{id}', { params: { path: { id } } }));
}

export type WorkerToken = Answer<'/api/v1/org/workers', 'get'>[number];

export const listWorkers = (): Promise<WorkerToken[]> => unwrap(api.GET('/api/v1/org/workers'));

/** The answer carries the worker's token, once. */
export const createWorker = (name: string): Promise<Answer<'/api/v1/org/workers', 'post', 201>> =>
  unwrap(api.POST('/api/v1/org/workers', { body: { name } }));

export async function revokeWorker(id: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/org/workers/{id}', { params: { path: { id } } }));
}

/** One page of the log, its action picker's choices and the hash chain's verification. */
export type AuditPage = Answer<'/api/v1/audit', 'get'>;
/** With the acting user's name and email while they are in this org, and a target's label. */
export type AuditEntry = AuditPage['entries'][number];

export interface AuditFilters {
  action: string;
  /** YYYY-MM-DD, as a date input gives it; the server reads `to` as the end of that day. */
  from: string;
  to: string;
}

export function readAudit(beforeSeq: number | undefined, f: AuditFilters): Promise<AuditPage> {
  const query: Query<'/api/v1/audit', 'get'> = {
    limit: 50,
    ...(beforeSeq ? { beforeSeq } : {}),
    ...(f.action ? { action: f.action } : {}),
    ...(f.from ? { from: f.from } : {}),
    ...(f.to ? { to: f.to } : {}),
  };
  return unwrap(api.GET('/api/v1/audit', { params: { query } }));
}

// ---- accepting an invitation (signed out: the token is the credential) ----

export const acceptInvitation = (
  input: Body<'/api/v1/auth/accept-invitation', 'post'>,
): Promise<Answer<'/api/v1/auth/accept-invitation', 'post', 201>> =>
  unwrap(publicApi.POST('/api/v1/auth/accept-invitation', { body: input }));

export type InvitationPreview = Answer<'/api/v1/auth/accept-invitation/preview', 'post'>;

/** Who invites whom to which organization, before anything is typed (404: the link does not work). */
export const previewInvitation = (token: string): Promise<InvitationPreview> =>
  unwrap(publicApi.POST('/api/v1/auth/accept-invitation/preview', { body: { token } }));

// ---- transcription readiness (owners and admins: the banner) ----

/** `waiting`: nothing can transcribe this org's uploads now, they wait queued. */
export type TranscriptionStatus = Answer<'/api/v1/org/transcription', 'get'>;

export const getTranscriptionStatus = (): Promise<TranscriptionStatus> =>
  unwrap(api.GET('/api/v1/org/transcription'));
