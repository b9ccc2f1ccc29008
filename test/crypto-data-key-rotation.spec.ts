import { randomUUID } from 'node:crypto';
import { renameSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyVersionOf, type FieldLocation } from '../src/crypto/envelope.js';
import type { Queryable } from '../src/db/database.js';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { DirArchiveStore } from '../src/adapters/storage/archive-store.adapter.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import {
  DATA_KEY_HOLDERS,
  NOT_DATA_KEY_COLUMNS,
} from '../src/repositories/keys/data-key-holder.repository.js';
import { DirKekStore } from '../src/adapters/storage/org-kek.adapter.js';
import { recordingRepository } from '../src/repositories/recordings/recording.repository.js';
import { archiveObjectLocation, archiveTitleLocation } from '../src/services/lifecycle/archive-object.js';
import { DataKeyRotationService } from '../src/services/keys/data-key-rotation.service.js';
import { KeyCache } from '../src/services/keys/key-cache.js';
import { KeyService } from '../src/services/keys/key.service.js';
import { liveSpeakersLocation } from '../src/services/live/live-speakers.js';
import { titleLocation, transcriptLocation } from '../src/services/recordings/recording.service.js';
import { searchDocLocation } from '../src/services/search/search-index.service.js';
import { speakerNamesLocation } from '../src/services/recordings/transcript.service.js';
import { freshIp } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Issue 15, scheduled data-key rotation (docs/security.md, "Data-key rotation"): the maintenance
 * task gives an org whose data key is older than SOTTO_DATA_KEY_MAX_AGE_DAYS a new version, re-
 * encrypts every sealed column of the org under it in the background, and retires the old version
 * once nothing uses it and the grace period has passed. Data written through the real routes
 * (settings, webhooks, API tokens) and rows sealed at the services' own locations stay readable
 * throughout; an archive object still sealed under the old version keeps it; a row that cannot be
 * decrypted keeps it too, and does not stop other orgs.
 */
