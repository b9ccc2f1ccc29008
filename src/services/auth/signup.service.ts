import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { PasswordHasher } from '../../crypto/password.js';
import { randomToken, sha256Hex } from '../../crypto/random.js';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import { normaliseEmail } from '../../domain/password-policy.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { Mailer, MailMessage } from '../../adapters/network/mail.adapter.js';
import { isUniqueViolation } from '../../repositories/orgs/member.repository.js';
import { orgSlugRepository } from '../../repositories/orgs/org-slug.repository.js';
import { orgRepository } from '../../repositories/orgs/org.repository.js';
import type { LimiterSpec, RateLimitStore } from '../../adapters/redis/rate-limit.adapter.js';
import { signupVerificationRepository } from '../../repositories/auth/signup-verification.repository.js';
import { userRepository } from '../../repositories/auth/user.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import { assertAcceptablePassword } from './password-strength.js';
import type { ScheduledTask } from '../lifecycle/scheduler.service.js';
import type { ClientMeta } from './session.service.js';

export const SIGNUP_LINK_TTL_MS = 24 * 3600 * 1000;
const SLUG_MAX = 48;
const SIGNUP_ATTEMPTS = 3;
/** Signup mails per address per hour: enough for a lost mail, too few to flood a mailbox. */
const MAIL_LIMIT: LimiterSpec = { name: 'signup-mail', points: 5, durationSeconds: 3600 };

export interface SignupInput {
  email: string;
  password: string;
  name: string;
  organization: string;
}

export interface SignupResult {
  user: { id: string; email: string; name: string; role: 'owner' };
  organization: { id: string; name: string; slug: string };
}

export interface SignupOptions {
  publicUrl: string;
  /**
   * Without SMTP, whether the verification link goes to the server log instead (development
   * and tests: the log is the developer's mailbox). Never in production, where the link is a
   * credential and only the mailbox may hold it.
   */
  logLinksWithoutSmtp: boolean;
}

/** A URL-safe slug from an org name: ASCII letters and digits joined by single dashes. */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, SLUG_MAX)
    .replace(/-+$/g, '');
  return slug || 'org';
}

function firstFreeSlug(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let i = 2; i < 1000; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
  return `${base}-${randomUUID().slice(0, 6)}`;
}

/** Every unusable link gets the same answer: unknown, expired and used look alike. */
const invalidLink = () =>
  new AppError('not_found', 'This link is not valid (it may have expired or been used)');

export interface SignupServiceDeps {
  db: Database;
  hasher: PasswordHasher;
  keys: KeyService;
  audit: AuditService;
  mailer: Mailer;
  limits: RateLimitStore;
  clock: Clock;
  logger: Logger;
  opts: SignupOptions;
}

/**
 * Self-service signup (a new org and its owner) that does not tell whether an address has an
 * account: `request` answers alike for every address — same status and body, and about the same
 * time (the password is estimated and hashed first in both cases, mail goes out after the
 * answer) — and mails the address: a link to finish for a new address, "you already have an
 * account" for a known one. Nothing exists and nobody can log in until the link comes back
 * (`verify`): owning the mailbox is proven before the account acts.
 */
export class SignupService {
  constructor(private readonly deps: SignupServiceDeps) {}

  /** POST /api/v1/auth/signup. Resolves the same way for new and existing addresses. */
  async request(input: SignupInput, meta: ClientMeta): Promise<void> {
    const email = normaliseEmail(input.email);
    const name = input.name.trim();
    const orgName = input.organization.trim();
    // The rules depend on the password alone, never on whether the address is known.
    assertAcceptablePassword(input.password, { email, name, organization: orgName });
    const passwordHash = await this.deps.hasher.hash(input.password);
    const now = this.deps.clock.now();
    const token = randomToken();
    const mailAllowed = (await this.deps.limits.consume(MAIL_LIMIT, sha256Hex(email))).allowed;
    const existing = await withSystem(this.deps.db, async (tx) => {
      const user = await userRepository.findByEmail(tx, email);
      if (!user && mailAllowed)
        await signupVerificationRepository.insert(tx, sha256Hex(token), {
          email,
          name,
          orgName,
          passwordHash,
          createdAt: now,
          expiresAt: new Date(now.getTime() + SIGNUP_LINK_TTL_MS),
        });
      return user;
    });
    if (existing)
      // The account's owner can see that someone tried (ids and reason only).
      await this.deps.audit.recordStandalone({
        orgId: existing.orgId,
        actorId: null,
        actorKind: 'anonymous',
        action: 'auth.signup_existing_email',
        targetType: 'user',
        targetId: existing.id,
        ip: meta.ip,
      });
    if (!mailAllowed) return;
    if (existing) this.deliver(this.existingAccountMail(email), undefined);
    else this.deliver(this.verificationMail(email, token, now), token);
  }

