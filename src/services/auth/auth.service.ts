import type { PasswordHasher } from '../../crypto/password.js';
import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import { normaliseEmail } from '../../domain/password-policy.js';
import type { OrgRole } from '../../domain/roles.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { orgRepository } from '../../repositories/orgs/org.repository.js';
import { userRepository, type UserAuthRow } from '../../repositories/auth/user.repository.js';
import { sessionRepository } from '../../repositories/auth/session.repository.js';
import { accountActorKind, type AuditService } from '../operations/audit.service.js';
import type { LoginGuard } from './login-guard.types.js';
import type { MfaService, SecondFactorMethod } from './mfa.service.js';
import { assertAcceptablePassword } from './password-strength.js';
import { inUserScope, type ClientMeta, type SessionActor, type SessionService } from './session.service.js';

export interface LoginInput {
  email: string;
  password: string;
  code?: string | undefined;
}

export interface LoginResult {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  sessionExpiresAt: Date;
}

export interface Me {
  user: { id: string; email: string; name: string; role: OrgRole | 'support' };
  organization: { id: string; name: string; slug: string } | null;
  role: OrgRole | 'support';
  mfaEnabled: boolean;
  support?: { platformRole: 'support' };
}

const invalidCredentials = () => new AppError('invalid_credentials', 'Email or password is incorrect');

/** The require-SSO rule (SsoService): whether an org refuses password login for non-owners. */
export interface PasswordLoginPolicy {
  requiresSso(orgId: string): Promise<boolean>;
}

export interface AuthServiceDeps {
  db: Database;
  hasher: PasswordHasher;
  audit: AuditService;
  guard: LoginGuard;
  sessions: SessionService;
  mfa: MfaService;
  clock: Clock;
  ssoPolicy?: PasswordLoginPolicy;
}

/**
 * Accounts: login with an optional second factor, password change, me (signup, with its email
 * verification, is SignupService). Login answers the same for an unknown email and a wrong
 * password — same status, body and (through a dummy hash verification) time — so it cannot be
 * used to find accounts.
 */
export class AuthService {
  constructor(private readonly deps: AuthServiceDeps) {}

  async login(input: LoginInput, meta: ClientMeta): Promise<LoginResult> {
    const email = normaliseEmail(input.email);
    await this.deps.guard.check(meta.ip, email);
    const user = await withSystem(this.deps.db, (tx) => userRepository.findByEmail(tx, email));
    if (!user) {
      await this.deps.hasher.verifyDummy(input.password);
      await this.loginFailed(meta, email, null, 'unknown_account');
      throw invalidCredentials();
    }
    if (!(await this.deps.hasher.verify(user.passwordHash, input.password))) {
      await this.loginFailed(meta, email, user, 'bad_password');
      throw invalidCredentials();
    }
    // Only after the password is proven may the answer reveal that the org uses SSO (no
    // enumeration). Owners keep password login as an audited break-glass path (docs/sso.md).
    const breakGlass = await this.checkSsoRule(user, meta, email);
    const code = input.code?.trim();
    // Only now, with the password proven, may the answer reveal that a second factor is needed.
    if (user.totpEnabled && !code)
      throw new AppError('mfa_required', 'Enter the code from your authenticator app');

    const opened = await inUserScope(this.deps.db, { orgId: user.orgId, userId: user.id }, async (tx) => {
      let method: SecondFactorMethod | 'password' = 'password';
      if (user.totpEnabled) {
        const locked = await userRepository.lock(tx, user.id);
        const ok = locked && (await this.deps.mfa.verifySecondFactor(tx, locked, code!, meta.ip));
        if (!ok) return undefined;
        method = ok;
      }
      const session = await this.deps.sessions.open(tx, user, meta);
      await this.deps.audit.record(tx, {
        orgId: user.orgId,
        actorId: user.id,
        actorKind: accountActorKind(user.orgId),
        action: 'auth.login',
        targetType: 'session',
        targetId: session.sessionId,
        ip: meta.ip,
        details: { method },
      });
      if (breakGlass)
        await this.deps.audit.record(tx, {
          orgId: user.orgId,
          actorId: user.id,
          actorKind: 'user',
          action: 'auth.break_glass_login',
          targetType: 'session',
          targetId: session.sessionId,
          ip: meta.ip,
          details: { method },
        });
      return session;
    });
    if (!opened) {
      await this.loginFailed(meta, email, user, 'bad_code');
      throw invalidCredentials();
    }
    await this.deps.guard.succeeded(meta.ip, email);
    return {
      accessToken: await this.deps.sessions.accessToken(user, opened.sessionId),
      refreshToken: opened.refreshToken,
      expiresIn: this.deps.sessions.accessTokenTtl,
      sessionExpiresAt: opened.expiresAt,
    };
  }

