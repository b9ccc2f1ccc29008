import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import {
  auditRows,
  call,
  freshIp,
  loginRaw,
  signup,
  stableProblem,
  STRONG_PASSWORD,
  verificationLinks,
  verificationToken,
  verifySignup,
  type Account,
} from './helpers/auth-client.js';
import { fakeSmtp, mailText, type FakeSmtp } from './helpers/fake-smtp.js';
import { addUser, eventually } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Signup tells nobody whether an address has an account (issue 15, item 7): the same answer and
 * about the same time for new and existing addresses, in any spelling; a mail decides the rest.
 * A new account exists — and can log in — only once the emailed link comes back.
 */
const signupRaw = (t: TestApp, email: string, ip = freshIp()) =>
  call(t, ip, {
    method: 'POST',
    url: '/api/v1/auth/signup',
    payload: { email, password: STRONG_PASSWORD, name: 'Probe', organization: 'Probe Org' },
  });

/** What an observer of one answer sees: status, content type, body without per-request ids. */
const observed = (r: LightMyRequestResponse) => ({
  status: r.statusCode,
  type: r.headers['content-type'],
  body: stableProblem(r.body),
  cookies: r.cookies.length,
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const orgCount = async (t: TestApp) =>
  (await withSystem(t.db, (tx) => tx.query<{ n: number }>('SELECT count(*)::int AS n FROM orgs'))).rows[0]!.n;

describe(`signup does not reveal accounts; new accounts act only once verified (${backendLabel})`, () => {
  let t: TestApp;
  let clock: ManualClock;
  let bob: Account;

  beforeAll(async () => {
    clock = new ManualClock(new Date('2031-06-01T09:00:00Z'));
    t = await startTestApp({ clock });
    bob = await signup(t, { email: 'bob@enum.example' });
  }, 60_000);
  afterAll(async () => t?.close());

  it('answers an existing address — in any case, with spaces — exactly like a new one', async () => {
    const fresh = observed(await signupRaw(t, 'nobody-yet@enum.example'));
    expect(fresh).toEqual({
      status: 202,
      type: 'application/json; charset=utf-8',
      body: { status: 'check_email' },
      cookies: 0,
    });
    for (const variant of ['bob@enum.example', 'BOB@enum.example', ' bob@enum.example', 'Bob@ENUM.example  '])
      expect(observed(await signupRaw(t, variant)), variant).toEqual(fresh);
    // The owner of the address learns of it (ids only), and no second org appeared.
    const tried = (await auditRows(t, 'auth.signup_existing_email')).filter((r) => r.org_id === bob.orgId);
    expect(tried.length).toBe(4);
    expect(JSON.stringify(tried)).not.toContain('enum.example');
    // The mailbox (the development log here) says the rest: a note to bob, a link to the new one.
    expect(verificationLinks(t, bob.email)).toHaveLength(1); // bob's own signup, nothing since
    const notes = t.logs.filter((l) => l.includes('"accountExists":true') && l.includes('bob@enum.example'));
    expect(notes).toHaveLength(4);
    expect(verificationLinks(t, 'nobody-yet@enum.example')).toHaveLength(1);
  });

  it('takes about the same time for new and existing addresses', async () => {
    const time = async (email: string) => {
      const started = performance.now();
      const r = await signupRaw(t, email);
      expect(r.statusCode).toBe(202);
      return performance.now() - started;
    };
    await time('warm-up@enum.example');
    const fresh: number[] = [];
    const known: number[] = [];
    for (let i = 0; i < 7; i++) {
      fresh.push(await time(`timing-${i}@enum.example`));
      known.push(await time(i % 2 ? 'BOB@enum.example' : 'bob@enum.example'));
    }
    // Both estimate and hash the password (the bulk of the time) and mail after answering: a
    // shortcut for known addresses (no hash) would make them several times faster.
    const [f, k] = [median(fresh), median(known)];
    const similar = Math.min(f, k) / Math.max(f, k) >= 0.5 || Math.abs(f - k) < 10;
    expect(similar, `new ${f.toFixed(1)} ms, existing ${k.toFixed(1)} ms`).toBe(true);
  });

  it('creates nothing and lets nobody log in until the link comes back; the link works once', async () => {
    const email = 'carol@verify.example';
    const ip = freshIp();
    const before = await orgCount(t);
    expect((await signupRaw(t, email, ip)).statusCode).toBe(202);
    expect(await orgCount(t)).toBe(before);
    // Before verification the password opens nothing, and says nothing either.
    const early = await loginRaw(t, ip, { email, password: STRONG_PASSWORD });
    const unknown = await loginRaw(t, freshIp(), {
      email: 'nobody@verify.example',
      password: STRONG_PASSWORD,
    });
    expect(early.statusCode).toBe(401);
    expect(stableProblem(early.body)).toEqual(stableProblem(unknown.body));
    // The stored request holds only the token's hash.
    const token = await verificationToken(t, email);
    const stored = await withSystem(t.db, (tx) => tx.query('SELECT * FROM signup_verifications'));
    expect(JSON.stringify(stored.rows)).not.toContain(token);
    expect(JSON.stringify(stored.rows)).not.toContain(STRONG_PASSWORD);

    const verified = await verifySignup(t, ip, token);
    expect(verified.statusCode, verified.body).toBe(201);
    expect(verified.json().user).toMatchObject({ email, role: 'owner' });
    expect(await orgCount(t)).toBe(before + 1);
    expect((await loginRaw(t, ip, { email, password: STRONG_PASSWORD })).statusCode).toBe(200);

    const again = await verifySignup(t, ip, token);
    expect(again.statusCode).toBe(404);
    expect(again.json().code).toBe('not_found');
    for (const bad of ['A'.repeat(43), 'x'])
      expect([400, 404]).toContain((await verifySignup(t, ip, bad)).statusCode);
  });

  it('expires links after 24 hours, and a verified address kills its other links', async () => {
    const email = 'dave@verify.example';
    await signupRaw(t, email);
    await signupRaw(t, email);
    const [first, second] = verificationLinks(t, email).map((l) => /#token=(.+)$/.exec(l)![1]!);
    expect(first && second && first !== second).toBe(true);
    expect((await verifySignup(t, freshIp(), second!)).statusCode).toBe(201);
    expect((await verifySignup(t, freshIp(), first!)).statusCode).toBe(404);

    const late = 'erin@verify.example';
    await signupRaw(t, late);
    const token = await verificationToken(t, late);
    clock.advance(24 * 3600 * 1000 + 1000);
    expect((await verifySignup(t, freshIp(), token)).statusCode).toBe(404);
    expect((await loginRaw(t, freshIp(), { email: late, password: STRONG_PASSWORD })).statusCode).toBe(401);
    // The maintenance task removes what expired.
    await t.services.signup.tasks()[0]!.run();
    const left = await withSystem(t.db, (tx) =>
      tx.query('SELECT 1 FROM signup_verifications WHERE email = $1', [late]),
    );
    expect(left.rows).toHaveLength(0);
  });

  it('answers 409 to the mailbox owner when the address got an account meanwhile, and spends the link', async () => {
    const email = 'frank@verify.example';
    await signupRaw(t, email);
    const token = await verificationToken(t, email);
    // An invitation (here: a fixture member) took the address before the link came back.
    await addUser(t.services, bob.orgId, { role: 'member', email });
    const res = await verifySignup(t, freshIp(), token);
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('conflict');
    expect((await verifySignup(t, freshIp(), token)).statusCode).toBe(404);
  });

  it('mails one address at most 5 times an hour, answering the same all along', async () => {
    const email = 'flood@verify.example';
    for (let i = 0; i < 7; i++) expect((await signupRaw(t, email)).statusCode).toBe(202);
    expect(verificationLinks(t, email)).toHaveLength(5);
  });
});

describe(`signup mail (${backendLabel})`, () => {
  let smtp: FakeSmtp;
  let t: TestApp;
  beforeAll(async () => {
    smtp = await fakeSmtp();
    t = await startTestApp({ env: { SOTTO_SMTP_URL: smtp.url } });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
  });

  it('mails a link to a new address and a "you already have an account" note to a known one; logs neither', async () => {
    const ann = await signup(t, { email: 'ann@mail.example', smtp });
    const linkMail = mailText(smtp.messages.find((m) => m.includes('To: ann@mail.example'))!);
    expect(linkMail).toMatch(/^Subject: Confirm your email address for Sotto$/m);
    expect(linkMail).toContain('https://sotto.test/verify-email#token=');

    expect((await signupRaw(t, ' ANN@mail.example')).statusCode).toBe(202);
    const note = mailText(
      await eventually(async () =>
        smtp.messages.find((m) => m.includes('To: ann@mail.example') && m.includes('already have')),
      ),
    );
    expect(note).toMatch(/^Subject: You already have a Sotto account$/m);
    expect(note).toContain('https://sotto.test/login');
    expect(note).not.toContain('verify-email');
    const logs = t.logs.join('');
    expect(logs).not.toContain('verify-email');
    expect(logs).not.toContain(ann.email);
  });
});

describe(`signup in production without SMTP (${backendLabel})`, () => {
  it('logs no link (the mailbox alone may hold it) and warns that mail is not configured', async () => {
    const t = await startTestApp({ env: { SOTTO_ENV: 'production' } });
    try {
      expect((await signupRaw(t, 'prod@mail.example')).statusCode).toBe(202);
      const logs = t.logs.join('');
      expect(logs).not.toContain('verify-email');
      expect(logs).toContain('signup email not sent: SMTP is not configured');
    } finally {
      await t.close();
    }
  });
});
