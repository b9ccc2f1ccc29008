import type { PasswordHasher } from '../../crypto/password.js';
import { randomToken, sha256Hex } from '../../crypto/random.js';
import type { Database, Queryable } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import { normaliseEmail } from '../../domain/password-policy.js';
import type { OrgRole } from '../../domain/roles.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { isUniqueViolation, memberRepository } from '../../repositories/orgs/member.repository.js';
import type { SsoConnectionRow } from '../../repositories/sso/sso-connection.repository.js';
import {
  ssoIdentityRepository,
  type SsoIdentityRow,
} from '../../repositories/sso/sso-identity.repository.js';
import { userRepository } from '../../repositories/auth/user.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import type { LoginGuard } from '../auth/login-guard.types.js';
import type { MfaService } from '../auth/mfa.service.js';
import type { ClientMeta, SessionService } from '../auth/session.service.js';
import type { SsoErrorCode, SsoIdentity, SsoOutcome } from './sso-shared.js';
import { SsoLoginError } from './sso-shared.js';

/** How long a pending link waits for the account's password. */
export const LINK_TTL_SECONDS = 300;
const NAME_MAX = 200;

export interface SsoLinkDeps {
  guard: LoginGuard;
  mfa: Pick<MfaService, 'verifySecondFactor'>;
}

type Refuse = (conn: SsoConnectionRow, code: SsoErrorCode, meta: ClientMeta) => Promise<SsoLoginError>;

/**
 * Which account an IdP's answer signs in (docs/sso.md, "Accounts and identity links"): by the
 * (connection, subject) link first, never by email alone. An email that matches an existing
 * password/invitation account only yields a pending link, which opens nothing until the
 * account's own password (+ TOTP) is proven once: an admin who points the org's connection at an
 * IdP they control cannot sign in as the owner (or anyone else) by asserting their email.
 */
