import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { apiScopes, type ApiScope } from '../src/domain/api-scopes.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { call, freshIp } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Personal API tokens (`sotto_pat_…`): creation, the shown-once secret, listing, revocation, and
 * scope enforcement on EVERY registered route, enumerated from the Fastify instance itself so a
 * new route that nobody classified fails this suite.
 */

interface RouteInfo {
  /** "METHOD /path" (HEAD mirrors GET and is left out). */
  route: string;
  /** Names of its onRequest hooks: permission guards are named `requirePermission(a|b)`. */
  onRequest: string;
}

/** Every route the app serves, with its onRequest hooks, parsed from printRoutes. */
function registeredRoutes(tree: string): RouteInfo[] {
  const stack: string[] = [];
  const out: RouteInfo[] = [];
  let current: RouteInfo[] = [];
  const parse = (methods: string, path: string) =>
    methods
      .split(', ')
      .filter((m) => m && m !== 'HEAD')
      .map((m) => ({ route: `${m} ${path}`, onRequest: '' }));
  for (const line of tree.split('\n')) {
    const head = /^(.*?)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    const sibling = /^[│ ]*([^•├└│ ].*?) \(([A-Z, ]+)\)$/.exec(line);
    const hook = /• \(onRequest\) \[(.*)\]$/.exec(line);
    if (head) {
      const depth = head[1]!.length / 4;
      const path = (depth > 0 ? stack[depth - 1]! : '') + head[2]!;
      stack.length = depth;
      stack[depth] = path;
      current = parse(head[3] ?? '', path);
      out.push(...current);
    } else if (sibling) {
      current = parse(sibling[2]!, stack[stack.length - 1] ?? '');
      out.push(...current);
    } else if (hook) {
      for (const r of current) r.onRequest = hook[1]!;
    }
  }
  return [...new Map(out.map((r) => [r.route, r])).values()];
}

type Rule =
  | { kind: 'public' }
  /** Own-account routes: a token is not a session (401), or the route refuses it (403). */
  | { kind: 'session' }
  | { kind: 'worker' }
  /** Any one of these scopes lets a token past authorisation. */
  | { kind: 'scoped'; any: ApiScope[] };

/**
 * The scopes that must open each permission, written out here (not imported) so the test checks
 * the domain mapping instead of restating it. A permission missing here fails the suite.
 */
const SCOPES_FOR: Record<string, ApiScope[]> = {
  'org.read': ['org:read'],
  'members.read': ['org:read'],
  'org.manage': ['org:admin'],
  'members.manage': ['org:admin'],
  'support.grant': ['org:admin'],
  'workers.manage': ['org:admin'],
  'webhooks.manage': ['org:admin'],
  'audit.read': ['audit:read'],
  'recordings.read': ['recordings:read'],
  'recordings.read_all': ['recordings:read'],
  'recordings.create': ['recordings:write'],
  'live.ingest': ['live:ingest', 'recordings:write'],
  // No scope opens it: the whole-org export is for a signed-in owner or admin only.
  'org.export': [],
  // Nor this one: changing or removing the SSO connection takes a signed-in owner or admin.
  'sso.manage': [],
};

/** Routes without a permission guard, classified by hand: a new one must be added here. */
function manualRule(route: string): Rule | undefined {
  const path = route.split(' ')[1]!;
  if (path.startsWith('/api/docs') || ['/healthz', '/readyz', '/.well-known/security.txt'].includes(path))
    return { kind: 'public' };
  if (path.startsWith('/api/v1/worker/')) return { kind: 'worker' };
  if (
    /^\/api\/v1\/auth\/(signup|signup\/verify|login|logout|csrf|refresh|accept-invitation(\/preview)?)$/.test(
      path,
    )
  )
    return { kind: 'public' };
  // Single sign-on: the browser's redirects to and from the identity provider (no credential).
  if (path.startsWith('/api/v1/auth/sso/')) return { kind: 'public' };
  if (path.startsWith('/api/v1/auth/') || path === '/api/v1/me' || path === '/api/v1/support/orgs')
    return { kind: 'session' };
  if (path.startsWith('/api/v1/tokens')) return { kind: 'session' };
  // Deleting the organization needs the owner's session (and password), never a token.
  if (route === 'DELETE /api/v1/org') return { kind: 'session' };
  // The web panel, when it has been built (`npm run build`): static files and the SPA's pages.
  if (route === 'GET /' || route === 'GET /*' || route.startsWith('GET /assets/')) return { kind: 'public' };
  // WebSocket handshakes authorise in a preHandler (a bearer header, or a browser ticket).
  if (route === 'GET /api/v1/recordings/:id/live')
    return { kind: 'scoped', any: ['live:ingest', 'recordings:write'] };
  if (route === 'GET /api/v1/recordings/:id/watch') return { kind: 'scoped', any: ['recordings:read'] };
  // The panel's <audio> source: the ticket in the query is the credential, minted through the
  // scoped POST …/audio-ticket (test/audio-range.spec.ts).
  if (route === 'GET /api/v1/recordings/:id/audio/stream') return { kind: 'public' };
  return undefined;
}

