import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../src/app.js';
import { openDatabase, type Database } from '../src/db/database.js';
import { withSystem } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { scheduledTaskRepository } from '../src/repositories/lifecycle/scheduled-task.repository.js';
import { SchedulerService } from '../src/services/lifecycle/scheduler.service.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, usingPostgres, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * Several nodes, one database: the maintenance scheduler runs each task on exactly one node per
 * interval, and retention archives each recording exactly once even when two nodes run it at the
 * same moment. On PostgreSQL the second node is a second set of services over its own pool; on
 * PGlite (one connection) it is a second scheduler over the same database.
 */
const DAY = 24 * 3600 * 1000;

describe(`maintenance scheduler and retention across nodes (${backendLabel})`, () => {
  let t: TestApp;
  let node2: { services: Services | undefined; db: Database | undefined; scheduler: SchedulerService };
  const clock = new ManualClock();
  let a: TestUser;
  let b: TestUser;

  const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

  beforeAll(async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-multinode-'));
    t = await startTestApp({ clock, env: { SOTTO_DATA_DIR: dataDir } });
    if (usingPostgres) {
      const db = await openDatabase({ databaseUrl: t.databaseUrl, poolSize: 5 });
      const services = await createServices({
        config: t.services.config,
        db,
        redis: undefined,
        logger: t.services.logger,
        clock,
      });
      node2 = { services, db, scheduler: services.scheduler };
    } else {
      const scheduler = new SchedulerService(t.db, clock, silent, 300);
      for (const task of t.services.archive.tasks()) scheduler.register(task);
      node2 = { services: undefined, db: undefined, scheduler };
    }
    a = await createOrgWithUser(t.services);
    b = await createOrgWithUser(t.services);
    for (const u of [a, b])
      await withSystem(t.db, (tx) => tx.query('UPDATE orgs SET retention_days = 1 WHERE id = $1', [u.orgId]));
  });
  afterAll(async () => {
    await node2?.db?.close();
    await t?.close();
  });

  it('claims a task for exactly one node per interval; a failed run is recorded and rescheduled', async () => {
    let runs = 0;
    let fail = false;
    const nodes = [0, 1].map(() => new SchedulerService(t.db, clock, silent, 300));
    for (const n of nodes)
      n.register({
        name: 'test.count',
        intervalSeconds: 60,
        leaseSeconds: 120,
        run: async () => {
          runs++;
          await new Promise((r) => setTimeout(r, 20));
          if (fail) throw new Error('boom');
        },
      });
    const ran = await Promise.all(nodes.map((n) => n.runDue()));
    expect(runs).toBe(1);
    expect(ran.flat()).toEqual(['test.count']);
    expect((await Promise.all(nodes.map((n) => n.runDue()))).flat()).toEqual([]);
    clock.advance(61_000);
    fail = true;
    expect((await Promise.all(nodes.map((n) => n.runDue()))).flat()).toEqual(['test.count']);
    expect(runs).toBe(2);
    const row = await withSystem(t.db, (tx) => scheduledTaskRepository.find(tx, 'test.count'));
    expect(row).toMatchObject({ lastError: 'Error', lockedUntil: null });
    expect(row!.nextRunAt.getTime()).toBe(clock.now().getTime() + 60_000);

    // A node that claimed and died: nobody runs the task until its lease ends.
    clock.advance(61_000);
    const now = clock.now();
    await withSystem(t.db, (tx) =>
      scheduledTaskRepository.claim(tx, 'test.count', now, new Date(now.getTime() + 120_000)),
    );
    clock.advance(61_000);
    expect((await Promise.all(nodes.map((n) => n.runDue()))).flat()).toEqual([]);
    clock.advance(60_000);
    fail = false;
    expect((await Promise.all(nodes.map((n) => n.runDue()))).flat()).toEqual(['test.count']);
    expect(runs).toBe(3);
  });

  it('two nodes running retention at the same moment archive each recording exactly once', async () => {
    const old = new Date(clock.now().getTime() - 2 * DAY);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++)
      for (const u of [a, b])
        ids.push(
          await seedTranscript(t.services, u, {
            title: `r${i}`,
            segments: [seg(1, 'S1', 0, 'hello there')],
            createdAt: old,
          }),
        );

    const ran = await Promise.all([t.services.scheduler.runDue(), node2.scheduler.runDue()]);
    expect(ran.flat().filter((n) => n === 'retention')).toEqual(['retention']);
    const rows = await withSystem(t.db, (tx) =>
      tx.query<{ recording_id: string }>('SELECT recording_id FROM recording_archive'),
    );
    expect(rows.rows.map((r) => r.recording_id).sort()).toEqual([...ids].sort());

    // Bypassing the claim (a run that outlived its lease): the archive itself stays exactly-once.
    const more: string[] = [];
    for (let i = 0; i < 5; i++)
      more.push(
        await seedTranscript(t.services, a, { segments: [seg(1, 'S1', 0, 'again')], createdAt: old }),
      );
    const second = node2.services?.archive ?? t.services.archive;
    const results = await Promise.all([t.services.archive.runRetention(), second.runRetention()]);
    expect(results[0].archived + results[1].archived).toBe(5);
    const after = await withSystem(t.db, (tx) =>
      tx.query<{ recording_id: string; n: number }>(
        'SELECT recording_id, count(*)::int AS n FROM recording_archive GROUP BY recording_id',
      ),
    );
    expect(after.rows).toHaveLength(ids.length + more.length);
    expect(after.rows.every((r) => r.n === 1)).toBe(true);
    const audits = await withSystem(t.db, (tx) =>
      tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'recording.archived'`),
    );
    expect(audits.rows[0]!.n).toBe(ids.length + more.length);
    // The losers' objects were discarded: the store holds exactly one item per row.
    clock.advance(2 * 3600_000);
    expect(await t.services.archive.sweep(3600_000)).toBe(0);
  });
});
