import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/domain/errors.js';
import { MemoryTicketStore } from '../src/adapters/redis/ticket.adapter.js';
import { AudioTicketService } from '../src/services/recordings/audio-ticket.service.js';
import { freshIp } from './helpers/auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';
import { wavFile } from './helpers/wav-file.js';

/**
 * Playback under load from one tenant or one player (docs/audio-storage.md, docs/security.md):
 * the in-memory ticket store's cap evicts the flooding org's own tickets, never another org's;
 * range requests (a player makes one per seek) count in their own bucket
 * (SOTTO_RATE_LIMIT_AUDIO_PER_MINUTE), so seeking through a long recording never spends the API
 * budget, and the API never spends playback's. Real sealed audio, the real database and service.
 */
describe(`audio playback: tickets per org, ranges in their own bucket (${backendLabel})`, () => {
  let t: TestApp;
  let dir: string;
  const ip = freshIp();
  const users: TestUser[] = [];
  const kept: string[] = [];

  async function keep(u: TestUser): Promise<string> {
    const id = await seedTranscript(t.services, u, { segments: [seg(1, 'S1', 0, 'hello there')] });
    const file = path.join(dir, `${id}.wav`);
    writeFileSync(file, wavFile(2));
    await t.services.audio.seal(u.orgId, id, file, 'audio/wav');
    return id;
  }

  beforeAll(async () => {
    const r = recordingEnv({
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '5',
      SOTTO_RATE_LIMIT_AUDIO_PER_MINUTE: '12',
    });
    t = await startTestApp({ env: r.env });
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-audio-limits-'));
    for (let i = 0; i < 4; i++) {
      const u = await createOrgWithUser(t.services, { role: 'owner' });
      users.push(u);
      kept.push(await keep(u));
    }
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a full ticket store evicts the flooding org’s oldest tickets, never another org’s', async () => {
    // Small caps, the store and service otherwise as the server builds them.
    const store = new MemoryTicketStore({ maxEntries: 4, maxPerGroup: 2 });
    const service = new AudioTicketService(t.db, t.services.audio, store, t.services.clock, t.services.audit);
    const actor = (i: number) => ({
      userId: users[i]!.userId,
      orgId: users[i]!.orgId,
      role: 'owner' as const,
      sessionId: users[i]!.sessionId,
      viaSupportGrant: false,
      ip,
    });
    const issue = async (i: number) => (await service.issue(actor(i), kept[i]!)).ticket;
    const plays = async (i: number, ticket: string) => {
      try {
        const p = await service.playback(ticket, kept[i]!, 'bytes=0-99', ip);
        (p as { stream?: { destroy(): void } }).stream?.destroy();
        return p.status;
      } catch (err) {
        if (err instanceof AppError && err.code === 'not_found') return 404;
        throw err;
      }
    };
    const [B, A, C, D] = [0, 1, 2, 3];
    const b = await issue(B);
    const a = [await issue(A), await issue(A), await issue(A), await issue(A)];
    // Org A holds its cap (2): its own oldest went, B's ticket did not.
    const c = await issue(C); // the store is full now: b, a[2], a[3], c
    const d = await issue(D); // full: the oldest ticket of the largest holder (A) goes
    expect(await plays(B, b)).toBe(206);
    expect(await plays(C, c)).toBe(206);
    expect(await plays(D, d)).toBe(206);
    expect(await plays(A, a[3]!)).toBe(206);
    for (const old of a.slice(0, 3)) expect(await plays(A, old)).toBe(404);
  });

  it('range requests spend the playback bucket, not the API budget', async () => {
    const u = users[0]!;
    const get = (url: string, headers: Record<string, string> = {}) =>
      t.app.inject({ method: 'GET', url, headers, remoteAddress: ip });
    const ticket = await t.app.inject({
      method: 'POST',
      url: `/api/v1/recordings/${kept[0]}/audio-ticket`,
      headers: bearer(u.accessToken),
      remoteAddress: ip,
    });
    expect(ticket.statusCode, ticket.body).toBe(201);
    const url = ticket.json<{ url: string }>().url;
    // Seeking: ten ranges, twice the API's budget of five per minute.
    for (let i = 0; i < 10; i++) {
      const res = await get(url, { range: `bytes=${i * 1000}-${i * 1000 + 999}` });
      expect(res.statusCode, `range ${i}`).toBe(206);
      expect(res.headers['ratelimit-policy']).toBe('12;w=60');
    }
    // The API is untouched by it.
    const list = await get('/api/v1/recordings', bearer(u.accessToken));
    expect(list.statusCode).toBe(200);
    expect(list.headers['ratelimit-remaining']).toBe('4');
    // The bearer route shares playback's bucket (two left), then it is spent: 429, its own policy.
    for (let i = 0; i < 2; i++)
      expect(
        (await get(`/api/v1/recordings/${kept[0]}/audio`, { ...bearer(u.accessToken), range: 'bytes=0-9' }))
          .statusCode,
      ).toBe(206);
    const over = await get(url, { range: 'bytes=0-9' });
    expect(over.statusCode).toBe(429);
    expect(over.headers['ratelimit-policy']).toBe('12;w=60');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // …and the API still answers.
    expect((await get('/api/v1/recordings', bearer(u.accessToken))).statusCode).toBe(200);
  });
});
