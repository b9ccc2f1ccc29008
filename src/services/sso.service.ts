import { randomUUID } from 'node:crypto';
import type { PasswordHasher } from '../crypto/password.js';
import { randomToken } from '../crypto/random.js';
import type { Database } from '../db/database.js';
import { withSystem, withTenant } from '../db/tenant.js';
import type { Actor } from '../domain/auth-context.js';
import { AppError, notFound } from '../domain/errors.js';
import { normaliseEmail } from '../domain/password-policy.js';
import type { OrgRole } from '../domain/roles.js';
import type { Clock } from '../repositories/clock.repository.js';
import { isUniqueViolation, memberRepository } from '../repositories/member.repository.js';
import type { OidcClientRepository } from '../repositories/oidc-client.repository.js';
import {
  ssoConnectionRepository,
  type SsoConnectionRow,
  type SsoEntry,
} from '../repositories/sso-connection.repository.js';
import { SamlSpRepository } from '../repositories/saml-sp.repository.js';
import { userRepository } from '../repositories/user.repository.js';
import type { AuditService } from './audit.service.js';
import type { KeyService } from './key.service.js';
import { requirePermission } from './org.service.js';
import type { ClientMeta, SessionService } from './session.service.js';
import type { ScheduledTask } from './scheduler.service.js';
import { OidcSso, secretAt } from './sso-oidc.js';
import { SamlSso, type SamlConnectionInput, type SamlView } from './sso-saml.js';
import {
  SsoLoginError,
  type SsoErrorCode,
  type SsoOptions,
  type SsoShared,
  type SsoStart,
} from './sso-shared.js';

export { SsoLoginError, type SsoErrorCode, type SsoOptions } from './sso-shared.js';

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