describe(`scheduled data-key rotation (${backendLabel})`, () => {
  const clock = new ManualClock(new Date());
  /** A recording row with nothing sealed yet, owned by the org's user (the specs seal columns themselves). */
  const bareRecording = (tx: Queryable, org: { orgId: string; userId: string }, id: string) =>
    recordingRepository.insert(tx, {
      id,
      orgId: org.orgId,
      ownerId: org.userId,
      language: null,
      speakersHint: null,
      now: clock.now(),
    });
  let t: TestApp;
  let a: TestUser;
  let b: TestUser;
  const recordingA = randomUUID();
  const webhookIds: string[] = [];
  let apiTokenId: string;

  const versionsOf = (orgId: string) =>
    withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{ version: number }>(
        'SELECT version FROM org_keys WHERE org_id = $1 ORDER BY version',
        [orgId],
      );
      return rows.map((r) => r.version);
    });

  /** Makes every data key of the org look `days` older (a key created long ago). */
  const age = (orgId: string, days: number) =>
    withSystem(t.db, (tx) =>
      tx.query(`UPDATE org_keys SET created_at = created_at - make_interval(days => $2) WHERE org_id = $1`, [
        orgId,
        days,
      ]),
    );

  /** The key version in the header of every sealed value the org has, by table.column. */
  const sealedVersions = (orgId: string) =>
    withSystem(t.db, async (tx) => {
      const out: Record<string, number[]> = {};
      for (const h of DATA_KEY_HOLDERS) {
        const orgCol = h.table === 'orgs' ? 'id' : 'org_id';
        const { rows } = await tx.query<{ v: Uint8Array }>(
          `SELECT ${h.column} AS v FROM ${h.table} WHERE ${orgCol} = $1 AND ${h.column} IS NOT NULL`,
          [orgId],
        );
        if (rows.length) out[`${h.table}.${h.column}`] = rows.map((r) => keyVersionOf(r.v));
      }
      return out;
    });

  const decryptAt = (loc: FieldLocation, column: string, table: string, idCol: string) =>
    withTenant(t.db, { orgId: loc.orgId, userId: null }, async (tx) => {
      const { rows } = await tx.query<{ v: Uint8Array }>(
        `SELECT ${column} AS v FROM ${table} WHERE ${idCol} = $1`,
        [loc.rowId],
      );
      return (await t.services.keys.decrypt(tx, loc, rows[0]!.v)).toString('utf8');
    });

  const archiveVersions = (orgId: string) =>
    withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{ v: number | null }>(
        'SELECT object_key_version AS v FROM recording_archive WHERE org_id = $1',
        [orgId],
      );
      return rows.map((r) => r.v);
    });

  const rotationWith = (opts: { orgsPerRun?: number } = {}) =>
    new DataKeyRotationService({
      db: t.db,
      keys: t.services.keys,
      audit: t.services.audit,
      archive: new DirArchiveStore(t.services.config.archive.dir),
      clock,
      logger: t.services.logger,
      opts: { maxAgeDays: 90, retireGraceMs: 0, ...opts },
    });

  /** An archive row of the org sealed under its active version, with no object in the store. */
  const archiveRowWithoutObject = (orgId: string, userId: string, version: number | null) =>
    withTenant(t.db, { orgId, userId: null }, async (tx) => {
      const id = randomUUID();
      await tx.query(
        `INSERT INTO recording_archive (id, org_id, recording_id, owner_id, title_enc, recording_created_at,
                                        archived_at, size_bytes, content_sha256, object_key_version)
         VALUES ($1, $2, $3, $4, NULL, now(), now(), 1, $5, $6)`,
        [id, orgId, randomUUID(), userId, 'ab'.repeat(32), version],
      );
      return id;
    });

  const api = (u: TestUser, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
    t.app.inject({
      method,
      url,
      headers: bearer(u.accessToken),
      remoteAddress: freshIp(),
      ...(payload ? { payload } : {}),
    });

  beforeAll(async () => {
    t = await startTestApp({
      clock,
      env: { SOTTO_WEBHOOK_ALLOW_PRIVATE: 'true', SOTTO_DATA_KEY_MAX_AGE_DAYS: '90' },
    });
    a = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Rotating A' });
    b = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Fresh B' });
    // Through the routes: settings (vocabulary), a webhook secret, an API token name.
    expect(
      (await api(a, 'PATCH', '/api/v1/org/settings', { vocabulary: ['Zyprexa', 'Okonkwo'] })).statusCode,
    ).toBe(200);
    const hook = await api(a, 'POST', '/api/v1/org/webhooks', {
      url: 'https://127.0.0.1:9/hook',
      events: ['recording.done'],
    });
    expect(hook.statusCode, hook.body).toBe(201);
    webhookIds.push((hook.json() as { id: string }).id);
    const token = await api(a, 'POST', '/api/v1/tokens', {
      name: 'nightly export',
      scopes: ['recordings:read'],
    });
    expect(token.statusCode, token.body).toBe(201);
    apiTokenId = (token.json() as { id: string }).id;
    // At the services' own locations: a recording's title and live speakers, its transcript.
    await withTenant(t.db, { orgId: a.orgId, userId: null }, async (tx) => {
      await bareRecording(tx, a, recordingA);
      const keys = t.services.keys;
      await tx.query('UPDATE recordings SET title_enc = $2, live_speakers_enc = $3 WHERE id = $1', [
        recordingA,
        await keys.encrypt(tx, titleLocation(a.orgId, recordingA), 'Session with J.'),
        await keys.encryptJson(tx, liveSpeakersLocation(a.orgId, recordingA), ['Therapist', 'Client']),
      ]);
      await tx.query(
        'INSERT INTO transcripts (recording_id, org_id, body_enc, speaker_names_enc) VALUES ($1, $2, $3, $4)',
        [
          recordingA,
          a.orgId,
          await keys.encryptJson(tx, transcriptLocation(a.orgId, recordingA), {
            segments: ['private words'],
          }),
          await keys.encryptJson(tx, speakerNamesLocation(a.orgId, recordingA), { S1: 'J.' }),
        ],
      );
      // The search index's document (re-encrypted in the tenant context: see DATA_KEY_HOLDERS).
      await tx.query(
        `INSERT INTO search_index (recording_id, org_id, scheme, tokens, doc_enc) VALUES ($1, $2, 1, '{}', $3)`,
        [
          recordingA,
          a.orgId,
          await keys.encryptJson(tx, searchDocLocation(a.orgId, recordingA), { title: 'doc' }),
        ],
      );
    });
  });
  afterAll(async () => t?.close());

  it('knows every sealed column of the schema (a new one must be listed for rotation)', async () => {
    const { rows } = await withSystem(t.db, (tx) =>
      tx.query<{ t: string; c: string }>(
        `SELECT table_name AS t, column_name AS c FROM information_schema.columns
          WHERE table_schema = 'public' AND data_type = 'bytea' AND column_name LIKE '%\\_enc'`,
      ),
    );
    const listed = new Set([
      ...DATA_KEY_HOLDERS.map((h) => `${h.table}.${h.column}`),
      ...NOT_DATA_KEY_COLUMNS,
    ]);
    const columns = rows.map((r) => `${r.t}.${r.c}`).sort();
    expect(columns.length).toBeGreaterThan(10);
    expect(columns.filter((c) => !listed.has(c))).toEqual([]);
    expect([...listed].filter((c) => !columns.includes(c))).toEqual([]);
  });

  it('rotates a due org, re-encrypts everything it holds, and retires the old key after the grace period', async () => {
    await age(a.orgId, 100);
    const before = await sealedVersions(a.orgId);
    expect(
      Object.values(before)
        .flat()
        .every((v) => v === 1),
    ).toBe(true);
    expect(Object.keys(before).sort()).toEqual(
      [
        'api_tokens.name_enc',
        'orgs.settings_enc',
        'recordings.live_speakers_enc',
        'recordings.title_enc',
        'transcripts.body_enc',
        'search_index.doc_enc',
        'transcripts.speaker_names_enc',
        'webhooks.secret_enc',
      ].sort(),
    );

    // The scheduler runs it (registered as a maintenance task).
    expect(await t.services.scheduler.runDue()).toContain('data-key-rotation');
    expect(await versionsOf(a.orgId)).toEqual([1, 2]);
    expect(await versionsOf(b.orgId)).toEqual([1]); // B's key is young: untouched
    const after = await sealedVersions(a.orgId);
    expect(Object.keys(after)).toEqual(expect.arrayContaining(Object.keys(before)));
    expect(
      Object.values(after)
        .flat()
        .every((v) => v === 2),
    ).toBe(true);
    // Readable at the services' own locations, and through the routes.
    expect(await decryptAt(titleLocation(a.orgId, recordingA), 'title_enc', 'recordings', 'id')).toBe(
      'Session with J.',
    );
    expect(
      await decryptAt(transcriptLocation(a.orgId, recordingA), 'body_enc', 'transcripts', 'recording_id'),
    ).toContain('private words');
    expect(
      await decryptAt(
        speakerNamesLocation(a.orgId, recordingA),
        'speaker_names_enc',
        'transcripts',
        'recording_id',
      ),
    ).toContain('J.');
    expect(
      await decryptAt(searchDocLocation(a.orgId, recordingA), 'doc_enc', 'search_index', 'recording_id'),
    ).toContain('"title"');
    expect((await api(a, 'GET', '/api/v1/org/settings')).json().vocabulary).toEqual(['Zyprexa', 'Okonkwo']);
    const tokens = (await api(a, 'GET', '/api/v1/tokens')).json() as {
      items?: { id: string; name: string }[];
    };
    const list = Array.isArray(tokens) ? (tokens as { id: string; name: string }[]) : (tokens.items ?? []);
    expect(list.find((x) => x.id === apiTokenId)?.name).toBe('nightly export');
    // New writes use the new key at once.
    expect((await api(a, 'PATCH', '/api/v1/org/settings', { vocabulary: ['Zyprexa'] })).statusCode).toBe(200);
    expect((await sealedVersions(a.orgId))['orgs.settings_enc']).toEqual([2]);

    // Within the grace period the old version stays (a late writer may still hold it).
    clock.advance(301_000);
    await t.services.scheduler.runDue();
    expect(await versionsOf(a.orgId)).toEqual([1, 2]);
    // Past it: retired, the wrapped key deleted, and everything still reads.
    await withSystem(t.db, (tx) =>
      tx.query(`UPDATE org_keys SET created_at = created_at - interval '3 days' WHERE org_id = $1`, [
        a.orgId,
      ]),
    );
    clock.advance(301_000);
    const fresh = await addUser(t.services, a.orgId, { role: 'owner' });
    expect(await t.services.scheduler.runDue()).toContain('data-key-rotation');
    expect(await versionsOf(a.orgId)).toEqual([2]);
    t.services.keys.forgetOrg(a.orgId); // no cached copy of anything: unwrap from the database
    expect((await api(fresh, 'GET', '/api/v1/org/settings')).json().vocabulary).toEqual(['Zyprexa']);
    expect(await decryptAt(titleLocation(a.orgId, recordingA), 'title_enc', 'recordings', 'id')).toBe(
      'Session with J.',
    );
    // Audited in the org's own chain, versions only.
    const audit = await withSystem(t.db, (tx) =>
      tx.query<{ action: string; target_id: string }>(
        `SELECT action, target_id FROM audit_log WHERE org_id = $1 AND action LIKE 'keys.data_key_%' ORDER BY seq`,
        [a.orgId],
      ),
    );
    expect(audit.rows).toEqual([
      { action: 'keys.data_key_rotated', target_id: '2' },
      { action: 'keys.data_key_retired', target_id: '1' },
    ]);
    expect(await t.services.audit.verify(a.orgId)).toEqual([expect.objectContaining({ ok: true })]);
  });

  it('keeps a version an archive object or an unreadable row still uses; other orgs go on', async () => {
    const c = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Archived C' });
    const d = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Broken D' });
    const e = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Plain E' });
    // C: a cold-archive object sealed under v1, in the app's archive directory; its row was
    // written before migration 0024 recorded the version (NULL): rotation reads the object.
    const archiveId = randomUUID();
    const store = new DirArchiveStore(t.services.config.archive.dir);
    await withTenant(t.db, { orgId: c.orgId, userId: null }, async (tx) => {
      const keys = t.services.keys;
      const object = await keys.encrypt(tx, archiveObjectLocation(c.orgId, archiveId), Buffer.from('packed'));
      const put = await store.put(c.orgId, archiveId, 'object', Readable.from([object]));
      await tx.query(
        `INSERT INTO recording_archive (id, org_id, recording_id, owner_id, title_enc, recording_created_at,
                                        archived_at, size_bytes, content_sha256)
         VALUES ($1, $2, $3, $4, $5, now(), now(), $6, $7)`,
        [
          archiveId,
          c.orgId,
          randomUUID(),
          c.userId,
          await keys.encrypt(tx, archiveTitleLocation(c.orgId, archiveId), 'Archived title'),
          put.size,
          put.sha256,
        ],
      );
    });
    // D: a title whose ciphertext was damaged (it can never be re-encrypted).
    const broken = '80000000-0000-4000-8000-000000000000';
    const healthyLow = '00000000-0000-4000-8000-000000000001';
    const healthyHigh = 'f0000000-0000-4000-8000-000000000001';
    await withTenant(t.db, { orgId: d.orgId, userId: null }, async (tx) => {
      await bareRecording(tx, d, broken);
      const good = await t.services.keys.encrypt(tx, titleLocation(d.orgId, broken), 'will be damaged');
      good[good.length - 1]! ^= 0xff;
      await tx.query('UPDATE recordings SET title_enc = $2 WHERE id = $1', [broken, good]);
      // …and healthy rows beside it, before and after it in id order: they must move on anyway.
      for (const id of [healthyLow, healthyHigh]) {
        await bareRecording(tx, d, id);
        await tx.query('UPDATE recordings SET title_enc = $2 WHERE id = $1', [
          id,
          await t.services.keys.encrypt(tx, titleLocation(d.orgId, id), 'healthy'),
        ]);
      }
    });
    for (const org of [c, d, e]) await age(org.orgId, 100);

    const rotation = new DataKeyRotationService({
      db: t.db,
      keys: t.services.keys,
      audit: t.services.audit,
      archive: store,
      clock,
      logger: t.services.logger,
      opts: { maxAgeDays: 90, retireGraceMs: 0 },
    });
    const run = await rotation.runOnce();
    expect(run.rotated).toBe(3);
    // E retires at once (grace 0); C keeps v1 for its archive object; D for its damaged row.
    expect(await versionsOf(e.orgId)).toEqual([2]);
    expect(await versionsOf(c.orgId)).toEqual([1, 2]);
    expect(await versionsOf(d.orgId)).toEqual([1, 2]);
    // C's database rows moved on; only the archive object pins v1 (its version now recorded).
    expect((await sealedVersions(c.orgId))['recording_archive.title_enc']).toEqual([2]);
    expect(await archiveVersions(c.orgId)).toEqual([1]);
    // D: the damaged row is skipped (and keeps v1); its healthy neighbours were re-encrypted.
    const dTitles = await withSystem(t.db, (tx) =>
      tx.query<{ id: string; v: Uint8Array }>(
        'SELECT id::text AS id, title_enc AS v FROM recordings WHERE org_id = $1 ORDER BY id',
        [d.orgId],
      ),
    );
    expect(dTitles.rows.map((r) => [r.id, keyVersionOf(r.v)])).toEqual([
      [healthyLow, 2],
      [broken, 1],
      [healthyHigh, 2],
    ]);
    expect(await decryptAt(titleLocation(d.orgId, healthyHigh), 'title_enc', 'recordings', 'id')).toBe(
      'healthy',
    );
    // Rotation is idempotent: nothing is due again, nothing more retires.
    const again = await rotation.runOnce();
    expect(again).toEqual({ rotated: 0, reencrypted: 0, retired: 0 });
    // Once the archive object is gone (restored or expired), v1 is retired.
    await store.remove(c.orgId, archiveId);
    await withTenant(t.db, { orgId: c.orgId, userId: null }, (tx) =>
      tx.query('DELETE FROM recording_archive WHERE id = $1', [archiveId]),
    );
    expect((await rotation.runOnce()).retired).toBe(1);
    expect(await versionsOf(c.orgId)).toEqual([2]);
  });

  it('SOTTO_DATA_KEY_MAX_AGE_DAYS=0 never rotates', async () => {
    const f = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Never F' });
    await age(f.orgId, 10_000);
    const off = new DataKeyRotationService({
      db: t.db,
      keys: t.services.keys,
      audit: t.services.audit,
      archive: new DirArchiveStore(t.services.config.archive.dir),
      clock,
      logger: t.services.logger,
      opts: { maxAgeDays: 0 },
    });
    expect((await off.runOnce()).rotated).toBe(0);
    expect(await versionsOf(f.orgId)).toEqual([1]);
  });

  it('a missing KEK file stops only its own org: the others are rotated in the same pass', async () => {
    const lost = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Lost KEK' });
    const others = [
      await createOrgWithUser(t.services, { role: 'owner', orgName: 'Due G' }),
      await createOrgWithUser(t.services, { role: 'owner', orgName: 'Due H' }),
    ];
    for (const o of [lost, ...others]) await age(o.orgId, 100);
    const kekFile = new DirKekStore(t.services.config.keyDir).file(lost.orgId);
    renameSync(kekFile, `${kekFile}.away`);
    t.services.keys.forgetOrg(lost.orgId);
    try {
      // batchSize 1: the failing org must not come back first in every batch either.
      const rotation = new DataKeyRotationService({
        db: t.db,
        keys: t.services.keys,
        audit: t.services.audit,
        archive: new DirArchiveStore(t.services.config.archive.dir),
        clock,
        logger: t.services.logger,
        opts: { maxAgeDays: 90, retireGraceMs: 0, batchSize: 1 },
      });
      await rotation.runOnce();
      expect(await versionsOf(lost.orgId)).toEqual([1]);
      for (const o of others) expect(await versionsOf(o.orgId)).toEqual([2]);
    } finally {
      renameSync(`${kekFile}.away`, kekFile);
    }
    // Restored: the next pass rotates it too (and, nothing under v1, retires v1 at grace 0).
    expect((await rotationWith().runOnce()).rotated).toBe(1);
    expect(await versionsOf(lost.orgId)).toEqual([2]);
  });

  it('never retires a version while an archive object is missing or its version unknown', async () => {
    const g = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Unmounted G' });
    const h = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Recorded H' });
    // G: a row archived before 0024 (version unknown) whose object is not in this node's store.
    await archiveRowWithoutObject(g.orgId, g.userId, null);
    // H: the version was recorded at archive time; the object need not be read at all.
    await archiveRowWithoutObject(h.orgId, h.userId, 1);
    for (const o of [g, h]) await age(o.orgId, 100);
    const rotation = rotationWith();
    await rotation.runOnce();
    expect(await versionsOf(g.orgId)).toEqual([1, 2]);
    expect(await versionsOf(h.orgId)).toEqual([1, 2]);
    expect(await archiveVersions(g.orgId)).toEqual([null]);
    await rotation.runOnce();
    expect(await versionsOf(g.orgId)).toEqual([1, 2]);
    expect(await versionsOf(h.orgId)).toEqual([1, 2]);
  });

  it('visits orgs round-robin: orgs whose old version stays pinned do not keep the others out', async () => {
    const rotation = rotationWith({ orgsPerRun: 1 });
    // Earlier tests left several orgs with a pinned v1; add two that are pinned too and still
    // have a stale row each. One org per run: without the round-robin cursor, every run would
    // visit the same first org.
    const fresh = [
      await createOrgWithUser(t.services, { role: 'owner', orgName: 'Late P' }),
      await createOrgWithUser(t.services, { role: 'owner', orgName: 'Late Q' }),
    ];
    for (const o of fresh) {
      // A title sealed under v1, then v2 (not yet re-encrypted), and an archive object pinning v1.
      const rec = randomUUID();
      await withTenant(t.db, { orgId: o.orgId, userId: null }, async (tx) => {
        await bareRecording(tx, o, rec);
        await tx.query('UPDATE recordings SET title_enc = $2 WHERE id = $1', [
          rec,
          await t.services.keys.encrypt(tx, titleLocation(o.orgId, rec), 'late'),
        ]);
      });
      await withSystem(t.db, (tx) => t.services.keys.rotateDataKey(tx, o.orgId, clock.now()));
      await archiveRowWithoutObject(o.orgId, o.userId, 1);
      expect((await sealedVersions(o.orgId))['recordings.title_enc']).toEqual([1]);
    }
    const pending = await withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM (SELECT org_id FROM org_keys GROUP BY org_id HAVING count(*) > 1) s',
      );
      return rows[0]!.n;
    });
    for (let i = 0; i < pending; i++) await rotation.runOnce();
    for (const o of fresh) expect((await sealedVersions(o.orgId))['recordings.title_enc']).toEqual([2]);
  });

  it('the system role reads only the sealed columns of webhooks, never their URLs', async () => {
    await expect(withSystem(t.db, (tx) => tx.query('SELECT url FROM webhooks LIMIT 1'))).rejects.toThrow(
      /permission denied/,
    );
    await withSystem(t.db, (tx) =>
      tx.query('SELECT id, org_id, secret_enc, previous_secret_enc FROM webhooks'),
    );
  });

  it('a version retired on one node stops working on another once its cache entry expires', async () => {
    const k = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Two nodes K' });
    const rec = randomUUID();
    let nowMs = 1_000_000;
    const other = new KeyService(
      t.db,
      t.services.config.masterKeys,
      t.services.config.keyDir,
      new KeyCache(60_000, () => nowMs),
    );
    const loc = titleLocation(k.orgId, rec);
    const old = await withTenant(t.db, { orgId: k.orgId, userId: null }, async (tx) => {
      await bareRecording(tx, k, rec);
      const sealed = await t.services.keys.encrypt(tx, loc, 'node title');
      await tx.query('UPDATE recordings SET title_enc = $2 WHERE id = $1', [rec, sealed]);
      // The other node reads it: v1 is now in its cache.
      expect((await other.decrypt(tx, loc, sealed)).toString()).toBe('node title');
      return sealed;
    });
    await age(k.orgId, 100);
    await rotationWith().runOnce();
    expect(await versionsOf(k.orgId)).toEqual([2]);
    const inTenant = <T>(fn: (tx: Parameters<Parameters<typeof withTenant>[2]>[0]) => Promise<T>) =>
      withTenant(t.db, { orgId: k.orgId, userId: null }, fn);
    // Within the cache lifetime the other node still holds v1 …
    expect((await inTenant((tx) => other.decrypt(tx, loc, old))).toString()).toBe('node title');
    // … past it, v1 is read from org_keys again: gone, so the old ciphertext no longer opens.
    nowMs += 60_000;
    await expect(inTenant((tx) => other.decrypt(tx, loc, old))).rejects.toMatchObject({
      code: 'decryption_failed',
    });
    expect(await decryptAt(loc, 'title_enc', 'recordings', 'id')).toBe('node title');
  });
});
