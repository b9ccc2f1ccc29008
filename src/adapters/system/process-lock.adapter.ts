import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

/**
 * A pid lock file. PGlite lets a second process open the same data directory and both then write
 * to it, which corrupts the database; every command that opens the embedded database takes this
 * lock first. A lock left by a process that no longer runs is taken over.
 */
export class LockedError extends Error {
  override name = 'LockedError';
  constructor(
    readonly file: string,
    readonly pid: number,
  ) {
    super(`${file} is held by process ${pid}`);
  }
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return false; // a stale lock whose pid was reused by us (containers)
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ProcessLock {
  release(): void;
}

export function acquireProcessLock(file: string): ProcessLock {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let held = true;
      return {
        release() {
          if (!held) return;
          held = false;
          rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let pid = NaN;
      try {
        pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
      } catch {
        /* vanished meanwhile: retry */
      }
      if (Number.isInteger(pid) && pid > 0 && isRunning(pid)) throw new LockedError(file, pid);
      rmSync(file, { force: true });
    }
  }
  throw new Error(`could not take the lock ${file}`);
}
