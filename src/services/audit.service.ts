import { createHash } from 'node:crypto';
import type { Database, Queryable } from '../db/database.js';
import { withSystem } from '../db/tenant.js';
import { auditRepository, type AuditRow } from '../repositories/audit.repository.js';
import type { Clock } from '../repositories/clock.repository.js';

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
  ) {}

  /** Append inside the caller's transaction (tenant or system). */
  async record(tx: Queryable, entry: AuditEntry): Promise<void> {
    await auditRepository.lockChain(tx, entry.orgId);
    const head = await auditRepository.head(tx, entry.orgId);
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
    await auditRepository.insert(tx, { ...row, hash: entryHash(row) });
  }

  /** Append in a transaction of its own (events with no surrounding write, e.g. failed logins). */
  async recordStandalone(entry: AuditEntry): Promise<void> {
    await withSystem(this.db, (tx) => this.record(tx, entry));
  }

  list(tx: Queryable, orgId: string, opts: { limit: number; beforeSeq?: number; action?: string }) {
    return auditRepository.list(tx, orgId, opts);
  }

  /** Verifies one chain, or every chain when orgId is omitted. */
  async verify(orgId?: string | null): Promise<ChainReport[]> {
    return withSystem(this.db, async (tx) => {
      const ids = orgId === undefined ? await auditRepository.chainIds(tx) : [orgId];
      const reports: ChainReport[] = [];
      for (const id of ids) reports.push(verifyChain(id, await auditRepository.chain(tx, id)));
      return reports;
    });
  }
}

export function verifyChain(orgId: string | null, rows: AuditRow[]): ChainReport {
  let prev = GENESIS_HASH;
  for (const [i, row] of rows.entries()) {
    const fail = (reason: string): ChainReport => ({
      orgId,
      entries: rows.length,
      ok: false,
      problem: { seq: row.seq, reason },
    });
    if (row.seq !== i + 1) return fail(`entry ${i + 1} is missing (found seq ${row.seq})`);
    if (row.prevHash !== prev) return fail('link to the previous entry is broken');
    const { id: _id, hash, ...rest } = row;
    if (entryHash(rest) !== hash) return fail('entry content does not match its hash (altered)');
    prev = hash;
  }
  return { orgId, entries: rows.length, ok: true };
}
