import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../src/db/database.js';
import { withSystem } from '../src/db/tenant.js';
import {
  claimLease,
  holdsLease,
  releaseLease,
  renewLease,
  type LeaseTable,
} from '../src/repositories/lease.repository.js';
import { scheduledTaskRepository } from '../src/repositories/lifecycle/scheduled-task.repository.js';
import { backendLabel, freshDatabase, usingPostgres } from './helpers/test-app.js';

/**
 * The shared lease (src/repositories/lease.repository.ts) on a real database, on a table of its
 * own so that only the helper's SQL is under test: racing claimers, lapse and reclaim, renew and
 * release fenced by the claim. Times are the caller's (moved here by hand, never slept through).
 * The four work tables' own rules are proven by their specs (job-fair-claim, job-lease-lapse,
 * lifecycle-export, webhook-resilience, lifecycle-multinode).
 */
const ITEMS: LeaseTable = { table: 'lease_spec_items', key: 'id', until: 'lease_until', fence: 'claims' };

let db: Database;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ db, drop } = await freshDatabase());
  await db.query(
    `CREATE TABLE lease_spec_items (id text PRIMARY KEY, created int NOT NULL, lease_until timestamptz,
       claims int NOT NULL DEFAULT 0, holder text)`,
  );
});
afterAll(async () => drop?.());
beforeEach(async () => {
  await db.query('DELETE FROM lease_spec_items');
});

const t0 = Date.parse('2026-06-01T12:00:00Z');
const at = (ms: number) => new Date(t0 + ms);
const seed = (...ids: string[]) =>
  db.query(
    `INSERT INTO lease_spec_items (id, created) SELECT id, ord FROM unnest($1::text[]) WITH ORDINALITY AS u(id, ord)`,
    [ids],
  );

/** One claim of the oldest free item for `holder`, leased `seconds` from `nowMs`. */
const claim = (tx: Queryable, holder: string, nowMs: number, seconds = 10, id?: string) =>
  claimLease<{ id: string; claims: number; holder: string }>(tx, ITEMS, {
    now: at(nowMs),
    until: at(nowMs + seconds * 1000),
    ...(id ? { where: 'q.id = $4' } : {}),
    orderBy: 'q.created',
    set: 'claims = j.claims + 1, holder = $3',
    returning: 'j.id, j.claims, j.holder',
    params: id ? [holder, id] : [holder],
  });

const row = async (id: string) =>
  (
    await db.query<{ claims: number; holder: string | null; lease_until: Date | null }>(
      'SELECT claims, holder, lease_until FROM lease_spec_items WHERE id = $1',
      [id],
    )
  ).rows[0];

