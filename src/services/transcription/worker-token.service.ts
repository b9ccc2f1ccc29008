import { lastUsedIsStale, OpaqueTokenCodec } from '../../crypto/opaque-token.js';
import type { Database, Queryable } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { checkTokenName } from '../../domain/token-name.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { recordingJobRepository } from '../../repositories/transcription/recording-job.repository.js';
import { recordingRepository } from '../../repositories/recordings/recording.repository.js';
import {
  workerTokenRepository,
  type WorkerTokenRow,
} from '../../repositories/transcription/worker-token.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import { requirePermission } from '../orgs/org.service.js';

/**
 * Worker tokens: the only credential of a remote transcription worker (`sotto worker`).
 *
 * Format `sotto_wkr_<id: 32 hex>_<secret: 43 base64url>`: the fixed prefix lets secret scanners
 * (GitHub, gitleaks) recognise a leaked token; the id finds the row without a scan; the secret is
 * 256 random bits, stored only as its SHA-256.
 *
 * Why SHA-256 and not argon2: argon2 exists to make guessing a *low-entropy* password expensive.
 * A 256-bit random secret cannot be guessed, so a slow hash adds nothing, while every worker
 * request (a heartbeat every few seconds per job) would pay tens of milliseconds of CPU and
 * memory for it. The stored hash is compared in constant time.
 *
 * An org token claims only that org's jobs; a platform token (org null, created by the operator)
 * serves every org. Revocation is checked on every request and hands the token's jobs back.
 */
export interface WorkerPrincipal {
  tokenId: string;
  /** null: a platform worker (every org). */
  orgId: string | null;
  name: string;
}

export type WorkerTokenView = WorkerTokenRow;

export interface CreatedWorkerToken {
  token: WorkerTokenView;
  /** The only copy of the credential: shown once. */
  secret: string;
}

export const WORKER_TOKEN_PREFIX = 'sotto_wkr_';
const codec = new OpaqueTokenCodec(WORKER_TOKEN_PREFIX);

/** Whether a bearer credential has the worker-token shape (routes use it to refuse it early). */
export const looksLikeWorkerToken = (token: string): boolean => codec.looksLike(token);

const mint = () => codec.mint();

/** A revoked token's jobs go back to the queue at once instead of waiting for their leases. */
async function releaseJobs(tx: Queryable, tokenId: string, now: Date): Promise<string[]> {
  const ids = await recordingJobRepository.releaseHeldBy(tx, tokenId, now);
  for (const id of ids) await recordingRepository.requeue(tx, id, now);
  return ids;
}

export class WorkerTokenService {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /** POST /org/workers: an org admin creates a token that claims only this org's jobs. */
  async createForOrg(actor: Actor, name: string): Promise<CreatedWorkerToken> {
    requirePermission(actor, 'workers.manage');
    const clean = checkTokenName(name);
    const { id, secret, tokenHash } = mint();
    const now = this.clock.now();
    const token = await withTenant(this.db, actor, async (tx) => {
      const row = await workerTokenRepository.insert(tx, {
        id,
        orgId: actor.orgId,
        name: clean,
        tokenHash,
        createdBy: actor.userId,
        now,
      });
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: actor.viaSupportGrant ? 'support' : 'user',
        action: 'worker_token.created',
        targetType: 'worker_token',
        targetId: id,
        ip: actor.ip,
      });
      return row;
    });
    return { token, secret };
  }

  async listForOrg(actor: Actor): Promise<WorkerTokenView[]> {
    requirePermission(actor, 'workers.manage');
    return withTenant(this.db, actor, (tx) => workerTokenRepository.list(tx, actor.orgId));
  }

  /** DELETE /org/workers/:id: 404 for another org's (or a platform) token, like any invisible row. */
  async revokeForOrg(actor: Actor, id: string): Promise<void> {
    requirePermission(actor, 'workers.manage');
    const now = this.clock.now();
    await withTenant(this.db, actor, async (tx) => {
      const row = await workerTokenRepository.find(tx, id);
      if (!row || row.orgId !== actor.orgId) throw notFound('Worker token');
      if (!(await workerTokenRepository.revoke(tx, id, now))) return; // already revoked: idempotent
      const released = await releaseJobs(tx, id, now);
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: actor.viaSupportGrant ? 'support' : 'user',
        action: 'worker_token.revoked',
        targetType: 'worker_token',
        targetId: id,
        ip: actor.ip,
        details: { releasedJobs: released },
      });
    });
  }

  /**
   * `sotto workers add`: the operator creates a platform token (no org) or one for an org named by
   * slug. Audited as a system action, on the platform chain or on the org's chain.
   */
  async createByOperator(opts: { name: string; orgSlug?: string | undefined }): Promise<CreatedWorkerToken> {
    const clean = checkTokenName(opts.name);
    const { id, secret, tokenHash } = mint();
    const now = this.clock.now();
    const token = await withSystem(this.db, async (tx) => {
      let orgId: string | null = null;
      if (opts.orgSlug !== undefined) {
        orgId = (await workerTokenRepository.orgIdBySlug(tx, opts.orgSlug)) ?? null;
        if (!orgId) throw new AppError('not_found', `No organization with the slug "${opts.orgSlug}"`);
      }
      const row = await workerTokenRepository.insert(tx, {
        id,
        orgId,
        name: clean,
        tokenHash,
        createdBy: null,
        now,
      });
      await this.audit.record(tx, {
        orgId,
        actorId: null,
        actorKind: 'system',
        action: 'worker_token.created',
        targetType: 'worker_token',
        targetId: id,
        details: { via: 'cli' },
      });
      return row;
    });
    return { token, secret };
  }

  /** `sotto workers list`: every token, platform and org (no secrets: there are none to show). */
  listAll(): Promise<WorkerTokenView[]> {
    return withSystem(this.db, (tx) => workerTokenRepository.listAll(tx));
  }

  /** `sotto workers revoke ID`: any token. Returns false when it was already revoked. */
  async revokeByOperator(id: string): Promise<boolean> {
    const now = this.clock.now();
    return withSystem(this.db, async (tx) => {
      const row = await workerTokenRepository.find(tx, id);
      if (!row) throw notFound('Worker token');
      if (!(await workerTokenRepository.revoke(tx, id, now))) return false;
      const released = await releaseJobs(tx, id, now);
      await this.audit.record(tx, {
        orgId: row.orgId,
        actorId: null,
        actorKind: 'system',
        action: 'worker_token.revoked',
        targetType: 'worker_token',
        targetId: id,
        details: { via: 'cli', releasedJobs: released },
      });
      return true;
    });
  }

  /**
   * The per-request check of /api/v1/worker: format, row, not revoked, constant-time hash
   * comparison. Every failure is the same 401, so a caller learns nothing about which part failed.
   */
  async authenticate(token: string): Promise<WorkerPrincipal> {
    const refused = () =>
      new AppError('unauthenticated', 'The worker token is not valid (unknown or revoked)');
    const presented = codec.parse(token);
    if (!presented) throw refused();
    const { id } = presented;
    const now = this.clock.now();
    const row = await withSystem(this.db, async (tx) => {
      const found = await workerTokenRepository.findForAuth(tx, id);
      if (!found || found.revokedAt || !codec.matches(found.tokenHash, presented)) return undefined;
      if (lastUsedIsStale(found.lastUsedAt, now)) await workerTokenRepository.touch(tx, id, now);
      return found;
    });
    if (!row) throw refused();
    return { tokenId: row.id, orgId: row.orgId, name: row.name };
  }
}
