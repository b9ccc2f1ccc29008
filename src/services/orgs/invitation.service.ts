import type { PasswordHasher } from '../../crypto/password.js';
import { randomToken, sha256Hex } from '../../crypto/random.js';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import { canAssignRole, type OrgRole } from '../../domain/roles.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import {
  invitationRepository,
  type Invitation,
  type InvitationRole,
} from '../../repositories/orgs/invitation.repository.js';
import type { Mailer } from '../../adapters/network/mail.adapter.js';
import { isUniqueViolation, memberRepository } from '../../repositories/orgs/member.repository.js';
import { orgRepository } from '../../repositories/orgs/org.repository.js';
import type { Logger } from 'pino';
import type { AuditService } from '../operations/audit.service.js';
import { requirePermission } from './org.service.js';
import { assertAcceptablePassword } from '../auth/password-strength.js';

export const INVITATION_TTL_MS = 7 * 24 * 3600 * 1000;

export type InvitationStatus = 'pending' | 'accepted' | 'revoked' | 'expired';

export interface InvitationView extends Invitation {
  status: InvitationStatus;
}

export interface CreatedInvitation {
  invitation: InvitationView;
  /** Contains the only copy of the token: shown once to the inviting admin, never stored or logged. */
  inviteUrl: string;
  emailSent: boolean;
}

export interface AcceptedInvitation {
  user: { id: string; email: string; name: string; role: OrgRole };
  organization: { id: string; name: string; slug: string };
}

export interface InvitationPreview {
  organization: { name: string };
  /** Null when the inviting account is gone. */
  invitedBy: { name: string } | null;
  email: string;
  role: InvitationRole;
  expiresAt: Date;
}

export interface InvitationServiceDeps {
  db: Database;
  audit: AuditService;
  hasher: PasswordHasher;
  mailer: Mailer;
  clock: Clock;
  logger: Logger;
  publicUrl: string;
}

/** Every unusable token gets the same answer: unknown, expired, used and revoked look alike. */
const invalidToken = () => new AppError('not_found', 'This invitation is not valid (it may have expired)');

export class InvitationService {
  constructor(private readonly deps: InvitationServiceDeps) {}

  statusOf(inv: Invitation, now = this.deps.clock.now()): InvitationStatus {
    if (inv.acceptedAt) return 'accepted';
    if (inv.revokedAt) return 'revoked';
    return inv.expiresAt.getTime() <= now.getTime() ? 'expired' : 'pending';
  }

