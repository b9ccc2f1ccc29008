import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { formatKeyring, parseKeyring, type MasterKey, type MasterKeyring } from '../../crypto/keyring.js';

/**
 * The master key file: the one secret that must never enter the database. Written with mode
 * 0600 in a 0700 directory, always atomically (temporary file, fsync, rename), so a crash
 * mid-write never leaves a truncated keyring behind.
 */
export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

function fsyncDir(dir: string): void {
  // Makes the rename itself durable; a no-op error on platforms that cannot fsync directories.
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* best effort */
  }
}

function writeDurably(file: string, content: string, flag: 'wx'): void {
  const fd = openSync(file, flag, 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Creates a new key file; fails (EEXIST) rather than replace one that appeared meanwhile. */
export function createKeyFile(file: string, keys: readonly MasterKey[]): void {
  ensurePrivateDir(path.dirname(file));
  writeDurably(file, formatKeyring(keys), 'wx');
  fsyncDir(path.dirname(file));
}

export function readKeyFile(file: string): MasterKeyring {
  return parseKeyring(readFileSync(file, 'utf8'));
}

/**
 * Adds a new key version (max + 1) and keeps every old one, so data wrapped by them still opens.
 * A lock file serialises concurrent rotations: two rotations racing on the same file could
 * otherwise each wrap data keys with a "v2" that the other then overwrites, losing one forever.
 */
export function addKeyVersion(
  file: string,
  now: Date = new Date(),
): { keyring: MasterKeyring; added: MasterKey } {
  const lock = `${file}.lock`;
  try {
    writeDurably(lock, `${process.pid}\n`, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyFileError(
        `${lock} exists: another key rotation is running (remove the file if it was interrupted)`,
      );
    }
    throw err;
  }
  try {
    const current = readKeyFile(file);
    const added: MasterKey = { version: current.active.version + 1, key: randomBytes(32), createdAt: now };
    const keys = [...current.byVersion.values(), added];
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeDurably(tmp, formatKeyring(keys), 'wx');
      renameSync(tmp, file);
    } finally {
      rmSync(tmp, { force: true });
    }
    fsyncDir(path.dirname(file));
    // Read back what is on disk: nothing is re-wrapped unless the new key is really there.
    const keyring = readKeyFile(file);
    if (!keyring.byVersion.get(added.version)?.key.equals(added.key)) {
      throw new KeyFileError(`${file} does not hold the new key after writing it`);
    }
    return { keyring, added };
  } finally {
    rmSync(lock, { force: true });
  }
}

/**
 * A keyring backed by the key file, for long-running servers. It re-reads the file when asked for
 * a version it does not know (data keys another process re-wrapped under a version added after
 * this one started), and when the file changed (so new wraps move to the new active version).
 * Checks are rate limited; a version once loaded is never dropped; an unreadable file keeps the
 * keys already loaded.
 */
export function liveFileKeyring(file: string, initial: MasterKeyring, minCheckMs = 1000): MasterKeyring {
  let current = initial;
  let loadedMtime = statSafe(file);
  let lastActiveCheck = Date.now();
  let lastForcedReload = 0;
  const load = (): void => {
    const mtime = statSafe(file);
    try {
      const next = readKeyFile(file);
      const merged = new Map(current.byVersion);
      for (const [v, k] of next.byVersion) merged.set(v, k);
      const active = [...merged.values()].reduce((a, b) => (b.version > a.version ? b : a));
      current = { active, byVersion: merged };
      loadedMtime = mtime;
    } catch {
      /* keep what we have */
    }
  };
  const changed = (): boolean => statSafe(file) !== loadedMtime;
  const byVersion: ReadonlyMap<number, MasterKey> = {
    get(version: number) {
      if (!current.byVersion.has(version)) {
        // A changed file is always re-read; an unchanged one at most once per interval.
        const now = Date.now();
        if (changed()) load();
        else if (now - lastForcedReload >= minCheckMs) {
          lastForcedReload = now;
          load();
        }
      }
      return current.byVersion.get(version);
    },
    has(version: number) {
      return this.get(version) !== undefined;
    },
    get size() {
      return current.byVersion.size;
    },
    forEach(cb, thisArg) {
      current.byVersion.forEach(cb, thisArg);
    },
    entries: () => current.byVersion.entries(),
    keys: () => current.byVersion.keys(),
    values: () => current.byVersion.values(),
    [Symbol.iterator]: () => current.byVersion[Symbol.iterator](),
  };
  return {
    get active() {
      const now = Date.now();
      if (now - lastActiveCheck >= minCheckMs) {
        lastActiveCheck = now;
        if (changed()) load();
      }
      return current.active;
    },
    byVersion,
  };
}

/** When the key file last changed (the age of its newest key, when the file has no `created` comment). */
export function keyFileModifiedAt(file: string): Date | undefined {
  const mtime = statSafe(file);
  return mtime === undefined ? undefined : new Date(mtime);
}

function statSafe(file: string): number | undefined {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}
