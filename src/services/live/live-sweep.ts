import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { liveRecordingRepository } from '../../repositories/live/live-recording.repository.js';
import type { LiveSpools } from './live-spool.js';

/** What the sweep asks of LiveService (which owns the sessions and the viewers). */
export interface SweepHooks {
  /** The session is in memory (or being restored) on this node, or the node is closing. */
  busy(recordingId: string): boolean;
  /** Restores the session from this node's spool and stops it (a tampered spool fails it). */
  finalise(orgId: string, recordingId: string): Promise<void>;
  fail(orgId: string, recordingId: string, code: string): Promise<void>;
}

/**
 * The resume-window sweep (docs/live.md, life cycle step 5), run at start and periodically:
 * recordings still 'live' that no node has touched for the window are finalised from their spool
 * when it is on this node's disk, failed (`live_spool_lost`) when no node has finalised them for
 * twice the window, and failed (`no_audio`) when they never streamed. Spool folders of recordings
 * that are no longer live (deleted, failed) are removed.
 */
export async function sweepLive(
  d: { db: Database; clock: Clock; spools: LiveSpools; resumeSeconds: number },
  hooks: SweepHooks,
): Promise<void> {
  const now = d.clock.now().getTime();
  const windowMs = d.resumeSeconds * 1000;
  const stale = await withSystem(d.db, (tx) =>
    liveRecordingRepository.abandoned(tx, new Date(now - windowMs)),
  );
  for (const r of stale) {
    if (hooks.busy(r.recordingId)) continue;
    if (!r.hasSpool) await hooks.fail(r.orgId, r.recordingId, 'no_audio');
    else if (await d.spools.exists(r.orgId, r.recordingId)) await hooks.finalise(r.orgId, r.recordingId);
    else if (r.touchedAt.getTime() < now - 2 * windowMs)
      await hooks.fail(r.orgId, r.recordingId, 'live_spool_lost');
  }
  // A minute of grace (on the same clock as the window, so a test's advance covers both): never
  // race a session being set up or torn down on this node.
  const dirs = (await d.spools.list()).filter((x) => !hooks.busy(x.recordingId) && x.mtimeMs < now - 60_000);
  const live = await withSystem(d.db, (tx) =>
    liveRecordingRepository.liveSpoolsAmong(
      tx,
      dirs.map((x) => x.recordingId),
    ),
  );
  for (const x of dirs.filter((y) => !live.has(y.recordingId))) {
    await withTenant(d.db, { orgId: x.orgId, userId: null }, (tx) =>
      liveRecordingRepository.deleteSpool(tx, x.recordingId),
    );
    await d.spools.remove(x.orgId, x.recordingId);
  }
}
