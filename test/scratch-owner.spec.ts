import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withTempWav } from '../src/adapters/asr/engine.js';
import { OWNER_TAG, ownerOf, sweepScratch } from '../src/adapters/storage/scratch-owner.adapter.js';

/**
 * Owner tags of plaintext scratch files (issue 17, item 4): a process that has exited, or an
 * earlier process with this very pid (a container's pid 1 after a restart), is "gone"; this
 * process and live ones are never swept; untagged names go by age only.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'sotto-scratch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The pid of a real process that has already exited. */
function exitedPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}
const withPid = (pid: number, instance = 'abcdefabcdef') =>
  OWNER_TAG.replace(/-\d+-[0-9a-f]{12}_$/, `-${pid}-${instance}_`);

describe('scratch file owners', () => {
  it('tells self, a live process, an exited one, an earlier incarnation and unknown apart', () => {
    expect(ownerOf(`${OWNER_TAG}x.upload`)).toBe('self');
    expect(ownerOf(`${withPid(process.ppid)}x.upload`)).toBe('alive');
    expect(ownerOf(`${withPid(exitedPid())}x.upload`)).toBe('gone');
    expect(ownerOf(`${withPid(process.pid)}x.upload`)).toBe('gone');
    expect(ownerOf('0b1f2c.upload')).toBe('unknown');
    // Another machine (or pid namespace): its pids mean nothing here.
    expect(ownerOf(`${OWNER_TAG.replace(/^s[0-9a-f]{10}/, 's0000000000')}x.upload`)).toBe('unknown');
  });

  it('sweeps a gone owner at once, unknown ones by age, never self or the living', async () => {
    const gone = path.join(dir, `${withPid(exitedPid())}asr-1`);
    mkdirSync(gone);
    writeFileSync(path.join(gone, 'audio.wav'), 'speech');
    const names = [`${OWNER_TAG}a.audio`, `${withPid(process.ppid)}b.audio`, 'legacy.audio'];
    for (const n of names) writeFileSync(path.join(dir, n), 'speech');
    const now = Date.now();
    expect(await sweepScratch(dir, { olderThanMs: 3600_000, now })).toBe(1);
    expect(existsSync(gone)).toBe(false);
    expect(await sweepScratch(dir, { olderThanMs: 0, now: now + 10, byAge: false })).toBe(0);
    expect(await sweepScratch(dir, { olderThanMs: 0, now: now + 10 })).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(names.slice(0, 2).sort());
  });

  it("the engine's WAV lives in the given folder under this process's tag, and is gone after", async () => {
    const asr = path.join(dir, 'asr');
    const seen = await withTempWav(new Int16Array(1600), asr, async (wav) => {
      expect(existsSync(wav)).toBe(true);
      return path.relative(asr, wav);
    });
    expect(seen.startsWith(OWNER_TAG)).toBe(true);
    expect(readdirSync(asr)).toEqual([]);
  });
});
