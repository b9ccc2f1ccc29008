import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { instanceFactory, type Instance } from './helpers/live-instances.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, freshDatabase } from './helpers/test-app.js';

/**
 * Issue 17, item 8: nodes that disagree on SOTTO_PUBLIC_URL reject each other's tokens, so each
 * node records its URL (at start and with a heartbeat) and one that sees another value among the
 * nodes seen recently says so: a warning naming both values, and /readyz `publicUrl: mismatch`
 * (an enum: /readyz is public). Three nodes on one database, two of them agreeing.
 */
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

describe(`nodes disagreeing on SOTTO_PUBLIC_URL (${backendLabel})`, () => {
  it('is logged with both values and reported by /readyz; agreement and stale nodes are not', async () => {
    const fresh = await freshDatabase();
    const { env, dataDir } = recordingEnv();
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }), fresh.drop);
    const start = instanceFactory(fresh.db, env);
    const nodes: Instance[] = [];
    for (const url of ['https://sotto.test', 'https://sotto.test', 'https://localhost:8443'])
      nodes.push(await start({ SOTTO_PUBLIC_URL: url }));
    cleanup.push(async () => {
      for (const n of nodes) await n.close();
    });
    const [a, b, odd] = nodes as [Instance, Instance, Instance];
    const ready = async (n: Instance) => {
      const res = await n.app.inject({ method: 'GET', url: '/readyz' });
      return res.json() as { status: string; checks: { publicUrl: string } };
    };
    const warned = (n: Instance) =>
      n.logs.filter((l) => l.includes('nodes disagree on SOTTO_PUBLIC_URL')).map((l) => JSON.parse(l));

    // Two agreeing nodes: nothing to say.
    await a.services.nodes.start();
    await b.services.nodes.start();
    expect(await a.services.nodes.beat()).toEqual([]);
    expect((await ready(a)).checks.publicUrl).toBe('ok');
    expect(warned(a)).toEqual([]);

    // A third with the default URL: every node sees it at its next heartbeat.
    await odd.services.nodes.start();
    expect(warned(odd)).toHaveLength(1);
    expect(warned(odd)[0]).toMatchObject({
      level: 40,
      publicUrl: 'https://localhost:8443',
      otherNodes: [{ publicUrl: 'https://sotto.test', nodes: 2 }],
    });
    await a.services.nodes.beat();
    expect(warned(a)).toHaveLength(1);
    expect(warned(a)[0]).toMatchObject({ otherNodes: [{ publicUrl: 'https://localhost:8443', nodes: 1 }] });
    const r = await ready(a);
    // Reported, not a reason to leave the load balancer.
    expect(r).toMatchObject({ status: 'ok', checks: { publicUrl: 'mismatch' } });
    expect(JSON.stringify(r)).not.toContain('localhost');
    // Said once per change, not at every heartbeat.
    await a.services.nodes.beat();
    expect(warned(a)).toHaveLength(1);

    // The odd node stops (or was killed long ago): the others agree again.
    await withSystem(fresh.db, (tx) =>
      tx.query(`UPDATE server_nodes SET seen_at = now() - interval '1 hour' WHERE node_id = $1`, [
        odd.services.nodes.rowId,
      ]),
    );
    expect(await a.services.nodes.beat()).toEqual([]);
    expect((await ready(a)).checks.publicUrl).toBe('ok');
    expect(a.logs.some((l) => l.includes('every node agrees on SOTTO_PUBLIC_URL again'))).toBe(true);
    await odd.services.nodes.stop();
    const left = await withSystem(fresh.db, (tx) =>
      tx.query<{ n: number }>('SELECT count(*)::int AS n FROM server_nodes'),
    );
    expect(left.rows[0]!.n).toBe(2);
    for (const n of [a, b]) await n.services.nodes.stop();
  });
});
