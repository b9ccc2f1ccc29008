import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../src/audio/wav.js';
import { loadConfig } from '../src/config/config.js';
import { freshIp } from './helpers/auth-client.js';
import { sine16k } from './helpers/audio-files.js';
import { createOrgWithUser } from './helpers/fixtures.js';
import { recordingEnv, stagedFiles, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, testMasterKey, type TestApp } from './helpers/test-app.js';

/**
 * Issue 16 (fairness): one org's queue must not hold every worker while another org waits. A
 * claim takes the oldest job of the org with the fewest jobs running, and SOTTO_JOB_MAX_PER_ORG
 * caps an org's running jobs across all workers. The queue is driven directly (no worker runs)
 * so the order of claims is exact; claims hold their leases, as running jobs do. And the queue is
 * bounded per org (SOTTO_QUEUE_MAX_PER_ORG): uploads past it are refused early with 429.
 */
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

async function queueApp(env: Record<string, string> = {}) {
  const r = recordingEnv({ PATH: process.env.PATH ?? '', ...env });
  const dataDir = r.dataDir;
  const t: TestApp = await startTestApp({ env: r.env });
  cleanup.push(async () => {
    await t.close();
    rmSync(r.dataDir, { recursive: true, force: true });
  });
  const ip = freshIp();
  const wav = encodeWav(sine16k(440, 1, 8000), 16_000);
  const orgA = await createOrgWithUser(t.services, { role: 'owner' });
  const orgB = await createOrgWithUser(t.services, { role: 'owner' });
  const queue = async (token: string, n: number) => {
    // (returns the recordings' ids; every upload here must be accepted)
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await upload(t, token, ip, wav)).json().id as string);
    return ids;
  };
  // Org A's three uploads are all older than org B's one.
  const a = await queue(orgA.accessToken, 3);
  const b = await queue(orgB.accessToken, 1);
  return { t, a, b, ip, wav, orgA, orgB, dataDir };
}

describe(`job claims take turns between orgs (${backendLabel})`, () => {
  it('the next claim is the oldest job of the org with the fewest running, not the oldest overall', async () => {
    const { t, a, b } = await queueApp();
    const claimed: string[] = [];
    for (let i = 0; i < 4; i++) claimed.push((await t.services.jobQueue.claim())!.recordingId);
    // First come first served would give a[0], a[1], a[2], b[0]: org B waiting for all of A.
    expect(claimed).toEqual([a[0], b[0], a[1], a[2]]);
    expect(await t.services.jobQueue.claim()).toBeUndefined();
  });

  it('SOTTO_JOB_MAX_PER_ORG caps the jobs an org runs at once; the rest wait, queued', async () => {
    const { t, a, b } = await queueApp({ SOTTO_JOB_MAX_PER_ORG: '1' });
    expect((await t.services.jobQueue.claim())?.recordingId).toBe(a[0]);
    expect((await t.services.jobQueue.claim())?.recordingId).toBe(b[0]);
    // Both orgs run one: org A's other two jobs wait although a worker asks.
    expect(await t.services.jobQueue.claim()).toBeUndefined();
  });

  it('refuses a malformed limit at start, naming the variable', () => {
    for (const bad of ['many', '0', '-1', '1.5']) {
      expect(() =>
        loadConfig({ SOTTO_ENV: 'test', SOTTO_MASTER_KEY: testMasterKey(), SOTTO_JOB_MAX_PER_ORG: bad }),
      ).toThrow(/SOTTO_JOB_MAX_PER_ORG/);
    }
  });

  it('an org with SOTTO_QUEUE_MAX_PER_ORG recordings waiting gets 429 queue_full with Retry-After; other orgs upload on', async () => {
    const { t, ip, wav, orgA, orgB, dataDir } = await queueApp({ SOTTO_QUEUE_MAX_PER_ORG: '3' });
    const refused = await upload(t, orgA.accessToken, ip, wav);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.headers['retry-after']).toBe('60');
    expect(refused.json()).toMatchObject({ code: 'queue_full', status: 429 });
    expect(refused.json().detail).toMatch(/3 recordings waiting/);
    // Nothing was staged for the refused upload, and org B's queue is its own.
    expect(stagedFiles(dataDir)).toEqual([]);
    expect((await upload(t, orgB.accessToken, ip, wav)).statusCode).toBe(202);
    // A finished (here: failed for good) job frees a place.
    const job = await t.services.jobQueue.claim();
    expect(job?.orgId).toBe(orgA.orgId);
    expect(await t.services.jobQueue.fail(job!, 'undecodable_audio')).toBe('failed');
    expect((await upload(t, orgA.accessToken, ip, wav)).statusCode).toBe(202);
  });
});
