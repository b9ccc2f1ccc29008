import type { Actor } from './auth-context.js';
import { can, type Permission } from './roles.js';

/**
 * Scopes of personal API tokens (`sotto_pat_…`) and the permissions each one unlocks. A token acts
 * as its user with the INTERSECTION of the user's role (as it is today, read at every request)
 * and its scopes: a scope never adds a right the role lacks, and lowering the role lowers every
 * token at once. Permissions no scope names (org.delete, org.export) are never reachable with a token;
 * managing the account itself (password, MFA, devices, tokens) is session-only by construction.
 */
export const apiScopes = [
  'recordings:read',
  'recordings:write',
  'live:ingest',
  'org:read',
  'org:admin',
  'audit:read',
] as const;
export type ApiScope = (typeof apiScopes)[number];

export const scopePermissions = {
  'recordings:read': ['recordings.read', 'recordings.read_all'],
  // Upload, edit and delete (one's own, or all for admins), and stream live audio.
  'recordings:write': ['recordings.create', 'live.ingest'],
  // Create a live recording and stream audio into it (`sotto bot`); no file uploads.
  'live:ingest': ['live.ingest'],
  'org:read': ['org.read', 'members.read'],
  'org:admin': ['org.manage', 'members.manage', 'support.grant', 'workers.manage', 'webhooks.manage'],
  'audit:read': ['audit.read'],
} as const satisfies Record<ApiScope, readonly Permission[]>;

/** The token side of an actor that authenticated with a personal API token. */
export interface ActorApiToken {
  id: string;
  scopes: readonly ApiScope[];
}

export function scopesAllow(scopes: readonly ApiScope[], permission: Permission): boolean {
  return scopes.some((s) => (scopePermissions[s] as readonly Permission[]).includes(permission));
}

/**
 * THE permission check of an actor: its role allows it and, for an API token, one of its scopes
 * names it. Every route guard and service check goes through here.
 */
export function actorCan(actor: Pick<Actor, 'role' | 'apiToken'>, permission: Permission): boolean {
  if (!can(actor.role, permission)) return false;
  return actor.apiToken ? scopesAllow(actor.apiToken.scopes, permission) : true;
}