  /** Refuses password login under require-SSO; true when an owner uses it as break-glass. */
  private async checkSsoRule(user: UserAuthRow, meta: ClientMeta, email: string): Promise<boolean> {
    if (!user.orgId || !this.deps.ssoPolicy || !(await this.deps.ssoPolicy.requiresSso(user.orgId)))
      return false;
    if (user.role === 'owner') return true;
    // The password was right: not a guessing failure, so the guard's counters stay as they are.
    await this.deps.guard.succeeded(meta.ip, email);
    await this.deps.audit.recordStandalone({
      orgId: user.orgId,
      actorId: user.id,
      actorKind: 'anonymous',
      action: 'auth.login_failed',
      targetType: 'user',
      targetId: user.id,
      ip: meta.ip,
      details: { reason: 'sso_required' },
    });
    throw new AppError(
      'sso_required',
      'Your organization signs in with single sign-on: use "Continue with SSO"',
      { sso: '/api/v1/auth/sso/start' },
    );
  }

  /** Failures go on the account's chain, or the platform chain when no account matched. */
  private async loginFailed(
    meta: ClientMeta,
    email: string,
    user: UserAuthRow | null,
    reason: 'unknown_account' | 'bad_password' | 'bad_code',
  ): Promise<void> {
    await this.deps.guard.failed(meta.ip, email);
    await this.deps.audit.recordStandalone({
      orgId: user?.orgId ?? null,
      actorId: user?.id ?? null,
      actorKind: 'anonymous',
      action: 'auth.login_failed',
      targetType: user ? 'user' : undefined,
      targetId: user?.id,
      ip: meta.ip,
      details: { reason, ...(user ? {} : { email }) },
    });
  }

  /** Changes my password; every other session ends (a thief's included), this one stays. */
  async changePassword(who: SessionActor, currentPassword: string, newPassword: string): Promise<void> {
    const user = await inUserScope(this.deps.db, who, (tx) => userRepository.findById(tx, who.userId));
    if (!user) throw new AppError('unauthenticated');
    await this.deps.guard.check(who.ip, user.email);
    if (!(await this.deps.hasher.verify(user.passwordHash, currentPassword))) {
      await this.deps.guard.failed(who.ip, user.email);
      await this.deps.audit.recordStandalone({
        orgId: who.orgId,
        actorId: who.userId,
        actorKind: accountActorKind(who.orgId),
        action: 'auth.password_change_failed',
        targetType: 'user',
        targetId: who.userId,
        ip: who.ip,
        details: { reason: 'bad_password' },
      });
      throw new AppError('invalid_credentials', 'Current password is incorrect');
    }
    await this.deps.guard.succeeded(who.ip, user.email);
    assertAcceptablePassword(newPassword, { email: user.email, name: user.name });
    const hash = await this.deps.hasher.hash(newPassword);
    const now = this.deps.clock.now();
    await inUserScope(this.deps.db, who, async (tx) => {
      await userRepository.updatePassword(tx, who.userId, hash, now);
      const revoked = await sessionRepository.revokeAllOfUser(
        tx,
        who.userId,
        'password_changed',
        now,
        who.sessionId,
      );
      await this.deps.audit.record(tx, {
        orgId: who.orgId,
        actorId: who.userId,
        actorKind: accountActorKind(who.orgId),
        action: 'auth.password_changed',
        targetType: 'user',
        targetId: who.userId,
        ip: who.ip,
        details: { revokedSessions: revoked },
      });
    });
  }

  async me(who: SessionActor): Promise<Me> {
    return inUserScope(this.deps.db, who, async (tx) => {
      const user = await userRepository.findById(tx, who.userId);
      if (!user) throw new AppError('unauthenticated');
      const role = user.role ?? 'support';
      const org = user.orgId ? await orgRepository.find(tx, user.orgId) : undefined;
      return {
        user: { id: user.id, email: user.email, name: user.name, role },
        organization: org ? { id: org.id, name: org.name, slug: org.slug } : null,
        role,
        mfaEnabled: user.totpEnabled,
        ...(user.platformRole === 'support' ? { support: { platformRole: 'support' as const } } : {}),
      };
    });
  }
}
