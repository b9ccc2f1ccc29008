import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.js';
import { withSystem } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { ServerNodeService, serverNodeRowId } from '../src/services/operations/server-node.service.js';
import { serve, serveEnv } from './helpers/live-instances.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, freshDatabase, testMasterKey, usingPostgres } from './helpers/test-app.js';

/**
 * Issue 16: the public-URL check's rows (server_nodes) are keyed by the node id `sotto serve`
 * holds (SOTTO_NODE_ID or the derived default), so a node killed and started again updates its
 * own row instead of adding a second one that counts as another node until it is no longer seen
 * (3 heartbeats) and stays in the table for a day. Processes without a node id keep a random row.
 */
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

interface Row {
  node_id: string;
  public_url: string;
  started_at: Date;
}
const rows = (db: Database) =>
  withSystem(db, async (tx) => {
    const res = await tx.query<Row>(
      'SELECT node_id, public_url, started_at FROM server_nodes ORDER BY node_id',
    );
    return res.rows;
  });

describe(`server_nodes rows by node id (${backendLabel})`, () => {
  it('a node restarted under its id updates its row; two ids are two rows; no id is a random row', async () => {
    const { db, drop } = await freshDatabase();
    cleanup.push(drop);
    const clock = new ManualClock(new Date('2026-01-05T10:00:00Z'));
    const logger = pino({ level: 'silent' });
    const node = (nodeId: string | undefined, publicUrl = 'https://sotto.test') =>
      new ServerNodeService(db, clock, logger, { publicUrl, nodeId });

    // Node "a" starts with a wrong URL and is killed (no stop: its row stays).
    const first = node('host-a-8443-0123456789ab', 'https://localhost:8443');
    expect(first.rowId).toBe(serverNodeRowId('host-a-8443-0123456789ab'));
    await first.beat();
    const before = await rows(db);
    expect(before).toEqual([expect.objectContaining({ node_id: first.rowId })]);

    // Started again a minute later under the same id, with the URL corrected: one row, updated,
    // and the dead process's old URL is no conflict (with a row per process it was one for 90 s).
    clock.advance(60_000);
    const again = node('host-a-8443-0123456789ab');
    expect(await again.beat()).toEqual([]);
    const after = await rows(db);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ node_id: first.rowId, public_url: 'https://sotto.test' });
    expect(after[0]!.started_at.getTime()).toBe(clock.now().getTime());
    // Its later heartbeats keep the start of this process.
    clock.advance(30_000);
    await again.beat();
    expect((await rows(db))[0]!.started_at.getTime()).toBe(clock.now().getTime() - 30_000);

    // Another id is another node (and another row), also when it disagrees.
    const other = node('host-b-8443-ba9876543210', 'https://other.test');
    expect(other.rowId).not.toBe(again.rowId);
    await other.beat();
    expect(await again.beat()).toEqual([{ publicUrl: 'https://other.test', nodes: 1 }]);
    expect(await rows(db)).toHaveLength(2);

    // Without a node id (CLI tools, in-process test servers): a random row per process.
    const [x, y] = [node(undefined), node(undefined)];
    expect(x.rowId).not.toBe(y.rowId);
    await x.beat();
    await y.beat();
    expect(await rows(db)).toHaveLength(4);

    // A clean stop removes exactly its own row.
    await other.stop();
    expect((await rows(db)).map((r) => r.node_id)).not.toContain(other.rowId);
    expect(await rows(db)).toHaveLength(3);
  });
});

/**
 * The real thing: `sotto serve` children on one PostgreSQL database (PGlite belongs to one
 * process). One is killed with SIGKILL and started again under the same SOTTO_NODE_ID: still one
 * row; a second node id adds the second.
 */
describe.skipIf(!usingPostgres)(
  `server_nodes across real restarts (${backendLabel})${usingPostgres ? '' : ': needs PostgreSQL'}`,
  () => {
    it('kill -9 and `sotto serve` again under the same SOTTO_NODE_ID: one row; another id: two', async () => {
      const { db, url, drop } = await freshDatabase();
      const { env, dataDir } = recordingEnv();
      const children: ChildProcess[] = [];
      cleanup.push(drop, () => rmSync(dataDir, { recursive: true, force: true }));
      // Stopped and gone before the database is dropped (it refuses while they are connected).
      cleanup.push(async () => {
        for (const c of children) {
          if (c.exitCode !== null || c.signalCode !== null) continue;
          const gone = new Promise((resolve) => c.once('exit', resolve));
          c.kill('SIGTERM');
          await gone;
        }
      });
      // No Redis: the rows are in the database only.
      const shared = {
        ...env,
        SOTTO_MASTER_KEY: testMasterKey(),
        SOTTO_REDIS_PREFIX: `sotto-nodes-${randomUUID()}:`,
      };
      const childEnv = (nodeId: string) => ({ ...serveEnv(shared, url!), SOTTO_NODE_ID: nodeId });
      const idA = `nodes-a-${randomUUID().slice(0, 8)}`;
      const idB = `nodes-b-${randomUUID().slice(0, 8)}`;

      const first = await serve(childEnv(idA));
      children.push(first.child);
      expect(await rows(db)).toEqual([expect.objectContaining({ node_id: serverNodeRowId(idA) })]);
      const exited = new Promise((resolve) => first.child.once('exit', resolve));
      first.child.kill('SIGKILL');
      await exited;

      const second = await serve(childEnv(idA));
      children.push(second.child);
      const afterRestart = await rows(db);
      expect(afterRestart).toEqual([expect.objectContaining({ node_id: serverNodeRowId(idA) })]);

      const third = await serve(childEnv(idB));
      children.push(third.child);
      expect((await rows(db)).map((r) => r.node_id).sort()).toEqual(
        [serverNodeRowId(idA), serverNodeRowId(idB)].sort(),
      );
    }, 120_000);
  },
);