const NAME_MAX = 200;
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

  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly audit: AuditService,
    private readonly sessions: SessionService,
    private readonly hasher: PasswordHasher,
    private readonly clock: Clock,
    private readonly idp: OidcClientRepository,
    private readonly opts: SsoOptions,
    samlSp: SamlSpRepository = new SamlSpRepository(),
  ) {
    const shared = (method: 'oidc' | 'saml'): SsoShared => ({
      refused: (entry, code, meta) => this.refused(entry, code, meta),
      completeLogin: (conn, id, meta) => this.completeLogin(conn, id, meta, method),
    });
    this.oidc = new OidcSso(db, keys, clock, idp, opts, shared('oidc'));
    this.saml = new SamlSso(db, clock, samlSp, opts, shared('saml'));
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
    const c = await withTenant(this.db, actor, (tx) => ssoConnectionRepository.findForOrg(tx, actor.orgId));
    if (!c) throw notFound('SSO connection');
    return this.view(c);
  }

  async put(actor: Actor, input: SsoConnectionInput): Promise<SsoConnectionView> {
    requirePermission(actor, 'org.manage');
    // SAML: the IdP's entity id, SSO URL and signing certs come from its metadata (parsed here,
    // outside any transaction; a bad document is a 400 with the reason).
    const saml = input.kind === 'saml' ? this.saml.parseMetadata(input.idpMetadataXml) : undefined;
    const issuer = saml ? saml.entityId : this.oidc.checkIssuer((input as OidcConnectionInput).issuer);
    const oidcIn = input.kind === 'saml' ? undefined : input;
    const domains = [...new Set(input.allowedDomains.map((d) => d.trim().toLowerCase()))];
    // A domain routes "Continue with SSO" to one org: a second org may not claim it.
    const claimed = await withSystem(this.db, async (tx) => {
      for (const d of domains) {
        const e = await ssoConnectionRepository.entryByDomain(tx, d);
        if (e && e.orgId !== actor.orgId) return d;
      }
      return undefined;
    });
    if (claimed)
      throw new AppError('conflict', `The domain ${claimed} is already used by another organization`);
    const now = this.clock.now();
    return withTenant(this.db, actor, async (tx) => {
      const before = await ssoConnectionRepository.findForOrg(tx, actor.orgId);
      // Switching kinds replaces the connection's protocol fields; an OIDC secret is only kept
      // across an update of an OIDC connection.
      const keptSecret = before?.kind === 'oidc' ? before.clientSecretEnc : null;
      if (oidcIn && !oidcIn.clientSecret && !keptSecret)
        throw new AppError('validation_failed', 'clientSecret is required');
      const id = before?.id ?? randomUUID();
      const clientSecretEnc = oidcIn?.clientSecret
        ? await this.keys.encrypt(tx, secretAt(actor.orgId, id), oidcIn.clientSecret)
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
      if (requireSso && !before?.requireSso) {
        revokedSessions = await ssoConnectionRepository.revokeNonOwnerSessions(
          tx,
          actor.orgId,
          'sso_required',
          now,
          actor.sessionId,
        );
      }
      await this.audit.record(tx, {
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
        },
      });
      return this.view(saved);
    });
  }

  async remove(actor: Actor): Promise<void> {
    requirePermission(actor, 'org.manage');
    await withTenant(this.db, actor, async (tx) => {
      const id = await ssoConnectionRepository.remove(tx, actor.orgId);
      if (!id) throw notFound('SSO connection');
      await this.audit.record(tx, {
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
          const now = this.clock.now();
          await withSystem(this.db, (tx) => ssoConnectionRepository.sweepExpired(tx, now));
        },
      },
    ];
  }

  // ---- password login policy ---------------------------------------------------------------

  /** Whether password login is refused for this org's non-owners (system context, pre-tenant). */
  async requiresSso(orgId: string): Promise<boolean> {
    return withSystem(this.db, (tx) => ssoConnectionRepository.requiresSso(tx, orgId));
  }

  // ---- sign-in -------------------------------------------------------------------------------

  /** Starts a sign-in: the IdP URL to redirect to and the handle for the browser's cookie. */
  async start(by: { email?: string | undefined; org?: string | undefined }): Promise<SsoStart> {
    const email = by.email ? normaliseEmail(by.email) : undefined;
    const domain = email?.split('@').pop();
    const entry = await withSystem(this.db, (tx) =>
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
  async callback(
    handle: string | undefined,
    query: string,
    meta: ClientMeta,
  ): Promise<{ refreshToken: string; sessionExpiresAt: Date }> {
    return this.oidc.callback(handle, query, meta);
  }

  /**
   * The shared end of every sign-in (OIDC and SAML), once the protocol has proven who the IdP
   * says this is: allowed domain, never an account of another org, JIT provisioning, session.
   */
  private async completeLogin(
    conn: SsoConnectionRow,
    id: { email: string; name: string | undefined; claims: Record<string, unknown> },
    meta: ClientMeta,
    method: 'oidc' | 'saml',
  ): Promise<{ refreshToken: string; sessionExpiresAt: Date }> {
    const entry = { connectionId: conn.id, orgId: conn.orgId };
    const email = normaliseEmail(id.email);
    const domain = email.split('@').pop() ?? '';
    if (!email.includes('@') || !conn.allowedDomains.includes(domain))
      throw await this.refused(entry, 'domain_not_allowed', meta);

    const existing = await withSystem(this.db, (tx) => userRepository.findByEmail(tx, email));
    if (existing && existing.orgId !== conn.orgId)
      throw await this.refused(entry, 'account_not_allowed', meta);

    let provisioned: OrgRole | undefined;
    // Hash outside any transaction (slow; PGlite shares one connection). The password is random
    // and thrown away: a provisioned account has no usable password until it sets one.
    const unusableHash = existing ? undefined : await this.hasher.hash(randomToken());
    const opened = await withTenant(
      this.db,
      { orgId: conn.orgId, userId: existing?.id ?? null },
      async (tx) => {
        let user = existing ? { id: existing.id, orgId: conn.orgId } : undefined;
        if (!user) {
          provisioned = this.roleFrom(conn, id.claims);
          try {
            const m = await memberRepository.insert(tx, {
              orgId: conn.orgId,
              email,
              name: displayName(id.name, email),
              role: provisioned,
              passwordHash: unusableHash!,
            });
            user = { id: m.id, orgId: conn.orgId };
          } catch (err) {
            if (isUniqueViolation(err)) return undefined;
            throw err;
          }
          await this.audit.record(tx, {
            orgId: conn.orgId,
            actorId: user.id,
            actorKind: 'user',
            action: 'user.sso_provisioned',
            targetType: 'user',
            targetId: user.id,
            ip: meta.ip,
            details: { connectionId: conn.id, role: provisioned },
          });
        }
        const session = await this.sessions.open(tx, user, meta);
        await this.audit.record(tx, {
          orgId: conn.orgId,
          actorId: user.id,
          actorKind: 'user',
          action: 'auth.sso_login',
          targetType: 'session',
          targetId: session.sessionId,
          ip: meta.ip,
          details: { connectionId: conn.id, method, provisioned: Boolean(provisioned) },
        });
        return session;
      },
    );
    // A concurrent first sign-in of the same email won the insert: ask the user to try again.
    if (!opened) throw await this.refused(entry, 'failed', meta);
    return { refreshToken: opened.refreshToken, sessionExpiresAt: opened.expiresAt };
  }

  /** The mapped role of a new account; an IdP can grant admin at most, never owner. */
  private roleFrom(conn: SsoConnectionRow, claims: Record<string, unknown>): OrgRole {
    if (!conn.roleClaim) return 'member';
    const raw = claims[conn.roleClaim];
    const values = Array.isArray(raw) ? raw : [raw];
    const mapped = values.filter((v): v is string => typeof v === 'string').map((v) => conn.roleMapping[v]);
    return mapped.includes('admin') ? 'admin' : 'member';
  }

  /** Records a refused sign-in (reason code only) and returns the error to throw. */
  async refused(entry: SsoEntry | undefined, code: SsoErrorCode, meta: ClientMeta): Promise<SsoLoginError> {
    await this.audit.recordStandalone({
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

function displayName(name: string | undefined, email: string): string {
  const n = name?.trim().slice(0, NAME_MAX);
  return n || email.split('@')[0]!.slice(0, NAME_MAX) || 'SSO user';
}
