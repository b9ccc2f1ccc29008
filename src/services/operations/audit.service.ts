import { createHash } from 'node:crypto';
import type { Database, Queryable } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError } from '../../domain/errors.js';
import { actorCan } from '../../domain/api-scopes.js';
import {
  auditRepository,
  type AuditListOptions,
  type AuditRow,
} from '../../repositories/operations/audit.repository.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { withNames, type AuditEntryView } from './audit-names.js';
import type { KeyService } from '../keys/key.service.js';

/**
 * Tamper-evident audit log: each entry's hash covers its content and the previous entry's hash,
 * per organization. Entries are written in the same transaction as the action they record, so
 * an action and its record commit or vanish together.
 *
 * Details must never carry secrets or content: ids, roles, counts, reasons only.
 */
export interface AuditEntry {
  orgId: string | null;
  actorId: string | null;
  actorKind: AuditRow['actorKind'];
  action: string;
  targetType?: string | undefined;
  targetId?: string | undefined;
  ip?: string | undefined;
  details?: Record<string, unknown> | undefined;
}

/** Who acts on their own account: an org member, or a platform support user (no org). */
export const accountActorKind = (orgId: string | null): 'user' | 'support' => (orgId ? 'user' : 'support');

export const GENESIS_HASH = '0'.repeat(64);

/** Deterministic JSON (sorted keys) so a hash can be recomputed from what the database returns. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}

export function entryHash(row: Omit<AuditRow, 'id' | 'hash'>): string {
  const body = canonical({
    orgId: row.orgId,
    seq: row.seq,
    at: row.at.toISOString(),
    actorId: row.actorId,
    actorKind: row.actorKind,
    action: row.action,
    targetType: row.targetType,
    targetId: row.targetId,
    ip: row.ip,
    details: row.details,
    prevHash: row.prevHash,
  });
  return createHash('sha256').update(body).digest('hex');
}

export interface ChainReport {
  orgId: string | null;
  entries: number;
  ok: boolean;
  /** First problem found: an altered entry, a gap (removed entry) or a broken link. */
  problem?: { seq: number; reason: string };
}

export class AuditService {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    /** Decrypts recording titles for the log's readers (read); without it they stay ids. */
    private readonly keys?: KeyService,
  ) {}

  /**
   * Append inside the caller's transaction (tenant or system). In a transaction opened for an
   * actor signed in with a personal API token (withTenant), the entry names the token
   * (`details.apiTokenId`): the person acted, through that token. Done here, once, not by callers.
   */
  async record(tx: Queryable, entry: AuditEntry): Promise<void> {
    if (tx.apiTokenId && entry.actorId && entry.orgId === tx.tenantOrgId)
      entry = { ...entry, details: { ...entry.details, apiTokenId: tx.apiTokenId } };
    await auditRepository.lockChain(tx, entry.orgId);
    // Continue from the recorded head, not from the last row present: if rows were removed from
    // the end, the next entry leaves a visible gap instead of quietly taking their place. (No head
    // yet: a chain from before heads existed, or a head removed by hand, which verify reports.)
    const head =
      (await auditRepository.head(tx, entry.orgId)) ?? (await auditRepository.lastEntry(tx, entry.orgId));
    const row = {
      orgId: entry.orgId,
      seq: (head?.seq ?? 0) + 1,
      // Millisecond precision survives the database round trip, so the hash can be recomputed.
      at: new Date(Math.floor(this.clock.now().getTime())),
      actorId: entry.actorId,
      actorKind: entry.actorKind,
      action: entry.action,
      targetType: entry.targetType ?? null,
      targetId: entry.targetId ?? null,
      ip: entry.ip ?? null,
      details: entry.details ?? {},
      prevHash: head?.hash ?? GENESIS_HASH,
    };
    const hash = entryHash(row);
    await auditRepository.insert(tx, { ...row, hash });
    await auditRepository.setHead(tx, entry.orgId, row.seq, hash, row.at);
  }

  /** Append in a transaction of its own (events with no surrounding write, e.g. failed logins). */
  async recordStandalone(entry: AuditEntry): Promise<void> {
    await withSystem(this.db, (tx) => this.record(tx, entry));
  }

  list(tx: Queryable, orgId: string, opts: { limit: number; beforeSeq?: number; action?: string }) {
    return auditRepository.list(tx, orgId, opts);
  }

  /**
   * GET /audit: one page of the actor's org log (newest first) read under RLS, with the whole
   * chain's verification. Verification reads the chain in the system context, in its own
   * transaction after the page's (never nested: PGlite has one connection).
   */
  async read(
    actor: Actor,
    opts: AuditListOptions,
  ): Promise<{ entries: AuditEntryView[]; actions: string[]; verification: ChainReport }> {
    if (!actorCan(actor, 'audit.read')) throw new AppError('forbidden', 'Your role does not allow this');
    const { entries, actions } = await withTenant(this.db, actor, async (tx) => ({
      entries: await withNames(tx, this.keys, actor, await auditRepository.list(tx, actor.orgId, opts)),
      actions: await auditRepository.actions(tx, actor.orgId),
    }));
    const [verification] = await this.verify(actor.orgId);
    return { entries, actions, verification: verification ?? { orgId: actor.orgId, entries: 0, ok: true } };
  }

  /** Verifies one chain, or every chain when orgId is omitted. */
  async verify(orgId?: string | null): Promise<ChainReport[]> {
    return withSystem(this.db, async (tx) => {
      const ids = orgId === undefined ? await auditRepository.chainIds(tx) : [orgId];
      const reports: ChainReport[] = [];
      for (const id of ids) {
        const rows = await auditRepository.chain(tx, id);
        reports.push(verifyChain(id, rows, await auditRepository.head(tx, id)));
      }
      return reports;
    });
  }
}

/**
 * Checks every link and hash, then compares the last entry with the recorded head: the links alone
 * cannot reveal entries removed from the end of a chain.
 */
export function verifyChain(
  orgId: string | null,
  rows: AuditRow[],
  head?: { seq: number; hash: string },
): ChainReport {
  let prev = GENESIS_HASH;
  const fail = (seq: number, reason: string): ChainReport => ({
    orgId,
    entries: rows.length,
    ok: false,
    problem: { seq, reason },
  });
  for (const [i, row] of rows.entries()) {
    if (row.seq !== i + 1) return fail(row.seq, `entry ${i + 1} is missing (found seq ${row.seq})`);
    if (row.prevHash !== prev) return fail(row.seq, 'link to the previous entry is broken');
    const { id: _id, hash, ...rest } = row;
    if (entryHash(rest) !== hash) return fail(row.seq, 'entry content does not match its hash (altered)');
    prev = hash;
  }
  const last = rows.at(-1);
  if (!head) {
    return last ? fail(last.seq, 'the chain head record is missing') : { orgId, entries: 0, ok: true };
  }
  if (!last || head.seq > last.seq) {
    const from = (last?.seq ?? 0) + 1;
    const span = from === head.seq ? `entry ${from} is` : `entries ${from}-${head.seq} are`;
    return fail(from, `${span} missing (removed from the end of the chain)`);
  }
  if (head.seq < last.seq) return fail(head.seq + 1, 'entries beyond the recorded head were added by hand');
  if (head.hash !== last.hash) return fail(last.seq, 'the last entry does not match the recorded head');
  return { orgId, entries: rows.length, ok: true };
}
