/** Roles inside an organization, plus the platform support role that only acts through a grant. */
export const orgRoles = ['owner', 'admin', 'member'] as const;
export type OrgRole = (typeof orgRoles)[number];
export type Role = OrgRole | 'support';

const rank: Record<Role, number> = { support: 0, member: 1, admin: 2, owner: 3 };

export const permissions = {
  'org.read': ['owner', 'admin', 'member', 'support'],
  'org.manage': ['owner', 'admin'],
  'members.read': ['owner', 'admin', 'member', 'support'],
  'members.manage': ['owner', 'admin'],
  'support.grant': ['owner', 'admin'],
  'audit.read': ['owner', 'admin'],
  /** Upload, and read/delete one's own recordings. */
  'recordings.create': ['owner', 'admin', 'member'],
  'recordings.read': ['owner', 'admin', 'member', 'support'],
  'recordings.read_all': ['owner', 'admin', 'support'],
  'org.delete': ['owner'],
  /**
   * Request and download the whole-org export (every transcript, audio, the audit log). No API
   * token scope names it: a leaked `org:admin` token must not be a way to take everything.
   */
  'org.export': ['owner', 'admin'],
  /**
   * Change or remove the org's SSO connection. No API token scope names it either: whoever sets
   * the IdP decides how people sign in (docs/sso.md), so it takes a signed-in owner or admin.
   */
  'sso.manage': ['owner', 'admin'],
  /** Create, list and revoke the org's remote transcription worker tokens. */
  'workers.manage': ['owner', 'admin'],
  /** Create, change, rotate and inspect the org's webhooks (docs/webhooks.md). */
  'webhooks.manage': ['owner', 'admin'],
  /** Create a live recording and stream audio into it (the API token scope live:ingest). */
  'live.ingest': ['owner', 'admin', 'member'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof permissions;

export function can(role: Role, permission: Permission): boolean {
  return (permissions[permission] as readonly Role[]).includes(role);
}

/** Whether an actor of `actor` role may assign or change a member to/from `target` role. */
export function canAssignRole(actor: Role, target: OrgRole): boolean {
  if (actor === 'owner') return true;
  if (actor === 'admin') return rank[target] <= rank.admin && target !== 'owner';
  return false;
}
