import { randomBytes } from 'node:crypto';
import { authenticator } from 'otplib';
import type { Database, Queryable } from '../../db/database.js';
import { DecryptionError } from '../../crypto/envelope.js';
import { sha256Hex } from '../../crypto/random.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { recoveryCodeRepository } from '../../repositories/auth/recovery-code.repository.js';
import { userRepository, type UserAuthRow } from '../../repositories/auth/user.repository.js';
import { accountActorKind, type AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import type { LoginGuard } from './login-guard.types.js';
import { inUserScope, type SessionActor } from './session.service.js';

export const TOTP_ISSUER = 'Sotto';
const TOTP_STEP_SECONDS = 30;
/** One step either side absorbs clock drift between the server and the authenticator app. */
const TOTP_WINDOW = 1;
const SECRET_BYTES = 20; // RFC 4226 recommends 160 bits
export const RECOVERY_CODE_COUNT = 10;
// 32 symbols without look-alikes (0/o, 1/l): each character is exactly 5 random bits.
const RECOVERY_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';
const RECOVERY_GROUPS = 4;
const RECOVERY_GROUP_LENGTH = 4; // 16 characters: 80 bits

export type SecondFactorMethod = 'totp' | 'recovery_code';

function newRecoveryCode(): string {
  const bytes = randomBytes(RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH);
  const chars = [...bytes].map((b) => RECOVERY_ALPHABET[b & 31]!);
  const groups: string[] = [];
  for (let i = 0; i < RECOVERY_GROUPS; i++)
    groups.push(chars.slice(i * RECOVERY_GROUP_LENGTH, (i + 1) * RECOVERY_GROUP_LENGTH).join(''));
  return groups.join('-');
}

/** Users type codes with spaces, dashes or capitals; the stored hash is of the bare form. */
function recoveryCodeHash(code: string): string {
  return sha256Hex(code.toLowerCase().replace(/[\s-]/g, ''));
}

const isTotpShape = (code: string) => /^\d{6}$/.test(code.trim());

/**
 * TOTP second factor (RFC 6238 via otplib's authenticator) and single-use recovery codes.
 *
 * The secret is encrypted at rest (org data key; the master key for support accounts, which
 * have no org). A code is accepted once: the accepted time step is stored and a code is refused
 * unless its step is newer, so a code seen over a shoulder or in a log cannot be replayed.
 */
export class MfaService {
  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly audit: AuditService,
    private readonly guard: LoginGuard,
    private readonly clock: Clock,
  ) {}

  /** Step 1: a new secret, stored encrypted and pending until a code from it is confirmed. */
  async startEnrolment(who: SessionActor): Promise<{ secret: string; otpauthUri: string }> {
    const secret = authenticator.generateSecret(SECRET_BYTES);
    const email = await inUserScope(this.db, who, async (tx) => {
      const user = await userRepository.lock(tx, who.userId);
      if (!user) throw new AppError('unauthenticated');
      if (user.totpEnabled) throw new AppError('conflict', 'TOTP is already enabled; disable it first');
      await userRepository.setPendingTotp(tx, user.id, await this.sealSecret(tx, user, secret));
      await this.audit.record(tx, {
        orgId: who.orgId,
        actorId: who.userId,
        actorKind: accountActorKind(who.orgId),
        action: 'mfa.totp_enrol_started',
        targetType: 'user',
        targetId: who.userId,
        ip: who.ip,
      });
      return user.email;
    });
    return { secret, otpauthUri: authenticator.keyuri(email, TOTP_ISSUER, secret) };
  }

  /** Step 2: a code from the app proves it holds the secret; TOTP is on and recovery codes issued. */
  async confirmEnrolment(who: SessionActor, code: string): Promise<{ recoveryCodes: string[] }> {
    const email = await this.emailOf(who);
    await this.guard.check(who.ip, email);
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    const ok = await inUserScope(this.db, who, async (tx) => {
      const user = await userRepository.lock(tx, who.userId);
      if (!user?.totpSecretEnc) throw new AppError('conflict', 'Start TOTP enrolment first');
      if (user.totpEnabled) throw new AppError('conflict', 'TOTP is already enabled');
      if (!isTotpShape(code) || !(await this.acceptTotp(tx, user, code))) return false;
      await userRepository.enableTotp(tx, user.id);
      await recoveryCodeRepository.replaceAll(
        tx,
        { orgId: user.orgId, userId: user.id },
        codes.map(recoveryCodeHash),
        this.clock.now(),
      );
      await this.audit.record(tx, {
        orgId: who.orgId,
        actorId: who.userId,
        actorKind: accountActorKind(who.orgId),
        action: 'mfa.totp_enabled',
        targetType: 'user',
        targetId: who.userId,
        ip: who.ip,
        details: { recoveryCodes: RECOVERY_CODE_COUNT },
      });
      return true;
    });
    if (!ok) {
      await this.guard.failed(who.ip, email);
      throw new AppError('invalid_code', 'The code is not valid');
    }
    await this.guard.succeeded(who.ip, email);
    return { recoveryCodes: codes };
  }

  /** Turning MFA off needs a current code (TOTP or recovery), not only a stolen access token. */
  async disable(who: SessionActor, code: string): Promise<void> {
    const email = await this.emailOf(who);
    await this.guard.check(who.ip, email);
    const ok = await inUserScope(this.db, who, async (tx) => {
      const user = await userRepository.lock(tx, who.userId);
      if (!user?.totpEnabled) throw new AppError('conflict', 'TOTP is not enabled');
      const method = await this.verifySecondFactor(tx, user, code, who.ip);
      if (!method) return false;
      await userRepository.disableTotp(tx, user.id);
      await recoveryCodeRepository.deleteAll(tx, user.id);
      await this.audit.record(tx, {
        orgId: who.orgId,
        actorId: who.userId,
        actorKind: accountActorKind(who.orgId),
        action: 'mfa.totp_disabled',
        targetType: 'user',
        targetId: who.userId,
        ip: who.ip,
        details: { method },
      });
      return true;
    });
    if (!ok) {
      await this.guard.failed(who.ip, email);
      throw new AppError('invalid_code', 'The code is not valid');
    }
    await this.guard.succeeded(who.ip, email);
  }

  /**
   * Checks a TOTP or recovery code for `user` (whose row the caller has locked or just read) and
   * consumes it. Returns how it was satisfied, or undefined. Recovery-code use is audited here,
   * in the caller's transaction.
   */
  async verifySecondFactor(
    tx: Queryable,
    user: UserAuthRow,
    code: string,
    ip: string,
  ): Promise<SecondFactorMethod | undefined> {
    if (!user.totpEnabled || !user.totpSecretEnc) return undefined;
    if (isTotpShape(code)) return (await this.acceptTotp(tx, user, code)) ? 'totp' : undefined;
    const now = this.clock.now();
    if (!(await recoveryCodeRepository.consume(tx, user.id, recoveryCodeHash(code), now))) return undefined;
    await this.audit.record(tx, {
      orgId: user.orgId,
      actorId: user.id,
      actorKind: accountActorKind(user.orgId),
      action: 'mfa.recovery_code_used',
      targetType: 'user',
      targetId: user.id,
      ip,
      details: { remaining: await recoveryCodeRepository.countUnused(tx, user.id) },
    });
    return 'recovery_code';
  }

  private async acceptTotp(tx: Queryable, user: UserAuthRow, code: string): Promise<boolean> {
    if (!user.totpSecretEnc) return false;
    const secret = await this.openSecret(tx, user, user.totpSecretEnc);
    const epoch = this.clock.now().getTime();
    const delta = authenticator.clone({ epoch, window: TOTP_WINDOW }).checkDelta(code.trim(), secret);
    if (delta === null) return false;
    const step = Math.floor(epoch / 1000 / TOTP_STEP_SECONDS) + delta;
    return userRepository.acceptTotpStep(tx, user.id, step);
  }

  private async emailOf(who: SessionActor): Promise<string> {
    const user = await inUserScope(this.db, who, (tx) => userRepository.findById(tx, who.userId));
    if (!user) throw new AppError('unauthenticated');
    return user.email;
  }

  private platformLabel(userId: string): string {
    return `users:${userId}:totp_secret`;
  }

  private async sealSecret(tx: Queryable, user: UserAuthRow, secret: string): Promise<Buffer> {
    if (user.orgId) {
      return this.keys.encrypt(
        tx,
        { orgId: user.orgId, table: 'users', rowId: user.id, field: 'totp_secret' },
        secret,
      );
    }
    return this.keys.sealPlatformSecret(this.platformLabel(user.id), Buffer.from(secret, 'utf8')).sealed;
  }

  private async openSecret(tx: Queryable, user: UserAuthRow, sealed: Buffer): Promise<string> {
    if (user.orgId) {
      return this.keys.decryptString(
        tx,
        { orgId: user.orgId, table: 'users', rowId: user.id, field: 'totp_secret' },
        sealed,
      );
    }
    try {
      return this.keys.openPlatformSecret(this.platformLabel(user.id), sealed).toString('utf8');
    } catch (err) {
      if (err instanceof DecryptionError)
        throw new AppError('decryption_failed', 'cannot decrypt users.totp_secret', undefined, {
          cause: err,
        });
      throw err;
    }
  }
}
