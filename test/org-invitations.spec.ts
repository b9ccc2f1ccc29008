import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/crypto/random.js';
import { withSystem } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { fakeSmtp } from './helpers/fake-smtp.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/** Undo quoted-printable soft breaks and escapes, if the message used them. */
function bodyText(raw: string): string {
  if (!/content-transfer-encoding: quoted-printable/i.test(raw)) return raw;
  return raw
    .replace(/=\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

const tokenOf = (inviteUrl: string) => /#token=([A-Za-z0-9_-]+)$/.exec(inviteUrl)![1]!;
const STRONG = 'correct horse battery staple 42';
let nextIp = 1;
/** Each call from its own address: these tests exercise the route, not the auth rate limit. */
const freshIp = () => `198.51.100.${nextIp++ % 250}`;

describe(`invitations (${backendLabel})`, () => {
  let t: TestApp;
  let clock: ManualClock;
  let owner: TestUser;
  let admin: TestUser;
  let member: TestUser;
  let otherAdmin: TestUser;

  beforeAll(async () => {
    clock = new ManualClock(new Date('2031-03-01T09:00:00Z'));
    t = await startTestApp({ clock });
    owner = await createOrgWithUser(t.services, { orgName: 'Invite Org' });
    admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    otherAdmin = await createOrgWithUser(t.services, { role: 'admin' });
  });
  afterAll(async () => t?.close());

  const invite = (u: TestUser, payload: unknown) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/org/invitations',
      headers: bearer(u.accessToken),
      payload: payload as object,
    });
  const listInvites = (u: TestUser) =>
    t.app.inject({ url: '/api/v1/org/invitations', headers: bearer(u.accessToken) });
  const revokeInvite = (u: TestUser, id: string) =>
    t.app.inject({ method: 'DELETE', url: `/api/v1/org/invitations/${id}`, headers: bearer(u.accessToken) });
  const accept = (payload: unknown) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/accept-invitation',
      payload: payload as object,
      remoteAddress: freshIp(),
    });

  it('an admin invites: 201 with a one-time link; only the token’s hash is stored; audited', async () => {
    const res = await invite(admin, { email: 'New.Person@Example.test', role: 'member' });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toEqual({
      id: expect.any(String),
      email: 'new.person@example.test',
      role: 'member',
      status: 'pending',
      createdAt: '2031-03-01T09:00:00.000Z',
      expiresAt: '2031-03-08T09:00:00.000Z',
      inviteUrl: expect.stringMatching(/^https:\/\/sotto\.test\/invite#token=[A-Za-z0-9_-]{43}$/),
      emailSent: false,
      emailSentAt: null,
    });
    const token = tokenOf(body.inviteUrl);
    const stored = await withSystem(t.db, (tx) =>
      tx.query<{ token_hash: string }>('SELECT token_hash FROM invitations WHERE id = $1', [body.id]),
    );
    expect(stored.rows[0]!.token_hash).toBe(sha256Hex(token));
    const audit = (
      await t.app.inject({
        url: '/api/v1/audit?action=invitation.created',
        headers: bearer(owner.accessToken),
      })
    ).json();
    expect(audit.entries[0]).toMatchObject({
      targetId: body.id,
      actorId: admin.userId,
      details: { email: 'new.person@example.test', role: 'member', replaced: 0 },
    });
    // Without SMTP the link goes to the admin only: never to a log or the audit trail.
    expect(t.logs.join('')).not.toContain(token);
    expect(JSON.stringify(audit)).not.toContain(token);
  });

  it('lists invitations to admins with their status', async () => {
    const res = await listInvites(owner);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([
      expect.objectContaining({ email: 'new.person@example.test', status: 'pending', role: 'member' }),
    ]);
    expect(JSON.stringify(res.json())).not.toMatch(/token/i);
    expect((await listInvites(otherAdmin)).json()).toEqual([]);
  });

  it('members cannot invite, list or revoke (403); admins cannot invite owners (400)', async () => {
    expect((await invite(member, { email: 'x@example.test', role: 'member' })).statusCode).toBe(403);
    expect((await listInvites(member)).statusCode).toBe(403);
    const [inv] = (await listInvites(owner)).json();
    expect((await revokeInvite(member, inv.id)).statusCode).toBe(403);
    expect((await invite(admin, { email: 'boss@example.test', role: 'owner' })).statusCode).toBe(400);
  });

  it('refuses to invite someone who is already a member (409)', async () => {
    const res = await invite(admin, { email: member.email, role: 'admin' });
    expect(res.statusCode).toBe(409);
  });

  it('accepting creates the user in the inviting org with the invited role; the link then dies', async () => {
    const created = (await invite(admin, { email: 'bobby@example.test', role: 'admin' })).json();
    const token = tokenOf(created.inviteUrl);
    const name = "Robert'); DROP TABLE users; --";
    const res = await accept({ token, password: STRONG, name });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      user: { id: expect.any(String), email: 'bobby@example.test', name, role: 'admin' },
      organization: { id: owner.orgId, name: 'Invite Org', slug: expect.any(String) },
    });
    const userId = res.json().user.id;
    const members = (
      await t.app.inject({ url: '/api/v1/org/members', headers: bearer(owner.accessToken) })
    ).json();
    expect(members).toContainEqual(expect.objectContaining({ id: userId, name, role: 'admin' }));
    const hash = await withSystem(t.db, (tx) =>
      tx.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [userId]),
    );
    expect(hash.rows[0]!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);

    const again = await accept({ token, password: STRONG, name: 'Someone Else' });
    expect(again.statusCode).toBe(404);
    const listed = (await listInvites(owner)).json();
    expect(listed.find((i: { id: string }) => i.id === created.id).status).toBe('accepted');
    const audit = (
      await t.app.inject({
        url: '/api/v1/audit?action=invitation.accepted',
        headers: bearer(owner.accessToken),
      })
    ).json();
    expect(audit.entries[0]).toMatchObject({
      actorId: userId,
      targetId: created.id,
      details: { role: 'admin' },
    });
    expect(t.logs.join('')).not.toContain(STRONG);
    expect(t.logs.join('')).not.toContain(token);
  });

  it('unknown, revoked and replaced tokens all get the same 404', async () => {
    const unknown = await accept({ token: 'A'.repeat(43), password: STRONG, name: 'X' });
    expect(unknown.statusCode).toBe(404);

    const first = (await invite(admin, { email: 'twice@example.test', role: 'member' })).json();
    const second = (await invite(admin, { email: 'twice@example.test', role: 'member' })).json();
    const replaced = await accept({ token: tokenOf(first.inviteUrl), password: STRONG, name: 'X' });
    expect(replaced.statusCode).toBe(404);
    expect(replaced.json().detail).toBe(unknown.json().detail);

    expect((await revokeInvite(admin, second.id)).statusCode).toBe(204);
    expect((await revokeInvite(admin, second.id)).statusCode).toBe(409);
    const revoked = await accept({ token: tokenOf(second.inviteUrl), password: STRONG, name: 'X' });
    expect(revoked.statusCode).toBe(404);
    expect(revoked.json().detail).toBe(unknown.json().detail);
    const statuses = (await listInvites(owner))
      .json()
      .filter((i: { email: string }) => i.email === 'twice@example.test');
    expect(statuses.map((i: { status: string }) => i.status).sort()).toEqual(['revoked', 'revoked']);
  });

  it('applies the password policy (422) and leaves the invitation usable', async () => {
    const created = (await invite(admin, { email: 'weak@example.test', role: 'member' })).json();
    const token = tokenOf(created.inviteUrl);
    for (const [password, reason] of [
      ['short', 'too_short'],
      ['password1234', 'common'],
      ['my weak@example.test pass', 'contains_email'],
    ]) {
      const res = await accept({ token, password, name: 'Weak' });
      expect(res.statusCode, password).toBe(422);
      expect(res.json()).toMatchObject({ code: 'weak_password', reason });
    }
    expect((await listInvites(owner)).json().find((i: { id: string }) => i.id === created.id).status).toBe(
      'pending',
    );
  });

  it('an email that already has an account anywhere gets 409 (no second account)', async () => {
    const elsewhere = await addUser(t.services, otherAdmin.orgId, {
      role: 'member',
      email: 'taken@example.test',
    });
    const created = (await invite(admin, { email: elsewhere.email, role: 'member' })).json();
    const res = await accept({ token: tokenOf(created.inviteUrl), password: STRONG, name: 'Dup' });
    expect(res.statusCode).toBe(409);
  });

  it('rejects hostile accept bodies with 400', async () => {
    const created = (await invite(admin, { email: 'hostile@example.test', role: 'member' })).json();
    const token = tokenOf(created.inviteUrl);
    const cases: unknown[] = [
      {},
      { token },
      { token: 42, password: STRONG, name: 'A' },
      { token: `${token}' OR '1'='1`, password: STRONG, name: 'A' },
      { token: 'x'.repeat(5000), password: STRONG, name: 'A' },
      { token, password: 'p'.repeat(5000), name: 'A' },
      { token, password: STRONG, name: 'n'.repeat(201) },
      { token, password: STRONG, name: '   ' },
      { token, password: STRONG, name: 'line\r\nbreak' },
      { token, password: STRONG, name: 'A', role: 'owner' },
      { token, password: STRONG, name: 'A', orgId: otherAdmin.orgId },
      [token],
    ];
    for (const payload of cases) {
      const res = await accept(payload);
      expect(res.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
    }
    expect((await listInvites(owner)).json().find((i: { id: string }) => i.id === created.id).status).toBe(
      'pending',
    );
  });

  it('rejects hostile invitation bodies with 400', async () => {
    const cases: unknown[] = [
      { email: 'not-an-email', role: 'member' },
      { email: "x'; DROP TABLE invitations; --", role: 'member' },
      { email: `${'a'.repeat(320)}@example.test`, role: 'member' },
      { email: 'a@example.test', role: 'support' },
      { email: 'a@example.test' },
      { email: ['a@example.test'], role: 'member' },
      { email: 'a@example.test', role: 'member', orgId: otherAdmin.orgId },
    ];
    for (const payload of cases) {
      const res = await invite(admin, payload);
      expect(res.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
    }
    // Quotes are legal in the local part of an address: stored as data, nothing else happens.
    const quoted = await invite(admin, { email: "o'brien@example.test", role: 'member' });
    expect(quoted.statusCode).toBe(201);
    expect(quoted.json().email).toBe("o'brien@example.test");
  });

  it('another org’s admin gets exactly 404 for this org’s invitation ids', async () => {
    const created = (await invite(admin, { email: 'cross@example.test', role: 'member' })).json();
    const res = await revokeInvite(otherAdmin, created.id);
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('not_found');
    expect((await listInvites(otherAdmin)).json().map((i: { id: string }) => i.id)).not.toContain(created.id);
    expect((await listInvites(owner)).json().find((i: { id: string }) => i.id === created.id).status).toBe(
      'pending',
    );
    expect((await revokeInvite(admin, '00000000-0000-4000-8000-000000000000')).statusCode).toBe(404);
    expect((await revokeInvite(admin, "1' OR '1'='1")).statusCode).toBe(400);
  });

  it('an invitation expires after 7 days (same 404 as any bad token)', async () => {
    const created = (await invite(admin, { email: 'late@example.test', role: 'member' })).json();
    clock.advance(7 * 24 * 3600 * 1000 + 1000);
    const res = await accept({ token: tokenOf(created.inviteUrl), password: STRONG, name: 'Late' });
    expect(res.statusCode).toBe(404);
    const listed = await withSystem(t.db, (tx) =>
      tx.query<{ accepted_at: Date | null }>('SELECT accepted_at FROM invitations WHERE id = $1', [
        created.id,
      ]),
    );
    expect(listed.rows[0]!.accepted_at).toBeNull();
  });
});

