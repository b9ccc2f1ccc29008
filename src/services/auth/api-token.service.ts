import { lastUsedIsStale, OpaqueTokenCodec } from '../../crypto/opaque-token.js';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { actorCan, apiScopes, scopePermissions, type ApiScope } from '../../domain/api-scopes.js';
import type { Actor } from '../../domain/auth-context.js';
import { checkTokenName } from '../../domain/token-name.js';
import { AppError, notFound } from '../../domain/errors.js';
import { can } from '../../domain/roles.js';
import { apiTokenRepository, type ApiTokenRow } from '../../repositories/auth/api-token.repository.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';

/**
 * Personal API tokens: a user's credential for scripts, `sotto bot` and integrations.
 *
 * Format `sotto_pat_<id: 32 hex>_<secret: 43 base64url>`, like worker tokens (the shared codec,
 * crypto/opaque-token.ts, says why SHA-256 and not argon2): the prefix lets secret scanners spot a
 * leak, the id finds the row, the 256-bit secret is stored only as its hash and compared in
 * constant time. At every request the token is checked (not revoked, not expired) together with
 * its user's membership as it is now, so removing the user or lowering their role takes effect at
 * once; the actor then carries the token's scopes, which narrow every permission check
 * (domain/api-scopes.ts `actorCan`).
 */
export interface ApiTokenView {
  id: string;
  userId: string;
  name: string;
  scopes: ApiScope[];
  createdAt: Date;
  expiresAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  status: 'active' | 'expired' | 'revoked';
}

export interface CreatedApiToken {
  token: ApiTokenView;
  /** The only copy of the credential: shown once. */
  secret: string;
}

export const API_TOKEN_PREFIX = 'sotto_pat_';
const codec = new OpaqueTokenCodec(API_TOKEN_PREFIX);
/** Live tokens per user: enough for every script, small enough to keep lists and audits sane. */
export const MAX_ACTIVE_TOKENS = 50;
const DAY_MS = 86_400_000;

export const looksLikeApiToken = (token: string): boolean => codec.looksLike(token);

const nameLocation = (orgId: string, id: string) => ({
  orgId,
  table: 'api_tokens',
  rowId: id,
  field: 'name',
});

function checkScopes(actor: Actor, scopes: readonly string[]): ApiScope[] {
  const unique = [...new Set(scopes)];
  if (unique.length === 0 || unique.some((s) => !(apiScopes as readonly string[]).includes(s)))
    throw new AppError('bad_request', `Scopes must be one or more of: ${apiScopes.join(', ')}`);
  // A scope the role cannot use at all would be a dead letter today and a surprise if the role is
  // raised later: refuse it now.
  for (const s of unique as ApiScope[])
    if (!scopePermissions[s].some((p) => can(actor.role, p)))
      throw new AppError('forbidden', `Your role cannot use the scope ${s}`);
  return unique as ApiScope[];
}

/** Tokens are managed with a signed-in session only: a token never mints or lists tokens. */
function requireSessionActor(actor: Actor): void {
  if (actor.apiToken) throw new AppError('forbidden', 'API tokens cannot manage API tokens: sign in');
  if (actor.viaSupportGrant) throw new AppError('forbidden', 'Support staff cannot hold API tokens');
}