export class SsoAccounts {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    private readonly sessions: SessionService,
    private readonly hasher: PasswordHasher,
    private readonly clock: Clock,
    private readonly deps: SsoLinkDeps | undefined,
  ) {}

  async finish(
    conn: SsoConnectionRow,
    id: SsoIdentity,
    meta: ClientMeta,
    method: 'oidc' | 'saml',
    refuse: Refuse,
  ): Promise<SsoOutcome> {
    const email = normaliseEmail(id.email);
    const domain = email.split('@').pop() ?? '';
    if (!email.includes('@') || !conn.allowedDomains.includes(domain))
      throw await refuse(conn, 'domain_not_allowed', meta);
    const ident = { orgId: conn.orgId, connectionId: conn.id, issuer: id.issuer, subject: id.subject };

    // 1. A linked subject signs in as its account, whatever email the IdP now asserts.
    const linked = await withSystem(this.db, (tx) =>
      ssoIdentityRepository.find(tx, conn.orgId, conn.id, id.subject),
    );
    if (linked) return this.openSession(conn, linked, meta, method, { provisioned: false });

    const existing = await withSystem(this.db, (tx) => userRepository.findByEmail(tx, email));
    if (existing && existing.orgId !== conn.orgId) throw await refuse(conn, 'account_not_allowed', meta);

    // 2. An existing account not linked yet: its owner must prove the password once.
    if (existing) {
      const handle = randomToken();
      const now = this.clock.now();
      const expiresAt = new Date(now.getTime() + LINK_TTL_SECONDS * 1000);
      await withSystem(this.db, (tx) =>
        ssoIdentityRepository.insertPending(
          tx,
          sha256Hex(handle),
          { ...ident, userId: existing.id, method, expiresAt },
          now,
        ),
      );
      await this.audit.recordStandalone({
        orgId: conn.orgId,
        actorId: null,
        actorKind: 'anonymous',
        action: 'auth.sso_link_pending',
        targetType: 'sso_connection',
        targetId: conn.id,
        ip: meta.ip,
        details: { method },
      });
      return { kind: 'link', handle, ttlSeconds: LINK_TTL_SECONDS };
    }

    // 3. Nobody has this email: just-in-time account, linked to the subject. Hash outside any
    // transaction (slow; PGlite shares one connection). The random password is thrown away.
    const unusableHash = await this.hasher.hash(randomToken());
    const role = roleFrom(conn, id.claims);
    const created = await withTenant(this.db, { orgId: conn.orgId, userId: null }, async (tx) => {
      try {
        const m = await memberRepository.insert(tx, {
          orgId: conn.orgId,
          email,
          name: displayName(id.name, email),
          role,
          passwordHash: unusableHash,
        });
        await ssoIdentityRepository.markNoPassword(tx, m.id);
        if (!(await ssoIdentityRepository.link(tx, { ...ident, userId: m.id }, this.clock.now())))
          throw new SsoLoginError('failed');
        await this.audit.record(tx, {
          orgId: conn.orgId,
          actorId: m.id,
          actorKind: 'user',
          action: 'user.sso_provisioned',
          targetType: 'user',
          targetId: m.id,
          ip: meta.ip,
          details: { connectionId: conn.id, role },
        });
        return m.id;
      } catch (err) {
        if (isUniqueViolation(err)) return undefined;
        throw err;
      }
    });
    // A concurrent first sign-in of the same email or subject won: ask the user to try again.
    if (!created) throw await refuse(conn, 'failed', meta);
    return this.openSession(conn, { ...ident, userId: created }, meta, method, { provisioned: true });
  }

  /**
   * POST /api/v1/auth/sso/link: the pending link of this browser (single use) and the account's
   * password (+ TOTP or recovery code when enabled). Right: the link is stored and a session
   * opens (audit auth.sso_linked). Wrong: refused, and the pending link is gone (sign in again).
   */
  async confirmLink(
    handle: string | undefined,
    password: string,
    code: string | undefined,
    meta: ClientMeta,
  ): Promise<{ refreshToken: string; sessionExpiresAt: Date }> {
    const now = this.clock.now();
    const p = handle
      ? await withSystem(this.db, (tx) => ssoIdentityRepository.consumePending(tx, sha256Hex(handle)))
      : undefined;
    if (!p || p.expiresAt.getTime() <= now.getTime())
      throw new AppError('unauthenticated', 'No single sign-on link is waiting: sign in with SSO again');
    const scope = { orgId: p.orgId, userId: p.userId };
    const user = await withTenant(this.db, scope, (tx) => userRepository.findById(tx, p.userId));
    if (!user || user.orgId !== p.orgId) throw new AppError('invalid_credentials');
    const deps = this.deps;
    if (!deps) throw new AppError('unavailable', 'Linking is not available');
    await deps.guard.check(meta.ip, user.email);
    const fail = async (reason: string) => {
      await deps.guard.failed(meta.ip, user.email);
      await this.audit.recordStandalone({
        orgId: p.orgId,
        actorId: null,
        actorKind: 'anonymous',
        action: 'auth.sso_link_failed',
        targetType: 'user',
        targetId: p.userId,
        ip: meta.ip,
        details: { reason },
      });
      return new AppError('invalid_credentials', 'Password or code is incorrect: sign in with SSO again');
    };
    if (!(await this.hasher.verify(user.passwordHash, password))) throw await fail('bad_password');
    if (user.totpEnabled) {
      const given = code?.trim();
      if (!given) throw await fail('mfa_required');
      const ok = await withTenant(this.db, scope, async (tx) => {
        const locked = await userRepository.lock(tx, user.id);
        return locked ? deps.mfa.verifySecondFactor(tx, locked, given, meta.ip) : undefined;
      });
      if (!ok) throw await fail('bad_code');
    }
    await deps.guard.succeeded(meta.ip, user.email);
    const conn = { id: p.connectionId, orgId: p.orgId };
    const opened = await withTenant(this.db, scope, async (tx) => {
      if (!(await ssoIdentityRepository.link(tx, p, now))) return undefined;
      await this.audit.record(tx, {
        orgId: p.orgId,
        actorId: p.userId,
        actorKind: 'user',
        action: 'auth.sso_linked',
        targetType: 'user',
        targetId: p.userId,
        ip: meta.ip,
        details: { connectionId: conn.id, method: p.method },
      });
      return this.openIn(tx, conn, p, meta, p.method, { provisioned: false, linked: true });
    });
    // The subject or the account got linked meanwhile (another browser): start over.
    if (!opened) throw new AppError('conflict', 'This account or identity is already linked: sign in again');
    return opened;
  }

  private openSession(
    conn: { id: string; orgId: string },
    link: SsoIdentityRow,
    meta: ClientMeta,
    method: 'oidc' | 'saml',
    extra: { provisioned: boolean },
  ): Promise<SsoOutcome> {
    return withTenant(this.db, { orgId: conn.orgId, userId: link.userId }, async (tx) => {
      await ssoIdentityRepository.touch(tx, conn.id, link.subject, this.clock.now());
      return { kind: 'session' as const, ...(await this.openIn(tx, conn, link, meta, method, extra)) };
    });
  }

  private async openIn(
    tx: Queryable,
    conn: { id: string; orgId: string },
    link: SsoIdentityRow,
    meta: ClientMeta,
    method: 'oidc' | 'saml',
    extra: { provisioned: boolean; linked?: boolean },
  ): Promise<{ refreshToken: string; sessionExpiresAt: Date }> {
    const session = await this.sessions.open(tx, { id: link.userId, orgId: conn.orgId }, meta);
    await ssoIdentityRepository.markSsoSession(tx, session.sessionId);
    await this.audit.record(tx, {
      orgId: conn.orgId,
      actorId: link.userId,
      actorKind: 'user',
      action: 'auth.sso_login',
      targetType: 'session',
      targetId: session.sessionId,
      ip: meta.ip,
      details: { connectionId: conn.id, method, ...extra },
    });
    return { refreshToken: session.refreshToken, sessionExpiresAt: session.expiresAt };
  }
}

/** The mapped role of a new account; an IdP can grant admin at most, never owner. */
function roleFrom(conn: SsoConnectionRow, claims: Record<string, unknown>): OrgRole {
  if (!conn.roleClaim) return 'member';
  const raw = claims[conn.roleClaim];
  const values = Array.isArray(raw) ? raw : [raw];
  const mapped = values.filter((v): v is string => typeof v === 'string').map((v) => conn.roleMapping[v]);
  return mapped.includes('admin') ? 'admin' : 'member';
}

function displayName(name: string | undefined, email: string): string {
  const n = name?.trim().slice(0, NAME_MAX);
  return n || email.split('@')[0]!.slice(0, NAME_MAX) || 'SSO user';
}