  async create(actor: Actor, input: { email: string; role: InvitationRole }): Promise<CreatedInvitation> {
    requirePermission(actor, 'members.manage');
    if (!canAssignRole(actor.role, input.role)) {
      throw new AppError('forbidden', `You cannot invite ${input.role}s`);
    }
    const token = randomToken();
    const now = this.deps.clock.now();
    const { invitation, orgName } = await withTenant(this.deps.db, actor, async (tx) => {
      // Only this org's members are visible here, so this reveals nothing about other orgs.
      if (await memberRepository.findByEmail(tx, actor.orgId, input.email)) {
        throw new AppError('conflict', 'This person is already a member');
      }
      // A new invitation replaces a pending one: only the newest link works.
      const replaced = await invitationRepository.revokePendingFor(tx, actor.orgId, input.email, now);
      const invitation = await invitationRepository.insert(tx, {
        orgId: actor.orgId,
        email: input.email,
        role: input.role,
        tokenHash: sha256Hex(token),
        invitedBy: actor.userId,
        createdAt: now,
        expiresAt: new Date(now.getTime() + INVITATION_TTL_MS),
      });
      await this.deps.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'invitation.created',
        targetType: 'invitation',
        targetId: invitation.id,
        ip: actor.ip,
        details: { email: input.email, role: input.role, replaced },
      });
      const org = await orgRepository.find(tx, actor.orgId);
      return { invitation, orgName: org?.name ?? 'Sotto' };
    });

    // The fragment (#) keeps the token out of server access logs and Referer headers.
    const inviteUrl = `${this.deps.publicUrl}/invite#token=${token}`;
    // eslint-disable-next-line no-control-regex -- org names go into a mail header
    const safeOrgName = orgName.replace(/[\u0000-\u001f\u007f]/g, ' ');
    const emailSent = await this.sendEmail(input.email, safeOrgName, inviteUrl, invitation.expiresAt);
    const emailSentAt = emailSent ? await this.markEmailSent(actor, invitation.id) : null;
    return { invitation: { ...invitation, emailSentAt, status: 'pending' }, inviteUrl, emailSent };
  }

  async list(actor: Actor, limit = 100): Promise<InvitationView[]> {
    requirePermission(actor, 'members.manage');
    const now = this.deps.clock.now();
    const rows = await withTenant(this.deps.db, actor, (tx) =>
      invitationRepository.list(tx, actor.orgId, limit),
    );
    return rows.map((inv) => ({ ...inv, status: this.statusOf(inv, now) }));
  }

  async revoke(actor: Actor, id: string): Promise<void> {
    requirePermission(actor, 'members.manage');
    await withTenant(this.deps.db, actor, async (tx) => {
      const inv = await invitationRepository.find(tx, actor.orgId, id);
      if (!inv) throw notFound('Invitation');
      if (!canAssignRole(actor.role, inv.role)) throw new AppError('forbidden', 'You cannot revoke this');
      if (!(await invitationRepository.revoke(tx, actor.orgId, id, this.deps.clock.now()))) {
        throw new AppError('conflict', 'This invitation was already accepted or revoked');
      }
      await this.deps.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'invitation.revoked',
        targetType: 'invitation',
        targetId: id,
        ip: actor.ip,
        details: { email: inv.email, role: inv.role },
      });
    });
  }

  /** Creates the invited account in the inviting org, with the invited role. Unauthenticated. */
  /**
   * What the accept page shows before anyone types a password: the organization, who invited
   * them, the address and role. The token is the credential, as for accept: an unusable one gets
   * the same 404, so this reveals nothing the link's holder could not learn by accepting.
   */
  async preview(token: string): Promise<InvitationPreview> {
    return withSystem(this.deps.db, async (tx) => {
      const inv = await invitationRepository.findByTokenHash(tx, sha256Hex(token));
      if (!inv || this.statusOf(inv) !== 'pending') throw invalidToken();
      const org = await orgRepository.find(tx, inv.orgId);
      if (!org) throw invalidToken();
      const inviter = inv.invitedBy ? await memberRepository.find(tx, inv.orgId, inv.invitedBy) : undefined;
      return {
        organization: { name: org.name },
        invitedBy: inviter ? { name: inviter.name } : null,
        email: inv.email,
        role: inv.role,
        expiresAt: inv.expiresAt,
      };
    });
  }

  async accept(
    input: { token: string; password: string; name: string },
    ip: string,
  ): Promise<AcceptedInvitation> {
    const tokenHash = sha256Hex(input.token);
    const found = await withSystem(this.deps.db, async (tx) => {
      const inv = await invitationRepository.findByTokenHash(tx, tokenHash);
      if (!inv || this.statusOf(inv) !== 'pending') throw invalidToken();
      if (await memberRepository.emailTaken(tx, inv.email)) {
        throw new AppError('conflict', 'An account with this email already exists');
      }
      return inv;
    });
    assertAcceptablePassword(input.password, { email: found.email, name: input.name });
    // Hash outside any transaction: it is slow, and PGlite has one connection to share.
    const passwordHash = await this.deps.hasher.hash(input.password);

    return withTenant(this.deps.db, { orgId: found.orgId, userId: null }, async (tx) => {
      // Re-check under lock: the token may have been used or revoked while we hashed.
      const inv = await invitationRepository.lockByTokenHash(tx, found.orgId, tokenHash);
      if (!inv || this.statusOf(inv) !== 'pending') throw invalidToken();
      const org = await orgRepository.find(tx, inv.orgId);
      if (!org) throw invalidToken();
      let user;
      try {
        user = await memberRepository.insert(tx, {
          orgId: inv.orgId,
          email: inv.email,
          name: input.name,
          role: inv.role,
          passwordHash,
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw new AppError('conflict', 'An account with this email already exists');
        throw err;
      }
      await invitationRepository.markAccepted(tx, inv.orgId, inv.id, this.deps.clock.now());
      await this.deps.audit.record(tx, {
        orgId: inv.orgId,
        actorId: user.id,
        actorKind: 'user',
        action: 'invitation.accepted',
        targetType: 'invitation',
        targetId: inv.id,
        ip,
        details: { role: inv.role, invitedBy: inv.invitedBy },
      });
      return {
        user: { id: user.id, email: user.email, name: user.name, role: user.role },
        organization: { id: org.id, name: org.name, slug: org.slug },
      };
    });
  }

  /**
   * Remembers that the email went out, for the list's "email sent". A failure here must not turn
   * a created and mailed invitation into an error (the admin would invite again and kill the
   * mailed link): the list then says no email was sent, which errs on the side of giving the link.
   */
  private async markEmailSent(actor: Actor, id: string): Promise<Date | null> {
    const at = this.deps.clock.now();
    try {
      await withTenant(this.deps.db, actor, (tx) =>
        invitationRepository.markEmailSent(tx, actor.orgId, id, at),
      );
      return at;
    } catch (err) {
      const { name, code } = err as { name?: string; code?: string };
      this.deps.logger.warn(
        { errName: name, errCode: code },
        'invitation email sent but not recorded as sent',
      );
      return null;
    }
  }

  /** Best effort after commit: the admin still has the link if mail fails. Never logs the link. */
  private async sendEmail(to: string, orgName: string, url: string, expiresAt: Date): Promise<boolean> {
    if (!this.deps.mailer.enabled) return false;
    try {
      await this.deps.mailer.send({
        to,
        subject: `You are invited to ${orgName} on Sotto`,
        text: [
          `You have been invited to join ${orgName} on Sotto.`,
          '',
          `Accept the invitation: ${url}`,
          '',
          `This link works once and expires on ${expiresAt.toUTCString()}.`,
          'If you did not expect this invitation, ignore this email.',
        ].join('\n'),
      });
      return true;
    } catch (err) {
      const { name, code } = err as { name?: string; code?: string };
      this.deps.logger.warn({ errName: name, errCode: code }, 'invitation email could not be sent');
      return false;
    }
  }
}