function ruleOf(r: RouteInfo): Rule | undefined {
  const guard = /requirePermission\(([a-z_.|]+)\)/.exec(r.onRequest);
  if (!guard) return manualRule(r.route);
  const any = new Set<ApiScope>();
  for (const p of guard[1]!.split('|')) {
    const scopes = SCOPES_FOR[p];
    if (!scopes) return undefined;
    if (scopes.length === 0) return { kind: 'session' };
    for (const s of scopes) any.add(s);
  }
  return { kind: 'scoped', any: [...any] };
}

/** Where the secret part starts: after `sotto_pat_`, 32 hex digits and `_`. */
const SECRET_AT = 'sotto_pat_'.length + 33;

interface CreatedToken {
  id: string;
  token: string;
  name: string;
  scopes: ApiScope[];
}

describe(`personal API tokens (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let admin: TestUser;
  let member: TestUser;
  let other: TestUser;
  const clock = new ManualClock(new Date('2026-03-01T10:00:00Z'));
  const cache = new Map<string, string>();

  beforeAll(async () => {
    t = await startTestApp({ clock, env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000' } });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => t?.close());

  const req = (
    credential: string | undefined,
    opts: { method?: string; url: string; payload?: unknown; headers?: Record<string, string> },
  ) =>
    call(t, freshIp(), {
      method: (opts.method ?? 'GET') as 'GET',
      url: opts.url,
      ...(opts.payload !== undefined ? { payload: opts.payload as object } : {}),
      headers: { ...(credential ? bearer(credential) : {}), ...opts.headers },
    });

  async function create(
    who: TestUser,
    body: { name?: string; scopes: ApiScope[]; expiresInDays?: number },
  ): Promise<CreatedToken> {
    const res = await req(who.accessToken, {
      method: 'POST',
      url: '/api/v1/tokens',
      payload: { name: body.name ?? 'script', ...body },
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as CreatedToken;
  }

  /** An owner's token with exactly these scopes (cached: one per distinct set). */
  async function ownerToken(scopes: ApiScope[]): Promise<string> {
    const key = [...scopes].sort().join(',');
    let tok = cache.get(key);
    if (!tok) {
      tok = (await create(owner, { scopes })).token;
      cache.set(key, tok);
    }
    return tok;
  }

  it('creates a token in the sotto_pat_ format, shown once; only its hash is stored; the name is encrypted', async () => {
    const created = await create(owner, { name: 'Zoom bot ✓', scopes: ['live:ingest', 'recordings:read'] });
    expect(created.token).toMatch(/^sotto_pat_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({ name: 'Zoom bot ✓', scopes: ['live:ingest', 'recordings:read'] });
    expect(created).toMatchObject({ status: 'active', expiresAt: '2026-05-30T10:00:00.000Z' });

    const list = await req(owner.accessToken, { url: '/api/v1/tokens' });
    expect(list.statusCode).toBe(200);
    const secret = created.token.slice(SECRET_AT);
    expect(list.body).not.toContain(secret);
    const mine = (list.json() as Record<string, unknown>[]).find((x) => x.id === created.id)!;
    expect(mine).toMatchObject({ name: 'Zoom bot ✓', status: 'active', lastUsedAt: null });
    expect(mine).not.toHaveProperty('token');

    const { rows } = await withSystem(t.db, (tx) =>
      tx.query<{ token_hash: string; name_enc: Uint8Array }>(
        'SELECT token_hash, name_enc FROM api_tokens WHERE id = $1',
        [created.id],
      ),
    );
    expect(rows[0]!.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0]!.token_hash).not.toContain(secret);
    expect(Buffer.from(rows[0]!.name_enc).toString('latin1')).not.toContain('Zoom bot');

    // It works, and using it is recorded.
    const me = await req(created.token, { url: '/api/v1/recordings' });
    expect(me.statusCode).toBe(200);
    const after = (await req(owner.accessToken, { url: '/api/v1/tokens' })).json() as Record<
      string,
      unknown
    >[];
    expect(after.find((x) => x.id === created.id)!.lastUsedAt).toBe('2026-03-01T10:00:00.000Z');
  });

  it('refuses hostile names, scopes and lifetimes with 400', async () => {
    const bad: unknown[] = [
      { name: '', scopes: ['recordings:read'] },
      { name: 'x'.repeat(101), scopes: ['recordings:read'] },
      { name: 'evil\u001b[31m', scopes: ['recordings:read'] },
      { name: 'line\nbreak', scopes: ['recordings:read'] },
      { name: 42, scopes: ['recordings:read'] },
      { name: 'ok', scopes: [] },
      { name: 'ok', scopes: ['admin'] },
      { name: 'ok', scopes: ['recordings:read', '*'] },
      { name: 'ok', scopes: 'recordings:read' },
      { name: 'ok', scopes: ['recordings:read'], expiresInDays: 0 },
      { name: 'ok', scopes: ['recordings:read'], expiresInDays: 366 },
      { name: 'ok', scopes: ['recordings:read'], expiresInDays: 1.5 },
      { name: 'ok', scopes: ['recordings:read'], expiresInDays: '30' },
      { name: 'ok', scopes: ['recordings:read'], extra: true },
      { name: 'ok' },
      [],
      null,
    ];
    for (const payload of bad) {
      const res = await req(owner.accessToken, { method: 'POST', url: '/api/v1/tokens', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    const many = await req(owner.accessToken, {
      method: 'POST',
      url: '/api/v1/tokens',
      payload: { name: 'ok', scopes: Array(100).fill('recordings:read') },
    });
    expect(many.statusCode).toBe(400);
  });

  it('a member cannot create a token with a scope their role cannot use (403)', async () => {
    for (const scope of ['org:admin', 'audit:read'] as const) {
      const res = await req(member.accessToken, {
        method: 'POST',
        url: '/api/v1/tokens',
        payload: { name: 'x', scopes: [scope] },
      });
      expect(res.statusCode, scope).toBe(403);
    }
    await create(member, { scopes: ['recordings:read', 'org:read'] });
  });

  it('every registered route is classified, and scopes are enforced on each', async () => {
    const routes = registeredRoutes(t.app.printRoutes({ commonPrefix: false, includeHooks: true }));
    expect(routes.length).toBeGreaterThan(40);
    const unclassified = routes.filter((r) => !ruleOf(r)).map((r) => `${r.route} ${r.onRequest}`);
    expect(unclassified, 'routes without a scope rule: classify them in this spec').toEqual([]);
    // Spot checks that the guards were read right.
    const guardOf = (route: string) => ruleOf(routes.find((r) => r.route === route)!);
    expect(guardOf('GET /api/v1/recordings/:id/transcript')).toEqual({
      kind: 'scoped',
      any: ['recordings:read'],
    });
    expect(guardOf('PATCH /api/v1/org/settings')).toEqual({ kind: 'scoped', any: ['org:admin'] });
    expect(guardOf('GET /api/v1/audit')).toEqual({ kind: 'scoped', any: ['audit:read'] });
    const all = await ownerToken([...apiScopes]);
    const fakeId = randomUUID();
    let checked = 0;
    for (const r of routes) {
      const rule = ruleOf(r)!;
      const [method, pattern] = r.route.split(' ') as [string, string];
      if (pattern.includes('*') || rule.kind === 'public') continue;
      const url = pattern.replace(/:[A-Za-z]+/g, fakeId);
      if (rule.kind === 'session' || rule.kind === 'worker') {
        const res = await req(all, { method, url });
        expect([401, 403], `${r.route} with an API token`).toContain(res.statusCode);
        checked++;
        continue;
      }
      const without = await ownerToken(apiScopes.filter((s) => !rule.any.includes(s)));
      const refused = await req(without, { method, url });
      expect(refused.statusCode, `${r.route} without ${rule.any.join('|')}: ${refused.body}`).toBe(403);
      for (const scope of rule.any) {
        const allowed = await req(await ownerToken([scope]), { method, url });
        expect([401, 403], `${r.route} with ${scope}: ${allowed.body}`).not.toContain(allowed.statusCode);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(35);
  });

  it('own-account routes are session-only: a token never reaches them', async () => {
    const all = await ownerToken([...apiScopes]);
    for (const [method, url] of [
      ['GET', '/api/v1/me'],
      ['GET', '/api/v1/auth/devices'],
      ['POST', '/api/v1/auth/devices/revoke-all'],
      ['POST', '/api/v1/auth/password'],
      ['POST', '/api/v1/auth/mfa/totp'],
    ] as const) {
      expect((await req(all, { method, url })).statusCode, url).toBe(401);
    }
    // Tokens cannot mint, list or revoke tokens.
    const mint = await req(all, {
      method: 'POST',
      url: '/api/v1/tokens',
      payload: { name: 'child', scopes: ['recordings:read'] },
    });
    expect(mint.statusCode).toBe(403);
    expect((await req(all, { url: '/api/v1/tokens' })).statusCode).toBe(403);
  });

  it('forged, malformed and revoked tokens are 401; revocation is idempotent', async () => {
    const tok = await create(owner, { scopes: ['recordings:read'] });
    const [, , idHex] = tok.token.split('_') as [string, string, string];
    const secret = tok.token.slice(`sotto_pat_${idHex}_`.length);
    const flipped = (secret[0] === 'A' ? 'B' : 'A') + secret.slice(1);
    const forged = [
      `sotto_pat_${idHex}_${flipped}`,
      `sotto_pat_${randomUUID().replace(/-/g, '')}_${secret}`,
      `sotto_pat_${idHex}_${secret}x`,
      `sotto_pat_${idHex}`,
      'sotto_pat_',
      `sotto_wkr_${idHex}_${secret}`,
    ];
    for (const f of forged) {
      const res = await req(f, { url: '/api/v1/recordings' });
      expect(res.statusCode, f).toBe(401);
    }
    expect((await req(tok.token, { url: '/api/v1/recordings' })).statusCode).toBe(200);
    const del = await req(owner.accessToken, { method: 'DELETE', url: `/api/v1/tokens/${tok.id}` });
    expect(del.statusCode).toBe(204);
    expect((await req(tok.token, { url: '/api/v1/recordings' })).statusCode).toBe(401);
    expect(
      (await req(owner.accessToken, { method: 'DELETE', url: `/api/v1/tokens/${tok.id}` })).statusCode,
    ).toBe(204);
    const listed = (await req(owner.accessToken, { url: '/api/v1/tokens' })).json() as Record<
      string,
      unknown
    >[];
    expect(listed.find((x) => x.id === tok.id)).toMatchObject({ status: 'revoked' });
  });

  it('cross-tenant: another org’s token id is 404 to revoke; another org’s token sees none of our rows', async () => {
    const ours = await create(owner, { scopes: ['recordings:read', 'recordings:write'] });
    const theirs = await create(other, { scopes: ['recordings:read', 'recordings:write', 'org:read'] });
    expect(
      (await req(other.accessToken, { method: 'DELETE', url: `/api/v1/tokens/${ours.id}` })).statusCode,
    ).toBe(404);
    expect((await req(ours.token, { url: '/api/v1/recordings' })).statusCode).toBe(200);
    // A live recording of ours is 404 to their token, whatever header it sends.
    const rec = await req(ours.token, {
      method: 'POST',
      url: '/api/v1/recordings',
      payload: { mode: 'live' },
    });
    expect(rec.statusCode, rec.body).toBe(201);
    const id = (rec.json() as { id: string }).id;
    for (const [method, url] of [
      ['GET', `/api/v1/recordings/${id}`],
      ['DELETE', `/api/v1/recordings/${id}`],
      ['POST', `/api/v1/recordings/${id}/live-ticket`],
    ] as const) {
      const res = await req(theirs.token, { method, url, headers: { 'x-sotto-org': owner.orgId } });
      expect(
        res.statusCode,
        `${url} ${res.body} ${t.logs
          .filter((l) => l.includes('"level":50'))
          .join('\n')
          .slice(-1500)}`,
      ).toBe(404);
    }
    const org = await req(theirs.token, { url: '/api/v1/org', headers: { 'x-sotto-org': owner.orgId } });
    expect((org.json() as { id: string }).id).toBe(other.orgId);
    // Members never see each other's tokens; admins see and revoke members'.
    const memberTok = await create(member, { scopes: ['recordings:read'] });
    expect(
      (await req(member.accessToken, { method: 'DELETE', url: `/api/v1/tokens/${ours.id}` })).statusCode,
    ).toBe(404);
    const memberList = (await req(member.accessToken, { url: '/api/v1/tokens' })).json() as {
      userId: string;
    }[];
    expect(memberList.every((x) => x.userId === member.userId)).toBe(true);
    expect((await req(member.accessToken, { url: '/api/v1/tokens?all=true' })).statusCode).toBe(403);
    const adminAll = (await req(admin.accessToken, { url: '/api/v1/tokens?all=true' })).json() as {
      id: string;
    }[];
    expect(adminAll.map((x) => x.id)).toContain(memberTok.id);
    expect(adminAll.map((x) => x.id)).not.toContain(theirs.id);
    expect(
      (await req(admin.accessToken, { method: 'DELETE', url: `/api/v1/tokens/${memberTok.id}` })).statusCode,
    ).toBe(204);
    expect((await req(memberTok.token, { url: '/api/v1/recordings' })).statusCode).toBe(401);
  });

  it('a token follows its user: a lowered role narrows it at once, removal ends it', async () => {
    const victim = await addUser(t.services, owner.orgId, { role: 'admin' });
    const tok = await create(victim, { scopes: ['org:admin', 'recordings:read'] });
    expect((await req(tok.token, { url: '/api/v1/org/settings' })).statusCode).toBe(200);
    const lower = await req(owner.accessToken, {
      method: 'PATCH',
      url: `/api/v1/org/members/${victim.userId}`,
      payload: { role: 'member' },
    });
    expect(lower.statusCode, lower.body).toBe(200);
    expect((await req(tok.token, { url: '/api/v1/org/settings' })).statusCode).toBe(403);
    expect((await req(tok.token, { url: '/api/v1/recordings' })).statusCode).toBe(200);
    const remove = await req(owner.accessToken, {
      method: 'DELETE',
      url: `/api/v1/org/members/${victim.userId}`,
    });
    expect(remove.statusCode).toBe(204);
    expect((await req(tok.token, { url: '/api/v1/recordings' })).statusCode).toBe(401);
  });

  it('no log line contains a token or its secret', async () => {
    const tok = await create(owner, { scopes: ['recordings:read'] });
    await req(tok.token, { url: '/api/v1/recordings' });
    await req(`${tok.token}x`, { url: '/api/v1/recordings' });
    await req(tok.token, { url: '/api/v1/me' });
    const secret = tok.token.slice(SECRET_AT);
    const logs = t.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(secret);
    for (const tokn of cache.values()) expect(logs).not.toContain(tokn.slice(SECRET_AT));
  });

  // Last: it moves the clock past every token's lifetime.
  it('an expired token is 401 and listed as expired', async () => {
    const tok = await create(owner, { scopes: ['recordings:read'], expiresInDays: 1 });
    expect((await req(tok.token, { url: '/api/v1/recordings' })).statusCode).toBe(200);
    clock.advance(24 * 3600 * 1000 + 1000);
    expect((await req(tok.token, { url: '/api/v1/recordings' })).statusCode).toBe(401);
    const fresh = await addUser(t.services, owner.orgId, { role: 'owner' });
    const listed = (await req(fresh.accessToken, { url: '/api/v1/tokens?all=true' })).json() as {
      id: string;
      status: string;
    }[];
    expect(listed.find((x) => x.id === tok.id)?.status).toBe('expired');
  });
});
