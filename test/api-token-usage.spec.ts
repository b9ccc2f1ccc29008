import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { apiTokenRepository } from '../src/repositories/auth/api-token.repository.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { workerTokenRepository } from '../src/repositories/transcription/worker-token.repository.js';
import { call, freshIp } from './helpers/auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * What a personal API token costs and leaves behind per request: last_used_at is written at most
 * once a minute (a busy script must not turn every call into a write), and whatever the token
 * does is audited as its user *through that token* (details.apiTokenId).
 */
describe(`API token usage and audit attribution (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  const clock = new ManualClock(new Date(Date.now() + 60_000));

  beforeAll(async () => {
    t = await startTestApp({ clock, env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000' } });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => t?.close());
  afterEach(() => vi.restoreAllMocks());

  const req = (credential: string, opts: { method?: string; url: string; payload?: unknown }) =>
    call(t, freshIp(), {
      method: (opts.method ?? 'GET') as 'GET',
      url: opts.url,
      headers: bearer(credential),
      ...(opts.payload !== undefined ? { payload: opts.payload as object } : {}),
    });
  const mint = async (scopes: string[]) => {
    const res = await req(owner.accessToken, {
      method: 'POST',
      url: '/api/v1/tokens',
      payload: { name: 'script', scopes },
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { token: string; id: string };
  };
  const lastUsed = async (id: string) =>
    (
      await withSystem(t.db, (tx) =>
        tx.query<{ last_used_at: Date | null }>('SELECT last_used_at FROM api_tokens WHERE id = $1', [id]),
      )
    ).rows[0]!.last_used_at;

  it('last_used_at is written on first use, then at most once a minute: no write per request', async () => {
    const tok = await mint(['org:read']);
    const touch = vi.spyOn(apiTokenRepository, 'touch');
    expect((await req(tok.token, { url: '/api/v1/org' })).statusCode).toBe(200);
    expect(touch).toHaveBeenCalledTimes(1);
    const first = await lastUsed(tok.id);
    expect(first?.getTime()).toBe(clock.now().getTime());
    for (let i = 0; i < 5; i++) {
      clock.advance(10_000);
      expect((await req(tok.token, { url: '/api/v1/org' })).statusCode).toBe(200);
    }
    expect(touch).toHaveBeenCalledTimes(1); // 50 s later: still the first write only
    expect((await lastUsed(tok.id))?.getTime()).toBe(first!.getTime());
    clock.advance(10_000); // a minute after the write
    expect((await req(tok.token, { url: '/api/v1/org' })).statusCode).toBe(200);
    expect(touch).toHaveBeenCalledTimes(2);
    expect((await lastUsed(tok.id))?.getTime()).toBe(clock.now().getTime());
  });

  it('worker tokens follow the same rule', async () => {
    const res = await req(owner.accessToken, {
      method: 'POST',
      url: '/api/v1/org/workers',
      payload: { name: 'gpu box' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const { token: secret } = res.json() as { token: string };
    const touch = vi.spyOn(workerTokenRepository, 'touch');
    await t.services.workerTokens.authenticate(secret);
    clock.advance(30_000);
    await t.services.workerTokens.authenticate(secret);
    expect(touch).toHaveBeenCalledTimes(1);
    clock.advance(30_000);
    await t.services.workerTokens.authenticate(secret);
    expect(touch).toHaveBeenCalledTimes(2);
  });

  it('an action done with a token is audited with the token id; the same action signed in is not', async () => {
    const tok = await mint(['org:admin']);
    const viaToken = await req(tok.token, {
      method: 'POST',
      url: '/api/v1/org/webhooks',
      payload: { url: 'https://hooks.example.com/a', events: ['recording.done'] },
    });
    expect(viaToken.statusCode, viaToken.body).toBe(201);
    const viaSession = await req(owner.accessToken, {
      method: 'POST',
      url: '/api/v1/org/webhooks',
      payload: { url: 'https://hooks.example.com/b', events: ['recording.done'] },
    });
    expect(viaSession.statusCode, viaSession.body).toBe(201);
    const audit = await req(owner.accessToken, { url: '/api/v1/audit?action=webhook.created' });
    expect(audit.statusCode, audit.body).toBe(200);
    const { entries, verification } = audit.json() as {
      entries: { actorId: string; targetId: string; details: Record<string, unknown> }[];
      verification: { ok: boolean };
    };
    const byTarget = new Map(entries.map((e) => [e.targetId, e]));
    const tokenEntry = byTarget.get((viaToken.json() as { id: string }).id)!;
    expect(tokenEntry).toMatchObject({ actorId: owner.userId, details: { apiTokenId: tok.id } });
    const sessionEntry = byTarget.get((viaSession.json() as { id: string }).id)!;
    expect(sessionEntry.actorId).toBe(owner.userId);
    expect(sessionEntry.details).not.toHaveProperty('apiTokenId');
    expect(verification.ok).toBe(true);
    // The audit log itself, read with a token, names nothing more than the id.
    expect(audit.body).not.toContain(tok.token);
  });
});