  /** POST /api/v1/auth/signup/verify: creates the org and its owner from a verified request. */
  async verify(token: string, meta: ClientMeta): Promise<SignupResult> {
    const now = this.deps.clock.now();
    const pending = await withSystem(this.deps.db, (tx) =>
      signupVerificationRepository.find(tx, sha256Hex(token), now),
    );
    if (!pending) throw invalidLink();
    const spend = () =>
      withSystem(this.deps.db, (tx) => signupVerificationRepository.deleteForEmail(tx, pending.email));
    let created: SignupResult;
    try {
      created = await this.createOrg(pending, meta);
    } catch (err) {
      // The address got an account meanwhile: its links are spent. Any other failure keeps
      // the link usable for another try.
      if (await withSystem(this.deps.db, (tx) => userRepository.emailTaken(tx, pending.email))) await spend();
      throw err;
    }
    // Used: this link and every other one for the address die with it.
    await spend();
    return created;
  }

  tasks(): ScheduledTask[] {
    return [
      {
        name: 'signup-sweep',
        run: async () => {
          const now = this.deps.clock.now();
          await withSystem(this.deps.db, (tx) => signupVerificationRepository.sweepExpired(tx, now));
        },
      },
    ];
  }

  private async createOrg(
    p: { email: string; name: string; orgName: string; passwordHash: string },
    meta: ClientMeta,
  ): Promise<SignupResult> {
    const { email, name, orgName, passwordHash } = p;
    const base = slugify(orgName);
    for (let attempt = 1; ; attempt++) {
      const pre = await withSystem(this.deps.db, async (tx) => ({
        emailTaken: await userRepository.emailTaken(tx, email),
        slugs: await orgSlugRepository.taken(tx, base),
      }));
      // Only the mailbox's owner gets this far, so saying so reveals nothing to a stranger.
      if (pre.emailTaken) throw new AppError('conflict', 'An account with this email already exists: log in');
      const orgId = randomUUID();
      const userId = randomUUID();
      try {
        // One tenant transaction with the new org's id: the RLS WITH CHECK admits exactly it.
        return await withTenant(this.deps.db, { orgId, userId }, async (tx) => {
          const org = await orgRepository.insert(tx, {
            id: orgId,
            name: orgName,
            slug: firstFreeSlug(base, pre.slugs),
          });
          await this.deps.keys.createOrgKey(tx, orgId);
          if (!(await userRepository.insertOwner(tx, { id: userId, orgId, email, name, passwordHash })))
            throw new AppError('conflict', 'An account with this email already exists: log in');
          const entry = { orgId, actorId: userId, actorKind: 'user' as const, ip: meta.ip };
          await this.deps.audit.record(tx, {
            ...entry,
            action: 'org.created',
            targetType: 'org',
            targetId: orgId,
            details: { slug: org.slug },
          });
          await this.deps.audit.record(tx, {
            ...entry,
            action: 'user.signup',
            targetType: 'user',
            targetId: userId,
            details: { emailVerified: true },
          });
          return {
            user: { id: userId, email, name, role: 'owner' as const },
            organization: { id: org.id, name: org.name, slug: org.slug },
          };
        });
      } catch (err) {
        // A concurrent signup took the slug between our check and insert: pick again.
        if (isUniqueViolation(err) && attempt < SIGNUP_ATTEMPTS) continue;
        if (isUniqueViolation(err)) throw new AppError('conflict', 'Please try again');
        throw err;
      }
    }
  }

  private verificationMail(to: string, token: string, now: Date): MailMessage {
    const expires = new Date(now.getTime() + SIGNUP_LINK_TTL_MS);
    return {
      to,
      subject: 'Confirm your email address for Sotto',
      text: [
        'Someone — hopefully you — asked to create a Sotto organization with this email address.',
        '',
        `To finish, open this link: ${this.link(token)}`,
        '',
        `It works once and expires on ${expires.toUTCString()}.`,
        'If you did not ask for this, ignore this email: no account is created without it.',
      ].join('\n'),
    };
  }

  private existingAccountMail(to: string): MailMessage {
    return {
      to,
      subject: 'You already have a Sotto account',
      text: [
        'Someone — perhaps you — tried to sign up for Sotto with this email address, which',
        'already has an account. Nothing was changed.',
        '',
        `Log in at ${this.deps.opts.publicUrl}/login`,
        '',
        'If this was not you, you can ignore this email.',
      ].join('\n'),
    };
  }

  private link(token: string): string {
    // The fragment (#) keeps the token out of server access logs and Referer headers.
    return `${this.deps.opts.publicUrl}/verify-email#token=${token}`;
  }

  /**
   * Best effort, not awaited: an SMTP round trip must not make one case slower than the other,
   * and a lost mail is a signup to try again. Never logs a body or, in production, a link.
   */
  private deliver(message: MailMessage, token: string | undefined): void {
    if (!this.deps.mailer.enabled) {
      if (!this.deps.opts.logLinksWithoutSmtp) {
        this.deps.logger.warn('signup email not sent: SMTP is not configured (SOTTO_SMTP_URL)');
        return;
      }
      // Development: the log stands in for the mailbox, as the message would have said.
      this.deps.logger.info(
        { to: message.to, ...(token ? { verifyUrl: this.link(token) } : { accountExists: true }) },
        token
          ? 'signup verification link (SMTP not configured; development only)'
          : 'signup for an address that already has an account (SMTP not configured; development only)',
      );
      return;
    }
    this.deps.mailer.send(message).catch((err: unknown) => {
      const { name, code } = err as { name?: string; code?: string };
      this.deps.logger.warn({ errName: name, errCode: code }, 'signup email could not be sent');
    });
  }
}
