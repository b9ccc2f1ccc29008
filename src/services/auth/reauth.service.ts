import type { PasswordHasher } from '../../crypto/password.js';
import type { Database } from '../../db/database.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { ssoIdentityRepository } from '../../repositories/sso/sso-identity.repository.js';
import { userRepository, type UserAuthRow } from '../../repositories/auth/user.repository.js';
import { accountActorKind, type AuditService } from '../operations/audit.service.js';
import type { LoginGuard } from './login-guard.types.js';
import type { MfaService } from './mfa.service.js';
import { inUserScope, type SessionActor } from './session.service.js';

/** How recent an SSO sign-in must be to stand in for the password of an SSO-only account. */
export const SSO_REAUTH_WINDOW_MS = 10 * 60_000;

/**
 * Re-authentication for destructive account actions (deleting one's account or the whole org):
 * the current password, checked like the password-change route does (login guard, failures
 * audited), and — when the account has a second factor — a TOTP or recovery code, consumed.
 * A stolen access token alone cannot destroy anything.
 *
 * SSO-only accounts (users.password_set = false: provisioned just in time, no password of their
 * own) re-authenticate with a recent SSO sign-in instead: the current session must have begun
 * through the IdP within SSO_REAUTH_WINDOW_MS; otherwise `sso_required` tells them to sign in
 * with SSO again first (docs/sso.md).
 */
export class ReauthService {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    private readonly guard: LoginGuard,
    private readonly mfa: Pick<MfaService, 'verifySecondFactor'>,
    private readonly audit: Pick<AuditService, 'recordStandalone'>,
    /** The SSO-recency check's clock. */
    private readonly clock: Clock,
  ) {}

  async verify(
    who: SessionActor,
    password: string,
    code: string | undefined,
    purpose: string,
  ): Promise<UserAuthRow> {
    const { user, facts } = await inUserScope(this.db, who, async (tx) => ({
      user: await userRepository.findById(tx, who.userId),
      facts: await ssoIdentityRepository.reauthFacts(tx, who.userId, who.sessionId),
    }));
    if (!user) throw new AppError('unauthenticated');
    await this.guard.check(who.ip, user.email);
    if (!facts.passwordSet) {
      // An SSO-only account (just-in-time, its random password discarded) cannot prove a
      // password: a sign-in through the IdP within the last few minutes stands in for it.
      const age = facts.sessionCreatedAt
        ? this.clock.now().getTime() - facts.sessionCreatedAt.getTime()
        : Infinity;
      const recentSso = facts.sessionMethod === 'sso' && age >= 0 && age <= SSO_REAUTH_WINDOW_MS;
      if (!recentSso && !(password && (await this.hasher.verify(user.passwordHash, password)))) {
        await this.failed(who, user, purpose, 'sso_reauth_required');
        throw new AppError(
          'sso_required',
          'Sign in again with single sign-on, then retry within 10 minutes',
          { reauth: 'sso', sso: '/api/v1/auth/sso/start' },
        );
      }
    } else if (!(await this.hasher.verify(user.passwordHash, password))) {
      await this.failed(who, user, purpose, 'bad_password');
      throw new AppError('invalid_credentials', 'Current password is incorrect');
    }
    if (user.totpEnabled) {
      const given = code?.trim();
      if (!given) throw new AppError('mfa_required', 'Enter the code from your authenticator app');
      const ok = await inUserScope(this.db, who, async (tx) => {
        const locked = await userRepository.lock(tx, user.id);
        return locked ? this.mfa.verifySecondFactor(tx, locked, given, who.ip) : undefined;
      });
      if (!ok) {
        await this.failed(who, user, purpose, 'bad_code');
        throw new AppError('invalid_credentials', 'The code is incorrect');
      }
    }
    await this.guard.succeeded(who.ip, user.email);
    return user;
  }

  private async failed(who: SessionActor, user: UserAuthRow, purpose: string, reason: string): Promise<void> {
    await this.guard.failed(who.ip, user.email);
    await this.audit.recordStandalone({
      orgId: who.orgId,
      actorId: who.userId,
      actorKind: accountActorKind(who.orgId),
      action: 'auth.reauth_failed',
      targetType: 'user',
      targetId: who.userId,
      ip: who.ip,
      details: { purpose, reason },
    });
  }
}
