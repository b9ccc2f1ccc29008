import { randomUUID } from 'node:crypto';
import type { PasswordHasher } from '../../crypto/password.js';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import { normaliseEmail } from '../../domain/password-policy.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { OidcClient } from '../../adapters/network/oidc-client.adapter.js';
import {
  ssoConnectionRepository,
  type SsoConnectionRow,
  type SsoEntry,
} from '../../repositories/sso/sso-connection.repository.js';
import { SamlSp } from '../../adapters/network/saml-sp.adapter.js';
import { ssoIdentityRepository } from '../../repositories/sso/sso-identity.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import { requirePermission } from '../orgs/org.service.js';
import type { ClientMeta, SessionService } from '../auth/session.service.js';
import type { ScheduledTask } from '../lifecycle/scheduler.service.js';
import { OidcSso, secretAt } from './sso-oidc.js';
import { SamlSso, type SamlConnectionInput, type SamlView } from './sso-saml.js';
import {
  SsoLoginError,
  type SsoErrorCode,
  type SsoOptions,
  type SsoOutcome,
  type SsoShared,
  type SsoStart,
} from './sso-shared.js';
import { SsoAccounts, type SsoLinkDeps } from './sso-accounts.js';

export { SsoLoginError, type SsoErrorCode, type SsoOptions, type SsoOutcome } from './sso-shared.js';

export interface SsoConnectionView {
  id: string;
  kind: 'oidc' | 'saml';
  /** OIDC: the issuer. SAML: the IdP's entity id. */
  issuer: string;
  clientId: string | null;
  hasClientSecret: boolean;
  /** SAML only: what the IdP's metadata said and what to give the IdP. */
  saml: SamlView | null;
  allowedDomains: string[];
  roleClaim: string | null;
  roleMapping: Record<string, 'admin' | 'member'>;
  requireSso: boolean;
  redirectUri: string;
  createdAt: Date;
  updatedAt: Date;
}

export type SsoConnectionInput = OidcConnectionInput | SamlConnectionInput;

export interface OidcConnectionInput {
  kind?: 'oidc' | undefined;
  issuer: string;
  clientId: string;
  /** Write-only; may be left out on update to keep the stored one. */
  clientSecret?: string | undefined;
  allowedDomains: string[];
  roleClaim?: string | null | undefined;
  roleMapping?: Record<string, 'admin' | 'member'> | undefined;
  requireSso?: boolean | undefined;
}

export interface SsoServiceDeps {
  db: Database;
  keys: KeyService;
  audit: AuditService;
  sessions: SessionService;
  hasher: PasswordHasher;
  clock: Clock;
  idp: OidcClient;
  opts: SsoOptions;
  samlSp?: SamlSp;
  linkDeps?: SsoLinkDeps;
}

/**
 * Single sign-on (docs/sso.md): the org's connection (admins), the shared part of every
 * sign-in (routing by domain or slug, refusals, the finish: domain rules, JIT provisioning, a
 * normal session) and the require-SSO rule password login consults. The protocols live beside
 * it: OIDC in sso-oidc.ts, SAML 2.0 in sso-saml.ts.
 *
 * Tenant boundary: the callback only ever works inside the org whose connection started the
 * flow (the login state names it), provisions accounts into that org only, and refuses an email
 * that belongs to an account of any other org — an IdP of org A can never sign anyone into B.
 */
export class SsoService {
  readonly redirectUri: string;
  readonly oidc: OidcSso;
  readonly saml: SamlSso;
  private readonly accounts: SsoAccounts;

  constructor(private readonly deps: SsoServiceDeps) {
    const samlSp = deps.samlSp ?? new SamlSp();
    this.accounts = new SsoAccounts(
      deps.db,
      deps.audit,
      deps.sessions,
      deps.hasher,
      deps.clock,
      deps.linkDeps,
    );
    const refuse = (conn: SsoConnectionRow, code: SsoErrorCode, meta: ClientMeta) =>
      this.refused({ connectionId: conn.id, orgId: conn.orgId }, code, meta);
    const shared = (method: 'oidc' | 'saml'): SsoShared => ({
      refused: (entry, code, meta) => this.refused(entry, code, meta),
      completeLogin: (conn, id, meta) => this.accounts.finish(conn, id, meta, method, refuse),
    });
    this.oidc = new OidcSso(deps.db, deps.keys, deps.clock, deps.idp, deps.opts, shared('oidc'));
    this.saml = new SamlSso(deps.db, deps.clock, samlSp, deps.opts, shared('saml'));
    this.redirectUri = this.oidc.redirectUri;
  }

