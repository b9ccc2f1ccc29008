import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { keepLiveSpeakers } from '../src/services/live/live-speakers.js';
import { freshIp } from './helpers/auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { wavFile } from './helpers/wav-file.js';

/**
 * The names live participants were given (`live_speakers_enc`, docs/live.md "Speaker names") live
 * exactly as long as the audio a transcript can still come from: a job that fails for good takes
 * them along with the audio, unless the org keeps audio (an admin may retry it, and the retry
 * names the speakers); deleting the recording lists them in its receipt with the digest of their
 * ciphertext. Real database, real sealed audio, the real job queue.
 */
describe(`live speaker names when a job fails and in the deletion receipt (${backendLabel})`, () => {
  let t: TestApp;
  let plain: TestUser;
  let keeper: TestUser;
  const ip = freshIp();

  const speakersOf = async (id: string) =>
    withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{ enc: Uint8Array | null; digest: string | null }>(
        `SELECT live_speakers_enc AS enc, encode(sha256(live_speakers_enc), 'hex') AS digest
           FROM recordings WHERE id = $1`,
        [id],
      );
      return rows[0]!;
    });

  /** An uploaded recording whose job then fails for good, with labels as a live stop keeps them. */
  async function failedWithSpeakers(u: TestUser): Promise<string> {
    const res = await upload(t, u.accessToken, ip, wavFile(2));
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json<{ id: string }>().id;
    await withTenant(t.db, { orgId: u.orgId, userId: null }, (tx) =>
      keepLiveSpeakers(tx, t.services.keys, u.orgId, id, ['Dr Rossi', 'Client']),
    );
    expect((await speakersOf(id)).enc).not.toBeNull();
    const job = await t.services.jobQueue.claim();
    expect(job?.recordingId).toBe(id);
    expect(await t.services.jobQueue.fail(job!, 'undecodable_audio')).toBe('failed');
    return id;
  }

  beforeAll(async () => {
    t = await startTestApp({ env: recordingEnv().env });
    plain = await createOrgWithUser(t.services, { role: 'owner' });
    keeper = await createOrgWithUser(t.services, { role: 'owner' });
    const res = await t.app.inject({
      method: 'PATCH',
      url: '/api/v1/org/settings',
      headers: bearer(keeper.accessToken),
      remoteAddress: ip,
      payload: { storeAudio: true },
    });
    expect(res.statusCode, res.body).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a job failed for good without kept audio: the names go with the audio', async () => {
    const id = await failedWithSpeakers(plain);
    expect((await speakersOf(id)).enc).toBeNull();
    // Nothing left to retry from, nothing left to name.
    const retry = await t.app.inject({
      method: 'POST',
      url: `/api/v1/recordings/${id}/retry`,
      headers: bearer(plain.accessToken),
      remoteAddress: ip,
    });
    expect(retry.statusCode).toBe(409);
  });

  it('with kept audio the names stay for a retry; deleting lists them in the receipt', async () => {
    const id = await failedWithSpeakers(keeper);
    const { digest } = await speakersOf(id);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    const del = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/recordings/${id}`,
      headers: bearer(keeper.accessToken),
      remoteAddress: ip,
    });
    expect(del.statusCode).toBe(204);
    const { rows } = await t.db.query<{ details: { parts: string[]; sha256: Record<string, string> } }>(
      `SELECT details FROM audit_log WHERE action = 'recording.deleted' AND target_id = $1`,
      [id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.details.parts).toEqual(expect.arrayContaining(['recording', 'audio', 'liveSpeakers']));
    expect(rows[0]!.details.sha256.liveSpeakers).toBe(digest);
    expect(
      await withSystem(
        t.db,
        async (tx) => (await tx.query('SELECT 1 FROM recordings WHERE id = $1', [id])).rows,
      ),
    ).toEqual([]);
    // The labels are names: never in a log line.
    expect(t.logs.join('\n')).not.toContain('Rossi');
  });
});
