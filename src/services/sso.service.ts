import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import type { PasswordHasher } from '../crypto/password.js';
import { randomToken, sha256Hex } from '../crypto/random.js';
import type { Database } from '../db/database.js';
import { withSystem, withTenant } from '../db/tenant.js';
import type { Actor } from '../domain/auth-context.js';
import { AppError, notFound } from '../domain/errors.js';
import { normaliseEmail } from '../domain/password-policy.js';
import type { OrgRole } from '../domain/roles.js';
import type { Clock } from '../repositories/clock.repository.js';
import { isUniqueViolation, memberRepository } from '../repositories/member.repository.js';
import {
  OidcError,
  type OidcClientRepository,
  type OidcIdentity,
} from '../repositories/oidc-client.repository.js';
import {
  ssoConnectionRepository,
  type SsoConnectionRow,
  type SsoEntry,
} from '../repositories/sso-connection.repository.js';
import { userRepository } from '../repositories/user.repository.js';
import type { AuditService } from './audit.service.js';
import type { KeyService } from './key.service.js';
import { requirePermission } from './org.service.js';
import type { ClientMeta, SessionService } from './session.service.js';

/** Why a sign-in was refused: the code the panel shows (`/login?sso_error=…`), never details. */
export type SsoErrorCode =
  | 'not_configured'
  | 'state_invalid'
  | 'idp_error'
  | 'token_rejected'
  | 'email_unverified'
  | 'domain_not_allowed'
  | 'account_not_allowed'
  | 'failed';

export class SsoLoginError extends Error {
  constructor(readonly code: SsoErrorCode) {
    super(`SSO sign-in refused: ${code}`);
    this.name = 'SsoLoginError';
  }
}

export interface SsoConnectionView {
  id: string;
  kind: 'oidc';
  issuer: string;
  clientId: string;
  hasClientSecret: true;
  allowedDomains: string[];
  roleClaim: string | null;
  roleMapping: Record<string, 'admin' | 'member'>;
  requireSso: boolean;
  redirectUri: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface SsoConnectionInput {
  issuer: string;
  clientId: string;
  /** Write-only; may be left out on update to keep the stored one. */
  clientSecret?: string | undefined;
  allowedDomains: string[];
  roleClaim?: string | null | undefined;
  roleMapping?: Record<string, 'admin' | 'member'> | undefined;
  requireSso?: boolean | undefined;
}

export interface SsoOptions {
  publicUrl: string;
  allowInsecureIssuers: boolean;
  stateTtlSeconds: number;
}

const NAME_MAX = 200;
const secretAt = (orgId: string, rowId: string) => ({
  orgId,
  table: 'sso_connections',
  rowId,
  field: 'client_secret',
});

/**
 * OIDC single sign-on (docs/sso.md): the org's connection (admins), the sign-in flow (start →
 * IdP → callback → a normal session) and the require-SSO rule password login consults.
 *
 * Tenant boundary: the callback only ever works inside the org whose connection started the
 * flow (the login state names it), provisions accounts into that org only, and refuses an email
 * that belongs to an account of any other org — an IdP of org A can never sign anyone into B.
 */
export class SsoService {
  readonly redirectUri: string;

  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly audit: AuditService,
    private readonly sessions: SessionService,
    private readonly hasher: PasswordHasher,
    private readonly clock: Clock,
    private readonly idp: OidcClientRepository,
    private readonly opts: SsoOptions,
  ) {
    this.redirectUri = `${opts.publicUrl}/api/v1/auth/sso/callback`;
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
      hasClientSecret: true,
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
    const issuer = this.checkIssuer(input.issuer);
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
      if (!before && !input.clientSecret) throw new AppError('validation_failed', 'clientSecret is required');
      const id = before?.id ?? randomUUID();
      const clientSecretEnc = input.clientSecret
        ? await this.keys.encrypt(tx, secretAt(actor.orgId, id), input.clientSecret)
        : before!.clientSecretEnc;
      const requireSso = input.requireSso ?? before?.requireSso ?? false;
      const saved = await ssoConnectionRepository.upsert(tx, {
        id,
        orgId: actor.orgId,
        issuer,
        clientId: input.clientId,
        clientSecretEnc,
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
          secretChanged: Boolean(input.clientSecret),
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

  private checkIssuer(raw: string): string {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new AppError('validation_failed', 'issuer must be a URL');
    }
    const insecureOk = this.opts.allowInsecureIssuers;
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && insecureOk))
      throw new AppError('validation_failed', 'issuer must be an https URL');
    if (url.search || url.hash || url.username || url.password)
      throw new AppError('validation_failed', 'issuer must not carry a query, fragment or credentials');
    // The issuer identifier is compared exactly with the ID token's iss: keep it as given.
    return raw;
  }