  private view(c: SsoConnectionRow): SsoConnectionView {
    const roleMapping: Record<string, 'admin' | 'member'> = {};
    for (const [k, v] of Object.entries(c.roleMapping))
      if (v === 'admin' || v === 'member') roleMapping[k] = v;
    return {
      id: c.id,
      kind: c.kind,
      issuer: c.issuer,
      clientId: c.clientId,
      hasClientSecret: c.clientSecretEnc !== null,
      saml: c.kind === 'saml' ? this.saml.view(c) : null,
      allowedDomains: c.allowedDomains,
      roleClaim: c.roleClaim,
      roleMapping,
      requireSso: c.requireSso,
      redirectUri: this.redirectUri,
      createdAt: c.createdAt,
      updatedAt: c.updatedAt,
    };
  }

  // ---- administration --------------------------------------------------------------------

  async get(actor: Actor): Promise<SsoConnectionView> {
    requirePermission(actor, 'org.manage');
    const c = await withTenant(this.deps.db, actor, (tx) =>
      ssoConnectionRepository.findForOrg(tx, actor.orgId),
    );
    if (!c) throw notFound('SSO connection');
    return this.view(c);
  }

  async put(actor: Actor, input: SsoConnectionInput): Promise<SsoConnectionView> {
    // Session-only (no API token scope names sso.manage): whoever controls the IdP controls
    // how people sign in, so a leaked token must not be a way to change it.
    requirePermission(actor, 'sso.manage');
    // SAML: the IdP's entity id, SSO URL and signing certs come from its metadata (parsed here,
    // outside any transaction; a bad document is a 400 with the reason).
    const saml = input.kind === 'saml' ? this.saml.parseMetadata(input.idpMetadataXml) : undefined;
    const issuer = saml ? saml.entityId : await this.oidc.checkIssuer((input as OidcConnectionInput).issuer);
    const oidcIn = input.kind === 'saml' ? undefined : input;
    const domains = [...new Set(input.allowedDomains.map((d) => d.trim().toLowerCase()))];
    // A domain routes "Continue with SSO" to one org: a second org may not claim it.
    const claimed = await withSystem(this.deps.db, async (tx) => {
      for (const d of domains) {
        const e = await ssoConnectionRepository.entryByDomain(tx, d);
        if (e && e.orgId !== actor.orgId) return d;
      }
      return undefined;
    });
    if (claimed)
      throw new AppError('conflict', `The domain ${claimed} is already used by another organization`);
    const now = this.deps.clock.now();
    let pendingCleanup: string | undefined;
    const view = await withTenant(this.deps.db, actor, async (tx) => {
      const before = await ssoConnectionRepository.findForOrg(tx, actor.orgId);
      // Switching kinds replaces the connection's protocol fields; an OIDC secret is only kept
      // across an update of an OIDC connection.
      const keptSecret = before?.kind === 'oidc' ? before.clientSecretEnc : null;
      if (oidcIn && !oidcIn.clientSecret && !keptSecret)
        throw new AppError('validation_failed', 'clientSecret is required');
      const id = before?.id ?? randomUUID();
      const clientSecretEnc = oidcIn?.clientSecret
        ? await this.deps.keys.encrypt(tx, secretAt(actor.orgId, id), oidcIn.clientSecret)
        : oidcIn
          ? keptSecret
          : null;
      const requireSso = input.requireSso ?? before?.requireSso ?? false;
      const saved = await ssoConnectionRepository.upsert(tx, {
        id,
        orgId: actor.orgId,
        kind: saml ? 'saml' : 'oidc',
        issuer,
        clientId: oidcIn ? oidcIn.clientId : null,
        clientSecretEnc,
        samlSsoUrl: saml?.ssoUrl ?? null,
        samlCerts: saml?.certs ?? null,
        allowedDomains: domains,
        roleClaim: input.roleClaim === undefined ? (before?.roleClaim ?? null) : input.roleClaim,
        roleMapping: input.roleMapping ?? before?.roleMapping ?? {},
        requireSso,
        now,
      });
      // Turning require-SSO on ends every non-owner session but the caller's, SSO ones included
      // (sessions do not record how they began): members come back through their IdP.
      let revokedSessions = 0;
      let revokedTokens = 0;
      if (requireSso && !before?.requireSso) {
        revokedSessions = await ssoConnectionRepository.revokeNonOwnerSessions(
          tx,
          actor.orgId,
          'sso_required',
          now,
          actor.sessionId,
        );
        // Personal API tokens of non-owners too: they would keep password-era access.
        revokedTokens = await ssoIdentityRepository.revokeNonOwnerApiTokens(tx, actor.orgId, now);
      }
      // Another IdP (issuer, SAML entity id or signing keys changed, or another kind): its
      // subjects are not the old IdP's, so every identity link goes and people re-link.
      let unlinked = 0;
      if (before && idpChanged(before, saved)) {
        unlinked = await ssoIdentityRepository.removeForConnection(tx, actor.orgId, id);
        pendingCleanup = id;
      }
      await this.deps.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: before ? 'sso.updated' : 'sso.created',
        targetType: 'sso_connection',
        targetId: id,
        ip: actor.ip,
        details: {
          issuer,
          domains: domains.length,
          kind: saml ? 'saml' : 'oidc',
          secretChanged: Boolean(oidcIn?.clientSecret),
          requireSso,
          ...(revokedSessions ? { revokedSessions } : {}),
          ...(revokedTokens ? { revokedTokens } : {}),
          ...(unlinked ? { unlinkedIdentities: unlinked } : {}),
        },
      });
      return this.view(saved);
    });
    // Pending links (system-only table) of the replaced IdP go as well.
    if (pendingCleanup) {
      const cid = pendingCleanup;
      await withSystem(this.deps.db, (tx) => ssoIdentityRepository.removePendingForConnection(tx, cid));
    }
    return view;
  }

  async remove(actor: Actor): Promise<void> {
    requirePermission(actor, 'sso.manage');
    await withTenant(this.deps.db, actor, async (tx) => {
      const id = await ssoConnectionRepository.remove(tx, actor.orgId);
      if (!id) throw notFound('SSO connection');
      await this.deps.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'sso.deleted',
        targetType: 'sso_connection',
        targetId: id,
        ip: actor.ip,
      });
    });
  }

  /** Maintenance: expired flow states and used SAML assertion ids (both also go on insert). */
  tasks(): ScheduledTask[] {
    return [
      {
        name: 'sso-sweep',
        run: async () => {
          const now = this.deps.clock.now();
          await withSystem(this.deps.db, async (tx) => {
            await ssoConnectionRepository.sweepExpired(tx, now);
            await ssoIdentityRepository.sweepPending(tx, now);
          });
        },
      },
    ];
  }

  // ---- password login policy ---------------------------------------------------------------

  /** Whether password login is refused for this org's non-owners (system context, pre-tenant). */
  async requiresSso(orgId: string): Promise<boolean> {
    return withSystem(this.deps.db, (tx) => ssoConnectionRepository.requiresSso(tx, orgId));
  }

  // ---- sign-in -------------------------------------------------------------------------------

  /** Starts a sign-in: the IdP URL to redirect to and the handle for the browser's cookie. */
  async start(by: { email?: string | undefined; org?: string | undefined }): Promise<SsoStart> {
    const email = by.email ? normaliseEmail(by.email) : undefined;
    const domain = email?.split('@').pop();
    const entry = await withSystem(this.deps.db, (tx) =>
      domain
        ? ssoConnectionRepository.entryByDomain(tx, domain)
        : by.org
          ? ssoConnectionRepository.entryBySlug(tx, by.org.toLowerCase())
          : Promise.resolve(undefined),
    );
    if (!entry) throw new SsoLoginError('not_configured');
    return (await this.saml.start(entry)) ?? this.oidc.start(entry, email);
  }

  /**
   * Finishes a sign-in: consumes the login state of the browser's handle (single use), lets
   * openid-client verify the answer and the ID token, then finds or provisions the account in
   * the connection's org and opens a session as password login does.
   */
  async callback(handle: string | undefined, query: string, meta: ClientMeta): Promise<SsoOutcome> {
    return this.oidc.callback(handle, query, meta);
  }

  /** POST /api/v1/auth/sso/link: confirms this browser's pending link with the password. */
  confirmLink(
    handle: string | undefined,
    password: string,
    code: string | undefined,
    meta: ClientMeta,
  ): Promise<{ refreshToken: string; sessionExpiresAt: Date }> {
    return this.accounts.confirmLink(handle, password, code, meta);
  }

  /** Records a refused sign-in (reason code only) and returns the error to throw. */
  async refused(entry: SsoEntry | undefined, code: SsoErrorCode, meta: ClientMeta): Promise<SsoLoginError> {
    await this.deps.audit.recordStandalone({
      orgId: entry?.orgId ?? null,
      actorId: null,
      actorKind: 'anonymous',
      action: 'auth.sso_login_failed',
      targetType: entry ? 'sso_connection' : undefined,
      targetId: entry?.connectionId,
      ip: meta.ip,
      details: { reason: code },
    });
    return new SsoLoginError(code);
  }
}

/** Whether a connection update points it at another IdP (its subjects are not the old ones). */
function idpChanged(a: SsoConnectionRow, b: SsoConnectionRow): boolean {
  const certs = (c: SsoConnectionRow) => [...c.samlCerts].sort().join('\n');
  return a.kind !== b.kind || a.issuer !== b.issuer || certs(a) !== certs(b);
}
