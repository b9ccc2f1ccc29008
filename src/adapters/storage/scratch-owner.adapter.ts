import { createHash, randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Owners of scratch files that hold plaintext audio: staged uploads, decrypted work copies, the
 * speech engine's WAVs and a remote worker's job folders (docs/audio-storage.md). Every such name
 * starts with its process's tag, `s<machine>-<pid>-<instance>_`, so that any process can tell
 * whether the owner is still alive and a sweep can remove a killed process's leftovers at once,
 * whatever their age, while never touching a file a live process still uses.
 *
 * Why names and not an in-process registry of live paths: a registry only knows its own process,
 * and the files that matter are those of a process that no longer exists. Why the instance id
 * next to the pid: in a container the server is often pid 1 on every start, so the pid alone
 * would make a restarted server think the previous one's files were its own. `machine` hashes the
 * host name with the pid namespace (Linux), because a pid means something only inside its own
 * namespace: files of another host or container sharing the folder are "unknown" and fall back to
 * the age rule. A reused pid reads as alive: the file waits for the age rule, never the reverse.
 */
function machineId(): string {
  let pidNamespace = '';
  try {
    pidNamespace = readlinkSync('/proc/self/ns/pid');
  } catch {
    // Not Linux: the host name alone.
  }
  return createHash('sha256').update(`${os.hostname()}\0${pidNamespace}`).digest('hex').slice(0, 10);
}

const MACHINE = machineId();
const INSTANCE = randomBytes(6).toString('hex');
const TAG = /^s([0-9a-f]{10})-(\d{1,10})-([0-9a-f]{12})_/;

/** This process's prefix for every scratch name it creates. */
export const OWNER_TAG = `s${MACHINE}-${process.pid}-${INSTANCE}_`;

/** self: this process; alive / gone: another process here; unknown: untagged or another machine. */
export type OwnerState = 'self' | 'alive' | 'gone' | 'unknown';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function ownerOf(name: string): OwnerState {
  const m = TAG.exec(name);
  if (!m || m[1] !== MACHINE) return 'unknown';
  const pid = Number(m[2]);
  if (pid === process.pid) return m[3] === INSTANCE ? 'self' : 'gone';
  return pidAlive(pid) ? 'alive' : 'gone';
}

export interface ScratchSweep {
  /** Entries whose owner cannot be told (untagged, another machine) go once this old. */
  olderThanMs: number;
  now: number;
  /** Paths never removed (files a queued job still names). */
  keep?: Set<string>;
  /** false: only a gone owner's entries (the age rule needs `keep`, unknown during an outage). */
  byAge?: boolean;
}

/**
 * Removes the entries (files, or folders with their content) of `dir` whose owner is gone, and
 * the unowned ones older than `olderThanMs`. Symbolic links are removed, never followed. Returns
 * how many entries went.
 */
export async function sweepScratch(dir: string, rule: ScratchSweep): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const file = path.join(dir, name);
    if (rule.keep?.has(file)) continue;
    const owner = ownerOf(name);
    if (owner === 'self' || owner === 'alive') continue;
    if (owner === 'unknown') {
      if (rule.byAge === false) continue;
      const info = await lstat(file).catch(() => undefined);
      if (!info || rule.now - info.mtimeMs < rule.olderThanMs) continue;
    }
    await rm(file, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