export class ApiTokenService {
  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly maxDays: number,
  ) {}

  async create(
    actor: Actor,
    input: { name: string; scopes: readonly string[]; expiresInDays?: number | undefined },
  ): Promise<CreatedApiToken> {
    requireSessionActor(actor);
    const name = checkTokenName(input.name);
    const scopes = checkScopes(actor, input.scopes);
    const days = input.expiresInDays ?? Math.min(90, this.maxDays);
    if (!Number.isInteger(days) || days < 1 || days > this.maxDays)
      throw new AppError('bad_request', `expiresInDays must be a whole number from 1 to ${this.maxDays}`);
    const { id, secret, tokenHash } = codec.mint();
    const now = this.clock.now();
    const token = await withTenant(this.db, actor, async (tx) => {
      if ((await apiTokenRepository.countActive(tx, actor.userId, now)) >= MAX_ACTIVE_TOKENS)
        throw new AppError(
          'conflict',
          `At most ${MAX_ACTIVE_TOKENS} active tokens per user: revoke one first`,
        );
      const row = await apiTokenRepository.insert(tx, {
        id,
        orgId: actor.orgId,
        userId: actor.userId,
        nameEnc: await this.keys.encrypt(tx, nameLocation(actor.orgId, id), name),
        scopes,
        tokenHash,
        now,
        expiresAt: new Date(now.getTime() + days * DAY_MS),
      });
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'api_token.created',
        targetType: 'api_token',
        targetId: id,
        ip: actor.ip,
        details: { scopes, expiresInDays: days },
      });
      return row;
    });
    return { token: this.view(token, name), secret };
  }

  /** One's own tokens; with `all`, an admin's view of every member's tokens. */
  async list(actor: Actor, opts: { all?: boolean | undefined } = {}): Promise<ApiTokenView[]> {
    requireSessionActor(actor);
    if (opts.all && !actorCan(actor, 'members.manage'))
      throw new AppError('forbidden', 'Only admins can list every member’s tokens');
    return withTenant(this.db, actor, async (tx) => {
      const rows = await apiTokenRepository.list(tx, opts.all ? undefined : actor.userId);
      return Promise.all(
        rows.map(async (r) =>
          this.view(r, await this.keys.decryptString(tx, nameLocation(r.orgId, r.id), r.nameEnc)),
        ),
      );
    });
  }

  /** Revokes one's own token, or (admins) a member's. Anything else is exactly 404. */
  async revoke(actor: Actor, id: string): Promise<void> {
    requireSessionActor(actor);
    const now = this.clock.now();
    await withTenant(this.db, actor, async (tx) => {
      const row = await apiTokenRepository.find(tx, id);
      const mine = row?.userId === actor.userId;
      if (!row || row.orgId !== actor.orgId || (!mine && !actorCan(actor, 'members.manage')))
        throw notFound('API token');
      if (!(await apiTokenRepository.revoke(tx, id, now))) return; // idempotent
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'api_token.revoked',
        targetType: 'api_token',
        targetId: id,
        ip: actor.ip,
        details: { ownerId: row.userId },
      });
    });
  }

  /**
   * The per-request check: format, row, hash (constant time), not revoked, not expired, user
   * still a member of the token's org. Every failure is the same 401.
   */
  async authenticate(token: string, ip: string): Promise<Actor> {
    const refused = () =>
      new AppError('unauthenticated', 'The API token is not valid (unknown, expired or revoked)');
    const presented = codec.parse(token);
    if (!presented) throw refused();
    const { id } = presented;
    const now = this.clock.now();
    const actor = await withSystem(this.db, async (tx) => {
      const t = await apiTokenRepository.findForAuth(tx, id);
      if (!t || !codec.matches(t.tokenHash, presented)) return undefined;
      if (t.revokedAt || t.expiresAt.getTime() <= now.getTime()) return undefined;
      if (t.userOrgId !== t.orgId || !t.userRole) return undefined;
      // Read-only unless last_used_at is over a minute old: a busy script must not turn every
      // request into a write (on PGlite, writes serialise everything).
      if (lastUsedIsStale(t.lastUsedAt, now)) await apiTokenRepository.touch(tx, id, now);
      return {
        userId: t.userId,
        orgId: t.orgId,
        role: t.userRole,
        // No session: the token's id stands in (live sockets re-check the token, not a session).
        sessionId: t.id,
        viaSupportGrant: false,
        ip,
        apiToken: { id: t.id, scopes: t.scopes },
      } satisfies Actor;
    });
    if (!actor) throw refused();
    return actor;
  }

  private view(r: ApiTokenRow, name: string): ApiTokenView {
    const status = r.revokedAt
      ? 'revoked'
      : r.expiresAt.getTime() <= this.clock.now().getTime()
        ? 'expired'
        : 'active';
    return {
      id: r.id,
      userId: r.userId,
      name,
      scopes: r.scopes,
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
      lastUsedAt: r.lastUsedAt,
      revokedAt: r.revokedAt,
      status,
    };
  }
}
