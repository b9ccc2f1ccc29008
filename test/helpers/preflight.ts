import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkDecoder } from '../../src/adapters/media/ffmpeg.adapter.js';
import { sphinxAvailability, sphinxHelper } from '../../src/adapters/asr/sphinx.engine.js';

/**
 * Vitest global setup (once per run, before any worker starts). It unpacks the test corpus once,
 * so the workers find it ready, and asks for every tool that some spec skips without: the same
 * checks the specs' `skipIf`s make. On a developer's machine a missing tool is a warning naming
 * what will skip; under CI (`CI` set) it fails the run before the first test, because a green run
 * that silently skipped a suite proves nothing. test/test-layout.spec.ts keeps the list honest:
 * a spec gated on a condition it does not know fails it.
 *
 * Not covered on purpose: the backend conditions (usingPostgres/usingRedis — those tests run in
 * the PostgreSQL + Redis run, see vitest.config.ts) and asr-whisper's CUDA spec, which skips where
 * a CUDA runtime *is* present (never on CI).
 */
export const PREFLIGHT_GATES = [
  'corpus',
  'chromium',
  'pocketsphinx',
  'sphinx-helper',
  'ffmpeg',
  'libreoffice',
  'redis-server',
  'tmpfs',
  '/dev/full',
  'script',
] as const;

type Gate = (typeof PREFLIGHT_GATES)[number];

function canMountTmpfs(): boolean {
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-preflight-'));
  try {
    const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', dir]).status === 0;
    if (ok) spawnSync('umount', [dir]);
    return ok;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const runs = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

/** What each gate lacks on this machine ('' when present). */
export async function missingTools(): Promise<Record<Gate, string>> {
  // Imported here, not above: importing corpus.ts unpacks the corpus (and throws under CI when it cannot).
  const { noCorpusReason } = await import('./corpus.js');
  const { hasChromium, noChromiumReason } = await import('./panel.js');
  const sphinx = sphinxAvailability(process.env.PATH ?? '');
  const decoder = await checkDecoder();
  return {
    corpus: noCorpusReason,
    chromium: hasChromium ? '' : noChromiumReason,
    pocketsphinx: sphinx.available ? '' : (sphinx.reason ?? 'pocketsphinx is unavailable'),
    'sphinx-helper': sphinxHelper()
      ? ''
      : 'the warm pocketsphinx helper is not built (apt-get install libpocketsphinx-dev pkg-config; npm install)',
    ffmpeg: decoder.available ? '' : decoder.message,
    libreoffice:
      runs('libreoffice', '--version') || runs('soffice', '--version')
        ? ''
        : 'LibreOffice is not installed (apt-get install libreoffice-writer-nogui)',
    'redis-server': runs('redis-server', '--version')
      ? ''
      : 'redis-server is not installed (apt-get install redis-server)',
    tmpfs: canMountTmpfs() ? '' : 'cannot mount a tmpfs (the disk-full drills need root)',
    '/dev/full': existsSync('/dev/full') ? '' : '/dev/full does not exist',
    script: runs('script', '--version') ? '' : 'script(1) is not installed (apt-get install bsdutils)',
  };
}

// The root config and each vitest project run the global setup, each loading this module anew:
// remember the check on the process (the main vitest process runs them all) so it runs once.
const ONCE = Symbol.for('sotto.test.preflight');

export default function setup(): Promise<void> {
  const g = globalThis as { [ONCE]?: Promise<void> };
  g[ONCE] ??= check();
  return g[ONCE];
}

async function check(): Promise<void> {
  const missing = Object.entries(await missingTools()).filter(([, why]) => why);
  if (missing.length === 0) return;
  const lines = missing.map(([gate, why]) => `  ${gate}: ${why}`).join('\n');
  if (process.env.CI) {
    throw new Error(`CI must run every test, but this machine lacks what some specs need:\n${lines}`);
  }
  console.warn(`Some specs will skip on this machine:\n${lines}`);
}
