import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../src/audio/wav.js';
import { openDatabase } from '../src/db/database.js';
import { freshIp } from './helpers/auth-client.js';
import { sine16k } from './helpers/audio-files.js';
import { bearer, createOrgWithUser, eventually } from './helpers/fixtures.js';
import { instanceFactory } from './helpers/live-instances.js';
import { recordingEnv, stagedFiles, upload } from './helpers/recordings.js';
import {
  backendLabel,
  freshDatabase,
  startTestApp,
  usingPostgres,
  type TestApp,
} from './helpers/test-app.js';
import { cuttableDatabase } from './helpers/cuttable-database.js';

/**
 * Issue 17, outages over HTTP: they answer 503 (a dependency down) or 507 (the disk full) with
 * Retry-After, from the one error mapping, never 500 `internal`; /readyz says not ready when the
 * data disk is nearly full (SOTTO_DISK_MIN_FREE_MB, measured with statfs); an upload is refused
 * before a byte is written when it is. The full disk is a real one (a small tmpfs, when this
 * process may mount one); the unreachable database is the real PostgreSQL behind a TCP proxy the
 * test cuts (so the shared server is never stopped).
 */
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

const wav = (seconds: number) => encodeWav(sine16k(440, seconds, 8000), 16_000);

describe(`outages over HTTP (${backendLabel})`, () => {
  it('/readyz is not ready and uploads get 507 + Retry-After below the free-space floor', async () => {
    const ip = freshIp();
    // A floor above any real disk: the data disk is "nearly full".
    const low = recordingEnv({ SOTTO_DISK_MIN_FREE_MB: String(1024 * 1024 * 1024) });
    const t = await startTestApp({ env: low.env });
    cleanup.push(
      () => rmSync(low.dataDir, { recursive: true, force: true }),
      () => t.close(),
    );
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'unavailable', checks: { database: 'ok', disk: 'low' } });
    const user = await createOrgWithUser(t.services, { role: 'owner' });
    const res = await upload(t, user.accessToken, ip, wav(2));
    expect(res.statusCode).toBe(507);
    expect(res.headers['retry-after']).toBe('60');
    expect(res.json()).toMatchObject({ code: 'insufficient_storage', status: 507 });
    expect(stagedFiles(low.dataDir)).toEqual([]);

    // The default floor (512 MB) on this machine's disk, which has more than that free.
    const free = statfsSync(tmpdir());
    if (free.bavail * free.bsize > 1024 ** 3) {
      const ok = recordingEnv();
      const t2 = await startTestApp({ env: ok.env });
      cleanup.push(
        () => rmSync(ok.dataDir, { recursive: true, force: true }),
        () => t2.close(),
      );
      const r = await t2.app.inject({ method: 'GET', url: '/readyz' });
      expect(r.json().checks.disk).toBe('ok');
    }
  }, 60_000);

  // A real full file system: a 3 MB tmpfs as the data directory (needs the right to mount).
  const mountPoint = mkdtempSync(path.join(tmpdir(), 'sotto-full-'));
  const mounted =
    spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0700', 'tmpfs', mountPoint]).status === 0;
  cleanup.push(() => {
    if (mounted) spawnSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  it.skipIf(!mounted)(
    'ENOSPC while an upload is written: 507 + Retry-After, not 500; nothing left behind',
    async () => {
      const ip = freshIp();
      // No floor: the write itself must hit the full disk.
      const t: TestApp = await startTestApp({
        env: { SOTTO_DATA_DIR: mountPoint, SOTTO_DISK_MIN_FREE_MB: '0', SOTTO_ASR_ENGINE: 'sphinx' },
      });
      cleanup.push(() => t.close());
      const user = await createOrgWithUser(t.services, { role: 'owner' });
      // Leave about 64 KiB free; the upload is 320 KiB.
      const left = statfsSync(mountPoint);
      writeFileSync(
        path.join(mountPoint, 'filler'),
        Buffer.alloc(Math.max(0, left.bavail * left.bsize - 64 * 1024)),
      );
      const res = await upload(t, user.accessToken, ip, wav(10));
      expect(res.statusCode, res.body).toBe(507);
      expect(res.headers['retry-after']).toBe('60');
      expect(res.json()).toMatchObject({ code: 'insufficient_storage' });
      expect(stagedFiles(mountPoint)).toEqual([]);
      // Space freed: the same upload goes through.
      rmSync(path.join(mountPoint, 'filler'));
      expect((await upload(t, user.accessToken, ip, wav(10))).statusCode).toBe(202);
    },
    60_000,
  );

  it.skipIf(!usingPostgres)(
    'PostgreSQL unreachable: 503 + Retry-After (not 500), /readyz not ready, no crash, then recovers',
    async () => {
      const fresh = await freshDatabase();
      cleanup.push(fresh.drop);
      // The database as the server sees it: through a proxy this test can cut.
      const proxy = await cuttableDatabase(fresh.url!);
      cleanup.push(proxy.cut);
      const db = await openDatabase({ databaseUrl: proxy.url, poolSize: 4 });
      const { env, dataDir } = recordingEnv();
      cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
      const inst = await instanceFactory(db, env)();
      cleanup.push(async () => {
        await inst.close();
        await db.close();
      });
      const ip = freshIp();
      const user = await createOrgWithUser(inst.services, { role: 'owner' });
      const list = () =>
        inst.app.inject({
          method: 'GET',
          url: '/api/v1/recordings',
          headers: bearer(user.accessToken),
          remoteAddress: ip,
        });
      expect((await list()).statusCode).toBe(200);

      await proxy.cut();
      const down = await list();
      expect(down.statusCode, down.body).toBe(503);
      expect(down.headers['retry-after']).toBe('5');
      expect(down.json()).toMatchObject({ code: 'unavailable', status: 503 });
      const ready = await inst.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.database).toBe('failed');
      // Logged as an outage, not as an unhandled error.
      expect(inst.logs.some((l) => l.includes('a dependency is unavailable'))).toBe(true);

      await proxy.restore();
      await eventually(async () => ((await list()).statusCode === 200 ? true : undefined), 15_000);
    },
    60_000,
  );
});
