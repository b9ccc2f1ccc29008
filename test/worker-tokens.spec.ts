import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addWorker, listWorkers, revokeWorker } from '../src/cli/commands/workers.js';
import { withTenant } from '../src/db/tenant.js';
import { freshIp } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { insertQueuedRecording } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Worker tokens and the worker protocol's guards, without audio: creation (shown once, stored as a
 * hash, audited), listing, revocation (next request refused, held jobs handed back), the two
 * credential kinds never crossing, org scoping of claims, 404/409 on jobs not held, and hostile
 * result bodies that must store nothing.
 */
const TOKEN_FORMAT = /^sotto_wkr_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/;

describe(`worker tokens and the worker protocol guards (${backendLabel})`, () => {
  let t: TestApp;
  let a: TestUser;
  let b: TestUser;
  const ip = freshIp();

  const inject = (method: string, url: string, token: string | undefined, payload?: unknown) =>
    t.app.inject({
      method: method as 'GET',
      url,
      headers: token ? bearer(token) : {},
      remoteAddress: ip,
      ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
    });

  const createToken = async (user: TestUser, name = 'gpu-node') => {
    const res = await inject('POST', '/api/v1/org/workers', user.accessToken, { name });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; token: string; name: string; status: string };
  };

  /** A queued recording with its job (the claim does not need audio). */
  const queueJob = (user: TestUser): Promise<string> =>
    withTenant(t.db, { orgId: user.orgId, userId: user.userId }, (tx) => insertQueuedRecording(tx, user));

  const jobRow = async (id: string) =>
    (
      await t.db.query<{ lease_id: string | null; worker_token_id: string | null; attempts: number }>(
        'SELECT lease_id, worker_token_id, attempts FROM recording_jobs WHERE recording_id = $1',
        [id],
      )
    ).rows[0];
  const transcripts = async (id: string) =>
    Number(
      (await t.db.query<{ n: string }>('SELECT count(*) AS n FROM transcripts WHERE recording_id = $1', [id]))
        .rows[0]!.n,
    );
  const auditActions = async (orgId: string | null) =>
    (
      await t.db.query<{ action: string; actor_kind: string; actor_id: string | null; target_id: string }>(
        'SELECT action, actor_kind, actor_id, target_id FROM audit_log WHERE org_id IS NOT DISTINCT FROM $1 ORDER BY seq',
        [orgId],
      )
    ).rows;

  beforeAll(async () => {
    t = await startTestApp();
    a = await createOrgWithUser(t.services, { role: 'admin' });
    b = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => t?.close());

  it('an org admin creates a token shown once, stored only as a SHA-256, listed without it, audited', async () => {
    const created = await createToken(a, 'gpu-node-1');
    expect(created.token).toMatch(TOKEN_FORMAT);
    expect(created.status).toBe('active');
    const stored = await t.db.query<{ token_hash: string }>(
      'SELECT token_hash FROM worker_tokens WHERE id = $1',
      [created.id],
    );
    const secret = created.token.split('_').slice(3).join('_');
    expect(stored.rows[0]!.token_hash).toBe(createHash('sha256').update(secret).digest('hex'));
    const dump = JSON.stringify((await t.db.query('SELECT * FROM worker_tokens')).rows);
    expect(dump).not.toContain(secret);

    const list = await inject('GET', '/api/v1/org/workers', a.accessToken);
    expect(list.statusCode).toBe(200);
    expect(list.body).not.toContain(secret);
    expect((list.json() as { id: string }[]).map((x) => x.id)).toContain(created.id);
    // B's admin does not see A's tokens.
    const other = await inject('GET', '/api/v1/org/workers', b.accessToken);
    expect((other.json() as { id: string }[]).map((x) => x.id)).not.toContain(created.id);

    const entries = await auditActions(a.orgId);
    expect(entries).toContainEqual(
      expect.objectContaining({ action: 'worker_token.created', actor_kind: 'user', target_id: created.id }),
    );
    expect(JSON.stringify(entries)).not.toContain(secret);
    const [report] = await t.services.audit.verify(a.orgId);
    expect(report?.ok).toBe(true);
  });

  it('members may not manage worker tokens; bad names are refused', async () => {
    const member = await addUser(t.services, a.orgId, { role: 'member' });
    expect((await inject('POST', '/api/v1/org/workers', member.accessToken, { name: 'x' })).statusCode).toBe(
      403,
    );
    expect((await inject('GET', '/api/v1/org/workers', member.accessToken)).statusCode).toBe(403);
    for (const body of [
      { name: '' },
      { name: 'a'.repeat(101) },
      { name: 'bad\u0007bell' },
      { name: 3 },
      {},
    ]) {
      expect((await inject('POST', '/api/v1/org/workers', a.accessToken, body)).statusCode).toBe(400);
    }
    expect(
      (await inject('POST', '/api/v1/org/workers', a.accessToken, { name: 'x', orgId: b.orgId })).statusCode,
    ).toBe(400);
  });

  it('worker tokens are refused on user routes, user tokens on worker routes (401 both ways)', async () => {
    const w = await createToken(a);
    for (const url of ['/api/v1/org', '/api/v1/recordings', '/api/v1/org/workers', '/api/v1/me']) {
      const res = await inject('GET', url, w.token);
      expect(res.statusCode, url).toBe(401);
    }
    expect((await inject('GET', '/api/v1/worker/whoami', w.token)).json()).toEqual({
      id: w.id,
      name: 'gpu-node',
      orgId: a.orgId,
    });
    for (const token of [a.accessToken, b.accessToken]) {
      expect((await inject('GET', '/api/v1/worker/whoami', token)).statusCode).toBe(401);
      expect((await inject('POST', '/api/v1/worker/jobs/claim', token, {})).statusCode).toBe(401);
    }
  });

  it('a worker token is refused (401) on every authenticated user route in the OpenAPI document', async () => {
    const w = await createToken(a, 'sweeper');
    const paths = (t.app.swagger() as { paths: Record<string, Record<string, { security?: unknown[] }>> })
      .paths;
    let checked = 0;
    for (const [p, methods] of Object.entries(paths)) {
      if (p.startsWith('/api/v1/worker/')) continue;
      for (const [method, op] of Object.entries(methods)) {
        if (!op.security?.length) continue;
        const url = p.replace(/\{[^}]+\}/g, randomUUID());
        const res = await inject(method.toUpperCase(), url, w.token, method === 'get' ? undefined : {});
        expect(res.statusCode, `${method.toUpperCase()} ${p}`).toBe(401);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(15);
  });

  it('forged, malformed, unknown and missing worker tokens are all the same 401', async () => {
    const w = await createToken(a);
    const [, , id, ...rest] = w.token.split('_');
    const secret = rest.join('_');
    const flipped = secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A');
    const forged = [
      `sotto_wkr_${id}_${flipped}`, // right id, wrong secret
      `sotto_wkr_${randomUUID().replace(/-/g, '')}_${secret}`, // unknown id
      `sotto_wkr_${id}_${secret}x`, // too long
      `sotto_wkr_${id}`,
      `sotto_wkr_${id!.toUpperCase()}_${secret}`,
      'sotto_wkr_',
      'a.b.c',
    ];
    const bodies = new Set<string>();
    for (const token of forged) {
      const res = await inject('GET', '/api/v1/worker/whoami', token);
      expect(res.statusCode, token).toBe(401);
      bodies.add(res.json().detail as string);
    }
    expect(bodies.size).toBe(1); // nothing tells which part was wrong
    expect((await inject('GET', '/api/v1/worker/whoami', undefined)).statusCode).toBe(401);
    const lines = t.logs.join('');
    expect(lines).not.toContain(secret);
  });

  it('an org token claims only its org’s jobs; nothing due is 204', async () => {
    const wa = await createToken(a);
    const wb = await createToken(b);
    const job = await queueJob(a);
    expect((await inject('POST', '/api/v1/worker/jobs/claim', wb.token, {})).statusCode).toBe(204);
    const claim = await inject('POST', '/api/v1/worker/jobs/claim', wa.token, {});
    expect(claim.statusCode, claim.body).toBe(200);
    expect(claim.json().job).toMatchObject({ id: job, language: null, speakersHint: null });
    expect((await jobRow(job))?.worker_token_id).toBe(wa.id);
    expect((await inject('POST', '/api/v1/worker/jobs/claim', wa.token, {})).statusCode).toBe(204);
    const entries = await auditActions(a.orgId);
    expect(entries).toContainEqual(
      expect.objectContaining({
        action: 'job.claimed',
        actor_kind: 'worker',
        actor_id: wa.id,
        target_id: job,
      }),
    );
    // Hand it back for the next tests.
    const leaseId = claim.json().job.leaseId as string;
    expect(
      (await inject('POST', `/api/v1/worker/jobs/${job}/release`, wa.token, { leaseId })).statusCode,
    ).toBe(200);
    expect((await jobRow(job))?.lease_id).toBeNull();
  });

  it('a job not held: 404 out of scope, 409 in scope with another lease; audio always 404', async () => {
    const wa = await createToken(a);
    const wa2 = await createToken(a, 'second');
    const wb = await createToken(b);
    const job = await queueJob(a);
    let claim = await inject('POST', '/api/v1/worker/jobs/claim', wa.token, {});
    while (claim.statusCode === 200 && claim.json().job.id !== job) {
      // Earlier tests' jobs: release them to get to ours.
      claim = await inject('POST', '/api/v1/worker/jobs/claim', wa.token, {});
    }
    const leaseId = claim.json().job.leaseId as string;
    const hb = (token: string, l = leaseId) =>
      inject('POST', `/api/v1/worker/jobs/${job}/heartbeat`, token, { leaseId: l, progress: 0.5 });
    expect((await hb(wa.token)).statusCode).toBe(200);
    expect((await hb(wb.token)).statusCode).toBe(404); // another org's job
    expect((await hb(wa2.token)).statusCode).toBe(409); // same org, not its lease
    expect((await hb(wa.token, randomUUID())).statusCode).toBe(409);
    expect(
      (
        await inject('POST', `/api/v1/worker/jobs/${randomUUID()}/heartbeat`, wa.token, {
          leaseId,
          progress: 0,
        })
      ).statusCode,
    ).toBe(404);
    for (const token of [wa2.token, wb.token]) {
      expect(
        (await inject('GET', `/api/v1/worker/jobs/${job}/audio?lease=${leaseId}`, token)).statusCode,
      ).toBe(404);
    }
    expect(
      (await inject('GET', `/api/v1/worker/jobs/${job}/audio?lease=${randomUUID()}`, wa.token)).statusCode,
    ).toBe(404);
    expect(
      (await inject('POST', `/api/v1/worker/jobs/${job}/fail`, wa.token, { leaseId, code: 'made_up' }))
        .statusCode,
    ).toBe(400);
    const failed = await inject('POST', `/api/v1/worker/jobs/${job}/fail`, wa.token, {
      leaseId,
      code: 'engine_failed',
    });
    expect(failed.statusCode).toBe(200);
    expect(failed.json()).toEqual({ outcome: 'retry' });
    expect((await jobRow(job))?.lease_id).toBeNull();
  });

  it('hostile results are refused (400/413) and store nothing', async () => {
    const wa = await createToken(a, 'hostile');
    const job = await queueJob(a);
    let claim = await inject('POST', '/api/v1/worker/jobs/claim', wa.token, {});
    while (claim.statusCode === 200 && claim.json().job.id !== job) {
      claim = await inject('POST', '/api/v1/worker/jobs/claim', wa.token, {});
    }
    expect(claim.statusCode).toBe(200);
    const leaseId = claim.json().job.leaseId as string;
    const good = {
      leaseId,
      segments: [
        {
          id: 'seg1',
          speaker: 'S1',
          start: 0,
          end: 1,
          text: 'hi',
          words: [{ w: 'hi', start: 0, end: 1, conf: 1 }],
        },
      ],
      speakers: ['S1'],
      durationSeconds: 2,
      channels: 1,
      engine: 'test',
    };
    const seg = good.segments[0]!;
    const hostile: [string, unknown][] = [
      ['string time', { ...good, segments: [{ ...seg, start: '0' }] }],
      ['negative time', { ...good, segments: [{ ...seg, start: -1 }] }],
      ['end before start', { ...good, segments: [{ ...seg, start: 1, end: 0.5 }] }],
      ['unknown speaker', { ...good, segments: [{ ...seg, speaker: 'S9' }] }],
      ['bad speaker label', { ...good, speakers: ['<script>'], segments: [] }],
      ['conf > 1', { ...good, segments: [{ ...seg, words: [{ w: 'x', start: 0, end: 1, conf: 2 }] }] }],
      ['extra key', { ...good, orgId: b.orgId }],
      ['too many channels', { ...good, channels: 1000 }],
      ['control chars in engine', { ...good, engine: 'x\u0000' }],
      ['segments not an array', { ...good, segments: {} }],
      ['huge text', { ...good, segments: [{ ...seg, text: 'a'.repeat(100_001) }] }],
    ];
    for (const [what, body] of hostile) {
      const res = await inject('POST', `/api/v1/worker/jobs/${job}/complete`, wa.token, body);
      expect(res.statusCode, what).toBe(400);
    }
    // NaN and Infinity cannot be written in JSON; 1e999 parses to Infinity and must not pass.
    for (const raw of [
      JSON.stringify(good).replace('"start":0,"end":1,"text"', '"start":NaN,"end":1,"text"'),
      JSON.stringify(good).replace('"durationSeconds":2', '"durationSeconds":1e999'),
    ]) {
      const res = await t.app.inject({
        method: 'POST',
        url: `/api/v1/worker/jobs/${job}/complete`,
        headers: { ...bearer(wa.token), 'content-type': 'application/json' },
        payload: raw,
        remoteAddress: ip,
      });
      expect(res.statusCode, raw.slice(0, 80)).toBe(400);
    }
    const huge = await t.app.inject({
      method: 'POST',
      url: `/api/v1/worker/jobs/${job}/complete`,
      headers: { ...bearer(wa.token), 'content-type': 'application/json' },
      payload: JSON.stringify({ ...good, engine: 'x'.repeat(33 * 1024 * 1024) }),
      remoteAddress: ip,
    });
    expect(huge.statusCode).toBe(413);
    expect(await transcripts(job)).toBe(0);
    expect((await jobRow(job))?.lease_id).toBe(leaseId);
    // The well-formed result is accepted once; a second send is refused (the job is gone).
    expect((await inject('POST', `/api/v1/worker/jobs/${job}/complete`, wa.token, good)).statusCode).toBe(
      200,
    );
    expect(await transcripts(job)).toBe(1);
    expect((await inject('POST', `/api/v1/worker/jobs/${job}/complete`, wa.token, good)).statusCode).toBe(
      404,
    );
    expect(await transcripts(job)).toBe(1);
  });

  it('revocation refuses the next request and hands the held job back; other orgs cannot revoke', async () => {
    const w = await createToken(a, 'to-revoke');
    const job = await queueJob(a);
    let claim = await inject('POST', '/api/v1/worker/jobs/claim', w.token, {});
    while (claim.statusCode === 200 && claim.json().job.id !== job) {
      claim = await inject('POST', '/api/v1/worker/jobs/claim', w.token, {});
    }
    const leaseId = claim.json().job.leaseId as string;
    expect((await inject('DELETE', `/api/v1/org/workers/${w.id}`, b.accessToken)).statusCode).toBe(404);
    expect((await inject('GET', '/api/v1/worker/whoami', w.token)).statusCode).toBe(200);
    expect((await inject('DELETE', `/api/v1/org/workers/${w.id}`, a.accessToken)).statusCode).toBe(204);
    expect((await inject('GET', '/api/v1/worker/whoami', w.token)).statusCode).toBe(401);
    expect(
      (await inject('GET', `/api/v1/worker/jobs/${job}/audio?lease=${leaseId}`, w.token)).statusCode,
    ).toBe(401);
    const row = await jobRow(job);
    expect(row?.lease_id).toBeNull();
    expect(row?.worker_token_id).toBeNull();
    expect(row?.attempts).toBe(0); // not the job's fault: the attempt is not counted
    const list = (await inject('GET', '/api/v1/org/workers', a.accessToken)).json() as {
      id: string;
      status: string;
    }[];
    expect(list.find((x) => x.id === w.id)?.status).toBe('revoked');
    expect((await inject('DELETE', `/api/v1/org/workers/${w.id}`, a.accessToken)).statusCode).toBe(204); // idempotent
    expect(await auditActions(a.orgId)).toContainEqual(
      expect.objectContaining({ action: 'worker_token.revoked', target_id: w.id }),
    );
  });

  it('the operator CLI: platform and org tokens, list without secrets, revoke; audited on the right chain', async () => {
    const lines: string[] = [];
    const print = (l: string) => lines.push(l);
    const platform = await addWorker(t.services, { name: 'gpu-farm' }, print);
    expect(platform.token).toMatch(TOKEN_FORMAT);
    expect(lines.join('\n')).toContain(platform.token);
    const slug = (await t.db.query<{ slug: string }>('SELECT slug FROM orgs WHERE id = $1', [b.orgId]))
      .rows[0]!.slug;
    const scoped = await addWorker(t.services, { name: 'b-node', org: slug }, print);
    await expect(addWorker(t.services, { name: 'x', org: 'no-such-org' }, print)).rejects.toThrow(
      /no-such-org/,
    );

    lines.length = 0;
    await listWorkers(t.services, print);
    const listed = lines.join('\n');
    expect(listed).toContain(platform.id);
    expect(listed).toContain(`org:${b.orgId}`);
    expect(listed).not.toContain(platform.token);
    expect(listed).not.toContain('sotto_wkr_');

    // The platform worker serves every org; B's token stays in B.
    const me = await inject('GET', '/api/v1/worker/whoami', platform.token);
    expect(me.json().orgId).toBeNull();
    const job = await queueJob(b);
    let claim = await inject('POST', '/api/v1/worker/jobs/claim', platform.token, {});
    const seen: string[] = [];
    while (claim.statusCode === 200) {
      seen.push(claim.json().job.id as string);
      claim = await inject('POST', '/api/v1/worker/jobs/claim', platform.token, {});
    }
    expect(seen).toContain(job);

    lines.length = 0;
    await revokeWorker(t.services, platform.id, print);
    expect(lines[0]).toMatch(/Revoked/);
    expect((await inject('GET', '/api/v1/worker/whoami', platform.token)).statusCode).toBe(401);
    // Every job the platform token held went back to the queue at once.
    for (const id of seen) expect((await jobRow(id))?.lease_id ?? null).toBeNull();
    await revokeWorker(t.services, platform.id, print);
    expect(lines[1]).toMatch(/already revoked/);
    await expect(revokeWorker(t.services, 'not-an-id', print)).rejects.toThrow(/ID/);
    await expect(revokeWorker(t.services, randomUUID(), print)).rejects.toThrow(/not found/);

    const platformChain = await auditActions(null);
    expect(platformChain).toContainEqual(
      expect.objectContaining({
        action: 'worker_token.created',
        actor_kind: 'system',
        target_id: platform.id,
      }),
    );
    expect(platformChain).toContainEqual(
      expect.objectContaining({
        action: 'worker_token.revoked',
        actor_kind: 'system',
        target_id: platform.id,
      }),
    );
    expect(await auditActions(b.orgId)).toContainEqual(
      expect.objectContaining({ action: 'worker_token.created', target_id: scoped.id }),
    );
    for (const report of await t.services.audit.verify()) expect(report.ok, String(report.orgId)).toBe(true);
  });
});