  // ---- password login policy ---------------------------------------------------------------

  /** Whether password login is refused for this org's non-owners (system context, pre-tenant). */
  async requiresSso(orgId: string): Promise<boolean> {
    return withSystem(this.db, (tx) => ssoConnectionRepository.requiresSso(tx, orgId));
  }

  // ---- sign-in -------------------------------------------------------------------------------

  /** Starts a sign-in: the IdP URL to redirect to and the handle for the browser's cookie. */
  async start(by: {
    email?: string | undefined;
    org?: string | undefined;
  }): Promise<{ url: string; handle: string; ttlSeconds: number }> {
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
    const { settings } = await this.settingsOf(entry);
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = await this.idp
      .authorizationUrl(settings, {
        redirectUri: this.redirectUri,
        state,
        nonce,
        codeVerifier,
        loginHint: email,
      })
      .catch((err: unknown) => {
        throw new SsoLoginError(err instanceof OidcError ? 'idp_error' : 'failed');
      });
    const handle = randomToken();
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + this.opts.stateTtlSeconds * 1000);
    await withSystem(this.db, (tx) =>
      ssoConnectionRepository.insertState(
        tx,
        sha256Hex(handle),
        { ...entry, state, nonce, codeVerifier, expiresAt },
        now,
      ),
    );
    return { url: url.toString(), handle, ttlSeconds: this.opts.stateTtlSeconds };
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
    const now = this.clock.now();
    const st = handle
      ? await withSystem(this.db, (tx) => ssoConnectionRepository.consumeState(tx, sha256Hex(handle)))
      : undefined;
    if (!st || st.expiresAt.getTime() <= now.getTime())
      throw await this.refused(undefined, 'state_invalid', meta);
    const entry = { connectionId: st.connectionId, orgId: st.orgId };
    const loaded = await this.settingsOf(entry).catch(() => undefined);
    if (!loaded) throw await this.refused(entry, 'not_configured', meta);
    let id: OidcIdentity;
    try {
      id = await this.idp.exchange(loaded.settings, new URL(`${this.redirectUri}?${query}`), st);
    } catch (err) {
      const code: SsoErrorCode =
        err instanceof OidcError && err.reason === 'idp_error' ? 'idp_error' : 'token_rejected';
      throw await this.refused(entry, code, meta);
    }
    const conn = loaded.connection;
    if (!id.email || !id.emailVerified) throw await this.refused(entry, 'email_unverified', meta);
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
          details: { connectionId: conn.id, method: 'oidc', provisioned: Boolean(provisioned) },
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

  private async settingsOf(entry: SsoEntry) {
    const skew = Math.round((this.clock.now().getTime() - Date.now()) / 1000);
    return withTenant(this.db, { orgId: entry.orgId, userId: null }, async (tx) => {
      const connection = await ssoConnectionRepository.find(tx, entry.orgId, entry.connectionId);
      if (!connection) throw new SsoLoginError('not_configured');
      const clientSecret = await this.keys.decryptString(
        tx,
        secretAt(entry.orgId, connection.id),
        connection.clientSecretEnc,
      );
      return {
        connection,
        settings: {
          issuer: connection.issuer,
          clientId: connection.clientId,
          clientSecret,
          allowInsecure: this.opts.allowInsecureIssuers,
          clockSkewSeconds: skew,
        },
      };
    });
  }

  /** Records a refused sign-in (reason code only) and returns the error to throw. */
  private async refused(
    entry: SsoEntry | undefined,
    code: SsoErrorCode,
    meta: ClientMeta,
  ): Promise<SsoLoginError> {
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
