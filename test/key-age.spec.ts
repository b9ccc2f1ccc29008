import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysStatus } from '../src/cli/commands/keys.js';
import { parseKeyring } from '../src/crypto/keyring.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { addKeyVersion } from '../src/adapters/storage/master-key-file.adapter.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Master key ages (docs/security.md, key age warnings): `sotto keys status` shows each version's
 * age; /readyz and the start-up log warn once the active key is older than SOTTO_KEY_MAX_AGE_DAYS.
 */
const DAY = 24 * 3600 * 1000;
const CREATED = new Date('2026-01-01T00:00:00.000Z');

describe(`master key age warnings (${backendLabel})`, () => {
  const clock = new ManualClock(new Date(CREATED.getTime() + 10 * DAY));
  let dir: string;
  let keyFile: string;
  let t: TestApp;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-key-age-'));
    keyFile = path.join(dir, 'master.key');
    writeFileSync(
      keyFile,
      `# v1 created ${CREATED.toISOString()}\nv1:${randomBytes(32).toString('base64')}\n`,
      { mode: 0o600 },
    );
    t = await startTestApp({
      clock,
      env: {
        SOTTO_MASTER_KEY: '',
        SOTTO_MASTER_KEY_FILE: keyFile,
        SOTTO_KEY_DIR: path.join(dir, 'keys'),
        SOTTO_KEY_MAX_AGE_DAYS: '30',
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const readyzKeyAge = async () =>
    (await t.app.inject({ method: 'GET', url: '/readyz' })).json().checks.masterKeyAge as string;

  it('keeps the creation date in the key file across rotations', () => {
    const { added } = addKeyVersion(keyFile, new Date(CREATED.getTime() + 5 * DAY));
    const ring = parseKeyring(readFileSync(keyFile, 'utf8'));
    expect(ring.byVersion.get(1)?.createdAt?.toISOString()).toBe(CREATED.toISOString());
    expect(ring.byVersion.get(added.version)?.createdAt?.toISOString()).toBe('2026-01-06T00:00:00.000Z');
    expect(readFileSync(keyFile, 'utf8')).toMatch(/^# v2 created 2026-01-06T00:00:00.000Z\nv2:/);
  });

  it('shows each key age in `sotto keys status`, and no warning while the active key is young', async () => {
    const lines: string[] = [];
    const status = await keysStatus(t.services, (l) => lines.push(l));
    const out = lines.join('\n');
    expect(out).toContain('Master key ages (warning after SOTTO_KEY_MAX_AGE_DAYS = 30 days):');
    expect(out).toContain(`v1 age: 10 days old (since ${CREATED.toISOString()}, from the key file)`);
    expect(out).not.toContain('WARNING');
    expect(status.activeKeyAge).toMatchObject({ version: 1, ageDays: 10, status: 'ok' });
    expect(await readyzKeyAge()).toBe('ok');
    const warnings: string[] = [];
    await t.services.keyAge.warnIfDue({ warn: (_o: unknown, msg?: string) => warnings.push(msg ?? '') });
    expect(warnings).toEqual([]);
  });

  it('warns in the command, /readyz and the start-up log once the active key is too old', async () => {
    clock.set(new Date(CREATED.getTime() + 45 * DAY));
    const lines: string[] = [];
    await keysStatus(t.services, (l) => lines.push(l));
    expect(lines.join('\n')).toContain(
      'WARNING: the active master key v1 is 45 days old, more than 30: rotate it with `sotto keys rotate`.',
    );
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    // A warning, not an outage: the node stays ready.
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks.masterKeyAge).toBe('rotate_due');
    expect(ready.body).not.toContain('45');
    const warnings: { obj: unknown; msg: string }[] = [];
    await t.services.keyAge.warnIfDue({
      warn: (obj: unknown, msg?: string) => warnings.push({ obj, msg: msg ?? '' }),
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/master key v1 is 45 days old, more than SOTTO_KEY_MAX_AGE_DAYS \(30\)/);
    expect(warnings[0]!.obj).toMatchObject({ activeMasterKeyVersion: 1, ageDays: 45, maxAgeDays: 30 });
  });

  it('falls back to the rotation audit entry, and says unknown when there is no record', async () => {
    // Environment keyrings carry no dates: the platform audit chain's keys.rotated entry is the record.
    const env = await startTestApp({ clock, env: { SOTTO_KEY_MAX_AGE_DAYS: '30' } });
    try {
      expect((await env.services.keyAge.activeKey()).status).toBe('unknown');
      const lines: string[] = [];
      await keysStatus(env.services, (l) => lines.push(l));
      expect(lines.join('\n')).toContain('v1 age: unknown');
      await env.services.audit.recordStandalone({
        orgId: null,
        actorId: null,
        actorKind: 'system',
        action: 'keys.rotated',
        targetType: 'master_key',
        targetId: 'v1',
        details: {},
      });
      clock.advance(31 * DAY);
      const a = await env.services.keyAge.activeKey();
      expect(a).toMatchObject({ source: 'rotation audit', ageDays: 31, status: 'rotate_due' });
    } finally {
      await env.close();
    }
  });
});
