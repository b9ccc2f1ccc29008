import { withSystem } from '../../src/db/tenant.js';
import { randomUUID } from 'node:crypto';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { authenticator } from 'otplib';
import { mailText, type FakeSmtp } from './fake-smtp.js';
import type { TestApp } from './test-app.js';

/**
 * Drives the real auth routes (signup, login, refresh) as a client would. Each client gets its own
 * address from the documentation range (RFC 3849), so per-network rate limits and the login guard
 * see distinct networks and one test's failures never throttle another's.
 */
let nextNet = 1;
export function freshIp(): string {
  return `2001:db8:${(nextNet++).toString(16)}::1`;
}

export const STRONG_PASSWORD = 'correct horse battery staple 42';

export interface Account {
  email: string;
  password: string;
  userId: string;
  orgId: string;
  ip: string;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  tokenType: string;
}

export function call(t: TestApp, ip: string, opts: InjectOptions): Promise<LightMyRequestResponse> {
  return t.app.inject({ remoteAddress: ip, ...opts } as InjectOptions) as Promise<LightMyRequestResponse>;
}

/**
 * Signs up as a person would: the signup request (202 for any address), then the link from the
 * mailbox — the fake SMTP server's when the app has one, else the development log line that
 * stands in for mail without SMTP — sent back to the verify route. Only then does the account
 * exist.
 */
export async function signup(
  t: TestApp,
  opts: { email?: string; password?: string; organization?: string; ip?: string; smtp?: FakeSmtp } = {},
): Promise<Account> {
  const ip = opts.ip ?? freshIp();
  const email = opts.email ?? `user-${randomUUID().slice(0, 8)}@example.test`;
  const password = opts.password ?? STRONG_PASSWORD;
  const res = await call(t, ip, {
    method: 'POST',
    url: '/api/v1/auth/signup',
    payload: { email, password, name: 'Test User', organization: opts.organization ?? `Org ${email}` },
  });
  if (res.statusCode !== 202) throw new Error(`signup failed: ${res.statusCode} ${res.body}`);
  const token = await verificationToken(t, email, opts.smtp);
  const verified = await verifySignup(t, ip, token);
  if (verified.statusCode !== 201) throw new Error(`verify failed: ${verified.statusCode} ${verified.body}`);
  const body = verified.json();
  return { email, password, userId: body.user.id, orgId: body.organization.id, ip };
}

export function verifySignup(t: TestApp, ip: string, token: string): Promise<LightMyRequestResponse> {
  return call(t, ip, { method: 'POST', url: '/api/v1/auth/signup/verify', payload: { token } });
}

const TOKEN_IN_LINK = /\/verify-email#token=([A-Za-z0-9_-]+)/;

/** The verification links sent to `email` so far, oldest first (log lines, or `smtp`'s mail). */
export function verificationLinks(t: TestApp, email: string, smtp?: FakeSmtp): string[] {
  const to = email.trim().toLowerCase();
  if (smtp)
    return smtp.messages
      .filter((m) => m.toLowerCase().includes(`to: ${to}`))
      .map((m) => /https:\/\/\S+\/verify-email#token=[A-Za-z0-9_-]+/.exec(mailText(m))?.[0])
      .filter((l): l is string => Boolean(l));
  const links: string[] = [];
  for (const line of t.logs) {
    if (!line.includes('"verifyUrl"')) continue;
    const entry = JSON.parse(line) as { to?: string; verifyUrl?: string };
    if (entry.to === to && entry.verifyUrl) links.push(entry.verifyUrl);
  }
  return links;
}

/** The token of the newest verification link for `email` (waits a little for the mail). */
export async function verificationToken(t: TestApp, email: string, smtp?: FakeSmtp): Promise<string> {
  const until = Date.now() + 5000;
  for (;;) {
    const link = verificationLinks(t, email, smtp).at(-1);
    if (link) return TOKEN_IN_LINK.exec(link)![1]!;
    if (Date.now() > until) throw new Error(`no verification link for ${email}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function loginRaw(
  t: TestApp,
  ip: string,
  payload: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return call(t, ip, {
    method: 'POST',
    url: '/api/v1/auth/login',
    payload,
    headers: { 'user-agent': 'vitest-agent/1.0', ...headers },
  });
}

export async function login(
  t: TestApp,
  a: Pick<Account, 'email' | 'password' | 'ip'>,
  code?: string,
): Promise<Tokens> {
  const res = await loginRaw(t, a.ip, { email: a.email, password: a.password, ...(code ? { code } : {}) });
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

export function refreshRaw(t: TestApp, ip: string, refreshToken: string): Promise<LightMyRequestResponse> {
  return call(t, ip, { method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });
}

export function authed(
  t: TestApp,
  ip: string,
  accessToken: string,
  opts: InjectOptions,
): Promise<LightMyRequestResponse> {
  return call(t, ip, { ...opts, headers: { ...opts.headers, authorization: `Bearer ${accessToken}` } });
}

/** The TOTP code a phone would show for `secret` at `epochMs`. */
export function totp(secret: string, epochMs: number): string {
  return authenticator.clone({ epoch: epochMs }).generate(secret);
}

/** Audit rows of one action, oldest first (read in the system context, across orgs). */
export function auditRows(t: TestApp, action: string) {
  return withSystem(t.db, async (tx) => {
    const { rows } = await tx.query<{ org_id: string | null; actor_id: string | null; details: object }>(
      'SELECT org_id, actor_id, details FROM audit_log WHERE action = $1 ORDER BY at, seq',
      [action],
    );
    return rows;
  });
}

/** A problem document without the parts that differ per request. */
export function stableProblem(body: string): Record<string, unknown> {
  const { requestId: _r, instance: _i, ...rest } = JSON.parse(body) as Record<string, unknown>;
  return rest;
}
