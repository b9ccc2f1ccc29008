import { useEffect, useState } from 'react';
import { del, getJson, onSessionChange, sendJson, setSupportOrg } from './api';
import { refusedAnswer } from './api-problem';

/**
 * The organization screens' API calls and shapes (/api/v1/org, /api/v1/audit, /api/v1/support,
 * /api/v1/auth/accept-invitation), and the two bits of state the header shares with them: who I
 * am (GET /me) and, for platform support, the organization they act in.
 */

export type OrgRole = 'owner' | 'admin' | 'member';

export interface MeInfo {
  user: { id: string; email: string; name: string };
  organization: { id: string; name: string; slug: string } | null;
  role: OrgRole | 'support';
  mfaEnabled: boolean;
  support?: { platformRole: 'support' };
}

export const isSupport = (me: MeInfo | null): boolean => Boolean(me?.support);
export const canManageOrg = (me: MeInfo | null): boolean => me?.role === 'owner' || me?.role === 'admin';

// One GET /me per session, shared by the header and the pages; dropped when the session changes.
let mePromise: Promise<MeInfo> | null = null;
onSessionChange(() => {
  mePromise = null;
  chooseSupportOrg(null);
});

export function loadMe(): Promise<MeInfo> {
  mePromise ??= getJson<MeInfo>('/api/v1/me').catch((err: unknown) => {
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

export interface GrantedOrg {
  id: string;
  name: string;
  grantExpiresAt: string;
}

export const listGrantedOrgs = (): Promise<GrantedOrg[]> => getJson('/api/v1/support/orgs');

// ---- organization ----

export interface Member {
  id: string;
  email: string;
  name: string;
  role: OrgRole;
  mfaEnabled: boolean;
  createdAt: string;
}

export const MEMBERS_PAGE = 50;

export function listMembers(after?: string): Promise<Member[]> {
  const q = new URLSearchParams({ limit: String(MEMBERS_PAGE) });
  if (after) q.set('after', after);
  return getJson(`/api/v1/org/members?${q.toString()}`);
}

export const changeRole = (id: string, role: OrgRole): Promise<Member> =>
  sendJson('PATCH', `/api/v1/org/members/${encodeURIComponent(id)}`, { role });

export const removeMember = (id: string): Promise<void> =>
  del(`/api/v1/org/members/${encodeURIComponent(id)}`);

export type InvitationStatus = 'pending' | 'accepted' | 'revoked' | 'expired';

export interface Invitation {
  id: string;
  email: string;
  role: 'admin' | 'member';
  status: InvitationStatus;
  createdAt: string;
  expiresAt: string;
}

export const listInvitations = (): Promise<Invitation[]> => getJson('/api/v1/org/invitations');

export const createInvitation = (
  email: string,
  role: 'admin' | 'member',
): Promise<Invitation & { inviteUrl: string; emailSent: boolean }> =>
  sendJson('POST', '/api/v1/org/invitations', { email, role });

export const revokeInvitation = (id: string): Promise<void> =>
  del(`/api/v1/org/invitations/${encodeURIComponent(id)}`);

export interface OrgSettings {
  retentionDays: number;
  storeAudio: boolean;
  vocabulary: string[];
}

export const getSettings = (): Promise<OrgSettings> => getJson('/api/v1/org/settings');

export const updateSettings = (patch: Partial<OrgSettings>): Promise<OrgSettings> =>
  sendJson('PATCH', '/api/v1/org/settings', patch);

export interface SupportGrant {
  id: string;
  status: 'active' | 'expired' | 'revoked';
  grantedBy: string | null;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

export const listGrants = (): Promise<SupportGrant[]> => getJson('/api/v1/org/support-grants');

export const createGrant = (hours: number): Promise<SupportGrant> =>
  sendJson('POST', '/api/v1/org/support-grants', { hours });

export const revokeGrant = (id: string): Promise<void> =>
  del(`/api/v1/org/support-grants/${encodeURIComponent(id)}`);

export interface WorkerToken {
  id: string;
  name: string;
  createdBy: string | null;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  status: 'active' | 'revoked';
}

export const listWorkers = (): Promise<WorkerToken[]> => getJson('/api/v1/org/workers');

export const createWorker = (name: string): Promise<WorkerToken & { token: string }> =>
  sendJson('POST', '/api/v1/org/workers', { name });

export const revokeWorker = (id: string): Promise<void> =>
  del(`/api/v1/org/workers/${encodeURIComponent(id)}`);

export interface AuditEntry {
  seq: number;
  at: string;
  actorId: string | null;
  actorKind: 'user' | 'support' | 'system' | 'anonymous' | 'worker';
  action: string;
  targetType: string | null;
  targetId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  hash: string;
  /** The acting user's name and email while they are in this org. */
  actorName: string | null;
  actorEmail: string | null;
  /** A target user's "name (email)", or a recording's title. */
  targetLabel: string | null;
}

export interface AuditPage {
  entries: AuditEntry[];
  nextBeforeSeq: number | null;
  /** Every action the log holds: the action picker's choices. */
  actions: string[];
  verification: { ok: boolean; entries: number; problem?: { seq: number; reason: string } };
}

export interface AuditFilters {
  action: string;
  /** YYYY-MM-DD, as a date input gives it; the server reads `to` as the end of that day. */
  from: string;
  to: string;
}

export function readAudit(beforeSeq: number | undefined, f: AuditFilters): Promise<AuditPage> {
  const q = new URLSearchParams({ limit: '50' });
  if (beforeSeq) q.set('beforeSeq', String(beforeSeq));
  if (f.action) q.set('action', f.action);
  if (f.from) q.set('from', f.from);
  if (f.to) q.set('to', f.to);
  return getJson(`/api/v1/audit?${q.toString()}`);
}

// ---- accepting an invitation (signed out: the token is the credential) ----

export async function acceptInvitation(input: {
  token: string;
  name: string;
  password: string;
}): Promise<{ user: { email: string }; organization: { name: string } }> {
  const res = await fetch('/api/v1/auth/accept-invitation', {
    method: 'POST',
    credentials: 'same-origin',
    body: JSON.stringify(input),
    headers: { 'content-type': 'application/json' },
  });
  if (!res.ok) throw await refusedAnswer(res);
  return (await res.json()) as { user: { email: string }; organization: { name: string } };
}

export interface InvitationPreview {
  organization: { name: string };
  invitedBy: { name: string } | null;
  email: string;
  role: OrgRole;
  expiresAt: string;
}

/** Who invites whom to which organization, before anything is typed (404: the link does not work). */
export async function previewInvitation(token: string): Promise<InvitationPreview> {
  const res = await fetch('/api/v1/auth/accept-invitation/preview', {
    method: 'POST',
    credentials: 'same-origin',
    body: JSON.stringify({ token }),
    headers: { 'content-type': 'application/json' },
  });
  if (!res.ok) throw await refusedAnswer(res);
  return (await res.json()) as InvitationPreview;
}

// ---- transcription readiness (owners and admins: the banner) ----

export interface TranscriptionStatus {
  engine: { status: 'ok'; id: string; model: string | null } | { status: 'none'; missing: string };
  activeRemoteWorkers: number;
  /** Nothing can transcribe this org's uploads now: they wait queued. */
  waiting: boolean;
  fix: string | null;
}

export const getTranscriptionStatus = (): Promise<TranscriptionStatus> =>
  getJson('/api/v1/org/transcription');
