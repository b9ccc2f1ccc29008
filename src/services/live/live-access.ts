import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { actorCan } from '../../domain/api-scopes.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { apiTokenRepository } from '../../repositories/auth/api-token.repository.js';
import {
  recordingRepository,
  type RecordingRow,
} from '../../repositories/recordings/recording.repository.js';
import { sessionRepository, type LiveSession } from '../../repositories/auth/session.repository.js';
import { supportGrantRepository } from '../../repositories/orgs/support-grant.repository.js';
import { LIVE_CLOSE } from './live-session.js';
import type { RecheckItem } from './live-recheck.js';

/**
 * Who may still use a live socket. An access token is checked once, at the handshake, but a
 * socket may stay open for hours: LiveService asks this again for every open socket (and when a
 * browser ticket is redeemed), from the database, not from the token.
 */

/** Members see their own recordings; owners, admins and support (through a grant) every one. */
export function visibility(actor: Actor): { ownerId?: string } {
  return actorCan(actor, 'recordings.read_all') ? {} : { ownerId: actor.userId };
}

/** Sessions looked up per query by the batched re-check: bounds one statement's parameters. */
const SESSIONS_PER_QUERY = 1000;

/**
 * The actor as it is now: the session still live, the role as it is today, a support grant
 * still active. Undefined when the session ended (revoked device, logout); null when the support
 * grant ended (the org is then "not found" to them, as over HTTP).
 */
export async function currentActor(db: Database, clock: Clock, a: Actor): Promise<Actor | undefined | null> {
  return (await currentActors(db, clock, [a]))[0];
}

/**
 * currentActor for many actors at once, in one transaction: sessions by the thousand in one
 * query, each API token and each org's support grant once. The periodic re-check of every open
 * live socket asks this for all of a node's sockets: one query per socket per period would
 * be thousands of transactions every few seconds with thousands of viewers (bench/fanout.ts).
 */
export function currentActors(
  db: Database,
  clock: Clock,
  actors: readonly Actor[],
): Promise<(Actor | undefined | null)[]> {
  const now = clock.now();
  return withSystem(db, async (tx) => {
    const sessionIds = [...new Set(actors.filter((a) => !a.apiToken).map((a) => a.sessionId))];
    const sessions = new Map<string, LiveSession>();
    for (let i = 0; i < sessionIds.length; i += SESSIONS_PER_QUERY)
      for (const [id, s] of await sessionRepository.findLiveMany(
        tx,
        sessionIds.slice(i, i + SESSIONS_PER_QUERY),
        now,
      ))
        sessions.set(id, s);
    const tokens = new Map<string, Awaited<ReturnType<typeof apiTokenRepository.findForAuth>>>();
    for (const a of actors)
      if (a.apiToken && !tokens.has(a.apiToken.id))
        tokens.set(a.apiToken.id, await apiTokenRepository.findForAuth(tx, a.apiToken.id));
    const grants = new Map<string, boolean>();
    for (const a of actors)
      if (!a.apiToken && a.viaSupportGrant && !grants.has(a.orgId))
        grants.set(a.orgId, Boolean(await supportGrantRepository.findActive(tx, a.orgId, now)));
    return actors.map((a): Actor | undefined | null => {
      if (a.apiToken) {
        // An API token instead of a session: still valid, and its user still a member of the org.
        const t = tokens.get(a.apiToken.id);
        if (!t || t.revokedAt || t.expiresAt.getTime() <= now.getTime()) return undefined;
        if (t.userId !== a.userId || t.userOrgId !== a.orgId || !t.userRole) return undefined;
        return { ...a, role: t.userRole };
      }
      const s = sessions.get(a.sessionId);
      if (!s || s.userId !== a.userId) return undefined;
      if (a.viaSupportGrant) {
        if (s.platformRole !== 'support') return undefined;
        if (!grants.get(a.orgId)) return null;
        return { ...a, role: 'support' as const };
      }
      if (s.orgId !== a.orgId || !s.role) return undefined;
      return { ...a, role: s.role };
    });
  });
}

/**
 * The watch rule of LiveService.authorize for many open viewer sockets at once (the periodic
 * re-check), each recording read once per org: per item 4404 when the actor (as it is now) may
 * no longer see the recording — role, grant, a colleague's recording for a member, deleted —
 * else undefined. A recording that is no longer live is not a revocation: its stop closes the
 * sockets itself.
 */
export async function watchVerdicts(
  db: Database,
  items: readonly { actor: Actor; recordingId: string }[],
): Promise<(number | undefined)[]> {
  const byOrg = new Map<string, Set<string>>();
  for (const { actor, recordingId } of items) {
    const ids = byOrg.get(actor.orgId) ?? new Set<string>();
    byOrg.set(actor.orgId, ids.add(recordingId));
  }
  const rows = new Map<string, RecordingRow>();
  for (const [orgId, ids] of byOrg)
    for (const row of await withTenant(db, { orgId, userId: null }, (tx) =>
      recordingRepository.findMany(tx, [...ids], {}),
    ))
      rows.set(`${orgId}:${row.id}`, row);
  return items.map(({ actor, recordingId }) => {
    if (!actorCan(actor, 'recordings.read')) return LIVE_CLOSE.notFound;
    const row = rows.get(`${actor.orgId}:${recordingId}`);
    const { ownerId } = visibility(actor);
    if (!row || (ownerId !== undefined && row.ownerId !== ownerId)) return LIVE_CLOSE.notFound;
    return undefined;
  });
}

/**
 * The periodic re-check of a node's open live sockets, all at once: per socket undefined while
 * allowed, else the close code. Only an answer (not found, forbidden) revokes; a failure to ask
 * (the database or Redis down) is returned as `failure`, and LiveViewers keeps the socket: its
 * audio goes to the local spool all the same. Viewers are checked in one batch; ingest sockets,
 * a few per recording, one by one through `authorizeIngest` (LiveService.authorize).
 */
export async function recheckSockets(
  db: Database,
  clock: Clock,
  items: readonly RecheckItem[],
  authorizeIngest: (actor: Actor, recordingId: string) => Promise<void>,
): Promise<{ codes: (number | undefined)[]; failure: unknown }> {
  const currents = await currentActors(
    db,
    clock,
    items.map((i) => i.actor),
  );
  const codes = currents.map((c): number | undefined =>
    c === null ? LIVE_CLOSE.notFound : c ? undefined : LIVE_CLOSE.unauthenticated,
  );
  let failure: unknown;
  const watching = items.flatMap((item, i) => {
    const actor = currents[i];
    return item.purpose === 'watch' && actor ? [{ i, actor, recordingId: item.recordingId }] : [];
  });
  try {
    const verdicts = await watchVerdicts(db, watching);
    watching.forEach(({ i }, k) => (codes[i] = verdicts[k]));
  } catch (err) {
    failure = err;
  }
  for (const [i, item] of items.entries()) {
    const actor = currents[i];
    if (item.purpose !== 'ingest' || !actor) continue;
    try {
      await authorizeIngest(actor, item.recordingId);
    } catch (err) {
      // Not live any more is the normal end (the stop closes the sockets itself).
      if (err instanceof AppError && err.code === 'conflict') continue;
      if (err instanceof AppError && (err.code === 'not_found' || err.code === 'forbidden'))
        codes[i] = LIVE_CLOSE.notFound;
      else failure ??= err;
    }
  }
  return { codes, failure };
}
