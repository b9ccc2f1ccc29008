import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatKeyring } from '../../crypto/keyring.js';
import {
  KeyFileError,
  addKeyVersion,
  createKeyFile,
  liveFileKeyring,
  readKeyFile,
} from './master-key-file.adapter.js';
import { LockedError, acquireProcessLock } from '../system/process-lock.adapter.js';

const root = mkdtempSync(path.join(tmpdir(), 'sotto-keyfile-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => path.join(root, `case-${++n}`, 'keys', 'master.key');

describe('master key file', () => {
  it('is created 0600 in a 0700 directory and never overwritten', () => {
    const file = fresh();
    createKeyFile(file, [{ version: 1, key: randomBytes(32) }]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(() => createKeyFile(file, [{ version: 1, key: randomBytes(32) }])).toThrow(/EEXIST/);
  });

  it('gains a version on rotation, keeping the old ones, atomically', () => {
    const file = fresh();
    const v1 = { version: 1, key: randomBytes(32) };
    createKeyFile(file, [v1]);
    const first = addKeyVersion(file);
    const second = addKeyVersion(file);
    expect(first.added.version).toBe(2);
    expect(second.added.version).toBe(3);
    const ring = readKeyFile(file);
    expect([...ring.byVersion.keys()].sort()).toEqual([1, 2, 3]);
    expect(ring.byVersion.get(1)!.key.equals(v1.key)).toBe(true);
    expect(ring.byVersion.get(2)!.key.equals(first.added.key)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.dirname(file))).toEqual(['master.key']);
  });

  it('refuses a rotation while another holds the lock, and leaves the file alone', () => {
    const file = fresh();
    createKeyFile(file, [{ version: 1, key: randomBytes(32) }]);
    writeFileSync(`${file}.lock`, '12345\n');
    expect(() => addKeyVersion(file)).toThrow(KeyFileError);
    expect(readKeyFile(file).active.version).toBe(1);
  });

  it('refuses to rotate a malformed file (nothing is re-wrapped under a key that was not written)', () => {
    const file = fresh();
    createKeyFile(file, [{ version: 1, key: randomBytes(32) }]);
    writeFileSync(file, 'garbage');
    expect(() => addKeyVersion(file)).toThrow(/32 bytes/);
    expect(readdirSync(path.dirname(file))).toEqual(['master.key']);
  });
});

describe('live file keyring', () => {
  it('finds a version added by another process, and moves its active version when the file changes', () => {
    const file = fresh();
    createKeyFile(file, [{ version: 1, key: randomBytes(32) }]);
    const live = liveFileKeyring(file, readKeyFile(file), 0);
    expect(live.active.version).toBe(1);
    const { added } = addKeyVersion(file);
    expect(live.byVersion.get(2)?.key.equals(added.key)).toBe(true);
    expect(live.active.version).toBe(2);
  });

  it('never forgets a loaded version, even if the file loses it or breaks', () => {
    const file = fresh();
    const v1 = { version: 1, key: randomBytes(32) };
    createKeyFile(file, [v1]);
    const live = liveFileKeyring(file, readKeyFile(file), 0);
    writeFileSync(file, formatKeyring([{ version: 2, key: randomBytes(32) }]));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(live.byVersion.get(2)).toBeDefined();
    expect(live.byVersion.get(1)?.key.equals(v1.key)).toBe(true);
    writeFileSync(file, 'broken');
    utimesSync(file, new Date(), new Date(Date.now() + 10_000));
    expect(live.byVersion.get(3)).toBeUndefined();
    expect(live.active.version).toBe(2);
  });
});

describe('process lock', () => {
  it('admits one holder, turns a second away, and takes over a stale lock', () => {
    const file = path.join(root, 'db.lock');
    const lock = acquireProcessLock(file);
    writeFileSync(file, `${process.ppid}\n`); // pretend a live other process (our parent) holds it
    expect(() => acquireProcessLock(file)).toThrow(LockedError);
    writeFileSync(file, '999999999\n'); // a pid that does not run
    const taken = acquireProcessLock(file);
    taken.release();
    lock.release();
    expect(readdirSync(root)).not.toContain('db.lock');
  });
});