describe(`invitation email (${backendLabel})`, () => {
  it('sends the link by SMTP when configured, and still never logs it', async () => {
    const smtp = await fakeSmtp();
    const t = await startTestApp({
      env: { SOTTO_SMTP_URL: smtp.url, SOTTO_MAIL_FROM: 'Sotto <no-reply@sotto.test>' },
    });
    try {
      const admin = await createOrgWithUser(t.services, {
        role: 'admin',
        orgName: 'Mail\r\nBcc: evil@example.test',
      });
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/org/invitations',
        headers: bearer(admin.accessToken),
        payload: { email: 'mailme@example.test', role: 'member' },
      });
      expect(res.statusCode).toBe(201);
      expect(res.json().emailSent).toBe(true);
      const token = tokenOf(res.json().inviteUrl);
      expect(smtp.messages).toHaveLength(1);
      const raw = smtp.messages[0]!;
      expect(raw).toMatch(/^To: mailme@example\.test$/m);
      expect(raw).not.toMatch(/^Bcc:/im);
      expect(bodyText(raw)).toContain(`https://sotto.test/invite#token=${token}`);
      expect(t.logs.join('')).not.toContain(token);
    } finally {
      await t.close();
      await smtp.close();
    }
  });

  it('when the mail server is down: still 201 with the link, emailSent false, nothing secret logged', async () => {
    const smtp = await fakeSmtp();
    const url = smtp.url;
    await smtp.close(); // nothing listens there now
    const t = await startTestApp({ env: { SOTTO_SMTP_URL: url } });
    try {
      const admin = await createOrgWithUser(t.services, { role: 'admin' });
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/org/invitations',
        headers: bearer(admin.accessToken),
        payload: { email: 'unlucky@example.test', role: 'member' },
      });
      expect(res.statusCode).toBe(201);
      expect(res.json().emailSent).toBe(false);
      expect(res.json().emailSentAt).toBeNull();
      const logs = t.logs.join('');
      expect(logs).toContain('invitation email could not be sent');
      expect(logs).not.toContain(tokenOf(res.json().inviteUrl));
    } finally {
      await t.close();
    }
  });

  it('the list says per invitation whether the mail server took its email, refusals included', async () => {
    const smtp = await fakeSmtp({ refuse: (rcpt) => rcpt.startsWith('nobody') });
    const t = await startTestApp({
      env: { SOTTO_SMTP_URL: smtp.url, SOTTO_MAIL_FROM: 'Sotto <no-reply@sotto.test>' },
    });
    try {
      const admin = await createOrgWithUser(t.services, { role: 'admin' });
      const other = await createOrgWithUser(t.services, { role: 'admin' });
      const send = (email: string) =>
        t.app.inject({
          method: 'POST',
          url: '/api/v1/org/invitations',
          headers: bearer(admin.accessToken),
          payload: { email, role: 'member' },
        });
      const taken = await send('taken@example.test');
      const refused = await send('nobody@example.test');
      expect([taken.statusCode, refused.statusCode]).toEqual([201, 201]);
      expect(taken.json()).toMatchObject({ emailSent: true, emailSentAt: expect.any(String) });
      // The server answered 550 for that mailbox: the link exists, no email went out.
      expect(refused.json()).toMatchObject({ emailSent: false, emailSentAt: null });
      expect(smtp.messages).toHaveLength(1);
      expect(smtp.messages[0]).toMatch(/^To: taken@example\.test$/m);

      // Stored, not remembered by the page: a later read of the list still tells them apart.
      const list = await t.app.inject({ url: '/api/v1/org/invitations', headers: bearer(admin.accessToken) });
      const rows = list.json() as { email: string; emailSentAt: string | null }[];
      const at = (email: string) => rows.find((r) => r.email === email)?.emailSentAt;
      expect(at('taken@example.test')).toBe(taken.json().emailSentAt);
      expect(Date.parse(at('taken@example.test')!)).toBeGreaterThanOrEqual(
        Date.parse(taken.json().createdAt),
      );
      expect(at('nobody@example.test')).toBeNull();
      // Another org's admin sees none of it.
      const theirs = await t.app.inject({
        url: '/api/v1/org/invitations',
        headers: bearer(other.accessToken),
      });
      expect(theirs.json()).toEqual([]);
      expect(t.logs.join('')).toContain('invitation email could not be sent');
      expect(t.logs.join('')).not.toContain(tokenOf(refused.json().inviteUrl));
    } finally {
      await t.close();
      await smtp.close();
    }
  });
});
