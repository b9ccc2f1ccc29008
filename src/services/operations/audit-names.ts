import type { Queryable } from '../../db/database.js';
import type { Actor } from '../../domain/auth-context.js';
import { actorCan } from '../../domain/api-scopes.js';
import { auditRepository, type AuditRow } from '../../repositories/operations/audit.repository.js';
import { recordingRepository } from '../../repositories/recordings/recording.repository.js';
import type { KeyService } from '../keys/key.service.js';
import { titleLocation } from '../recordings/recording.service.js';

/** An audit entry as the panel shows it: who and what by name, beside the ids the chain keeps. */
export interface AuditEntryView extends AuditRow {
  /** The acting user's name and email when they are (still) a user of this org. */
  actorName: string | null;
  actorEmail: string | null;
  /** A target user's "name (email)", or a recording's title for callers who may read it. */
  targetLabel: string | null;
}

/**
 * What a customer's log calls platform support staff who acted through the org's grant. The
 * grant is given to Sotto, not to a person: the staff member's own name and email are theirs to
 * keep (the org has no relationship with them, and their users list is not the org's to read),
 * while `actorId` stays in the entry so Sotto can say who it was when the customer asks.
 */
export const SUPPORT_ACTOR_NAME = 'Sotto support';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Names for one page of the org's log, read in the caller's tenant transaction: users of this
 * org only (an id from anywhere else stays a bare id), and recording titles decrypted only when
 * the caller may read every recording of the org (an API token with `audit:read` alone may not:
 * its entries keep the ids). Deleted users and recordings have no name any more.
 */
export async function withNames(
  tx: Queryable,
  keys: KeyService | undefined,
  actor: Actor,
  entries: AuditRow[],
): Promise<AuditEntryView[]> {
  const userIds = new Set<string>();
  const recordingIds = new Set<string>();
  for (const e of entries) {
    if (e.actorKind === 'user' && e.actorId && UUID.test(e.actorId)) userIds.add(e.actorId);
    if (e.targetType === 'user' && e.targetId && UUID.test(e.targetId)) userIds.add(e.targetId);
    if (e.targetType === 'recording' && e.targetId && UUID.test(e.targetId)) recordingIds.add(e.targetId);
  }
  const users = new Map(
    (await auditRepository.userNames(tx, actor.orgId, [...userIds])).map((u) => [u.id, u]),
  );
  const titles = new Map<string, string>();
  if (keys && recordingIds.size > 0 && actorCan(actor, 'recordings.read_all'))
    for (const r of await recordingRepository.findMany(tx, [...recordingIds], {}))
      if (r.orgId === actor.orgId && r.titleEnc)
        titles.set(r.id, await keys.decryptString(tx, titleLocation(r.orgId, r.id), r.titleEnc));

  return entries.map((e) => {
    const who = e.actorKind === 'user' && e.actorId ? users.get(e.actorId) : undefined;
    const target = e.targetId
      ? e.targetType === 'user'
        ? users.get(e.targetId)
        : e.targetType === 'recording'
          ? titles.get(e.targetId)
          : undefined
      : undefined;
    const support = e.actorKind === 'support';
    return {
      ...e,
      actorName: support ? SUPPORT_ACTOR_NAME : (who?.name ?? null),
      actorEmail: support ? null : (who?.email ?? null),
      targetLabel:
        target === undefined
          ? null
          : typeof target === 'string'
            ? target
            : `${target.name} (${target.email})`,
    };
  });
}
