import type { ActorApiToken } from './api-scopes.js';
import type { Role } from './roles.js';

/** Who is acting, resolved from a verified access token and the live session row. */
export interface Actor {
  userId: string;
  orgId: string;
  role: Role;
  sessionId: string;
  /** True when a platform support user acts inside an org through an active grant. */
  viaSupportGrant: boolean;
  ip: string;
  /** Set when the request came with a personal API token: its scopes narrow the role. */
  apiToken?: ActorApiToken | undefined;
}

/** The context every tenant query runs in (sets app.org_id / app.user_id for RLS). */
export interface TenantContext {
  orgId: string;
  userId: string | null;
}