describe(`the shared lease (${backendLabel})`, () => {
  it('two claimers racing for one row: exactly one wins, the other gets nothing', async () => {
    await seed('only');
    const results = await Promise.all(['a', 'b'].map((h) => db.transaction((tx) => claim(tx, h, 0))));
    const winners = results.filter((r) => r !== undefined);
    expect(winners).toHaveLength(1);
    expect(await row('only')).toMatchObject({ claims: 1, holder: winners[0]!.holder });
  });

  it.runIf(usingPostgres)(
    'while one claim is uncommitted, the other skips the locked row at once instead of waiting',
    async () => {
      await seed('first', 'second');
      let release!: () => void;
      const hold = new Promise<void>((r) => (release = r));
      let firstClaimed!: () => void;
      const claimed = new Promise<void>((r) => (firstClaimed = r));
      // A holds its transaction (and so the row lock) open until B has claimed: without SKIP LOCKED
      // B would block on A's lock and this test would time out.
      const a = db.transaction(async (tx) => {
        const got = await claim(tx, 'a', 0);
        firstClaimed();
        await hold;
        return got;
      });
      await claimed;
      const b = await db.transaction((tx) => claim(tx, 'b', 0));
      release();
      expect((await a)?.id).toBe('first');
      expect(b?.id).toBe('second');
      // Claiming by key (scheduled tasks, webhook deliveries) skips a locked row the same way.
      await db.query('UPDATE lease_spec_items SET lease_until = NULL');
      let release2!: () => void;
      const hold2 = new Promise<void>((r) => (release2 = r));
      let claimed2!: () => void;
      const firstByKey = new Promise<void>((r) => (claimed2 = r));
      const c = db.transaction(async (tx) => {
        const got = await claim(tx, 'c', 0, 10, 'first');
        claimed2();
        await hold2;
        return got;
      });
      await firstByKey;
      const d = await db.transaction((tx) => claim(tx, 'd', 0, 10, 'first'));
      release2();
      expect((await c)?.holder).toBe('c');
      expect(d).toBeUndefined();
    },
  );

  it('many claimers, few rows: every row is taken exactly once', async () => {
    await seed('r1', 'r2', 'r3');
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => db.transaction((tx) => claim(tx, `w${i}`, 0))),
    );
    const ids = results.flatMap((r) => (r ? [r.id] : []));
    expect(ids.sort()).toEqual(['r1', 'r2', 'r3']);
  });

  it('a held lease is not claimable; once lapsed it is reclaimed, and the old holder is fenced out', async () => {
    await seed('job');
    const first = (await db.transaction((tx) => claim(tx, 'a', 0, 10)))!;
    expect(await db.transaction((tx) => claim(tx, 'b', 9_999))).toBeUndefined();
    // The end of the lease is its lapse: free at exactly until.
    const second = (await db.transaction((tx) => claim(tx, 'b', 10_000, 10)))!;
    expect(second).toMatchObject({ id: 'job', holder: 'b', claims: 2 });
    const old = { key: 'job', fence: first.claims };
    await db.transaction(async (tx) => {
      expect(await holdsLease(tx, ITEMS, old)).toBe(false);
      expect(await renewLease(tx, ITEMS, old, { now: at(10_001), until: at(30_000) })).toBe(false);
      expect(await releaseLease(tx, ITEMS, old, { until: null })).toBe(false);
      expect(await holdsLease(tx, ITEMS, { key: 'job', fence: second.claims })).toBe(true);
    });
    // The new holder's lease is untouched by the old holder's attempts.
    expect((await row('job'))!.lease_until!.getTime()).toBe(t0 + 20_000);
  });

  it('a renew extends a held lease; a renew after the lease lapsed fails, even with nobody else holding it', async () => {
    await seed('job');
    const mine = { key: 'job', fence: (await db.transaction((tx) => claim(tx, 'a', 0, 10)))!.claims };
    const renew = (nowMs: number) =>
      db.transaction((tx) =>
        renewLease(tx, ITEMS, mine, {
          now: at(nowMs),
          until: at(nowMs + 10_000),
          set: 'holder = $5',
          params: ['a2'],
        }),
      );
    expect(await renew(9_000)).toBe(true);
    expect(await row('job')).toMatchObject({ holder: 'a2', lease_until: at(19_000) });
    // Not renewed in time: the lease lapsed at 19 s.
    expect(await renew(19_000)).toBe(false);
    expect(await renew(25_000)).toBe(false);
    expect((await row('job'))!.lease_until).toEqual(at(19_000));
    // It is free: the next claim takes it.
    expect(await db.transaction((tx) => claim(tx, 'b', 25_000))).toMatchObject({ holder: 'b', claims: 2 });
  });

  it('a release frees the row at once (or at the time it names); only the claim that holds it can release', async () => {
    await seed('job');
    const mine = { key: 'job', fence: (await db.transaction((tx) => claim(tx, 'a', 0, 60)))!.claims };
    expect(
      await db.transaction((tx) =>
        releaseLease(tx, ITEMS, { key: 'job', fence: 99 }, { until: null, set: 'holder = NULL' }),
      ),
    ).toBe(false);
    expect(await db.transaction((tx) => claim(tx, 'b', 1_000))).toBeUndefined();
    expect(await db.transaction((tx) => releaseLease(tx, ITEMS, mine, { until: at(5_000) }))).toBe(true);
    expect(await db.transaction((tx) => claim(tx, 'b', 4_999))).toBeUndefined();
    expect(await db.transaction((tx) => claim(tx, 'b', 5_000))).toMatchObject({ holder: 'b' });
  });

  it('scheduled tasks: a run that outlived its lease cannot release the next node’s claim', async () => {
    const name = `lease-spec-${Date.now()}`;
    const claimAt = (ms: number, leaseMs: number) =>
      withSystem(db, async (tx) => {
        await scheduledTaskRepository.ensure(tx, name, at(0));
        return scheduledTaskRepository.claim(tx, name, at(ms), at(ms + leaseMs));
      });
    expect(await claimAt(0, 1000)).toBe(true);
    expect(await claimAt(500, 1000)).toBe(false);
    // Node 1 runs past its lease; node 2 takes the task.
    expect(await claimAt(1000, 60_000)).toBe(true);
    // Node 1 finishing late is refused: node 2's lock and schedule stand.
    expect(
      await withSystem(db, (tx) => scheduledTaskRepository.finish(tx, name, at(0), at(5000), null)),
    ).toBe(false);
    expect(await withSystem(db, (tx) => scheduledTaskRepository.find(tx, name))).toMatchObject({
      lockedUntil: at(61_000),
      lastRunAt: at(1000),
    });
    expect(
      await withSystem(db, (tx) => scheduledTaskRepository.finish(tx, name, at(1000), at(90_000), 'boom')),
    ).toBe(true);
    expect(await withSystem(db, (tx) => scheduledTaskRepository.find(tx, name))).toMatchObject({
      lockedUntil: null,
      nextRunAt: at(90_000),
      lastError: 'boom',
    });
  });
});
