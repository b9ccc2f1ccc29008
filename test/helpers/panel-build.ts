import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The panel's browser specs serve a Vite build of web/ made for the test run, never dist/ (a
 * parallel `npm run build` must not swap files under a test). One build per run is enough: it
 * costs 4–10 s of a CI core, and each of the ~20 panel specs used to make its own.
 *
 * The global setup (main vitest process) only reserves an empty run folder and removes it at the
 * end; the first spec that needs the panel builds it there, under a lock folder, while the
 * others wait for its `.done` marker. A run without panel specs builds nothing. Outside a vitest
 * run (a bench, a script) each caller builds its own copy, as before.
 */
const RUN_DIR_ENV = 'SOTTO_TEST_PANEL_BUILD';
const ONCE = Symbol.for('sotto.test.panel-build');
const BUILD_WAIT_MS = 5 * 60_000;

export default function setup(): () => void {
  const g = globalThis as { [ONCE]?: string };
  const dir = (g[ONCE] ??= mkdtempSync(path.join(tmpdir(), 'sotto-panel-build-')));
  process.env[RUN_DIR_ENV] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}

/** A folder holding the built panel: the run's shared build, or a new one under `work`. */
export async function panelWebRoot(repoRoot: string, work: string): Promise<string> {
  const runDir = process.env[RUN_DIR_ENV];
  if (!runDir || !existsSync(runDir)) {
    const own = path.join(work, 'web');
    build(repoRoot, own);
    return own;
  }
  const webRoot = path.join(runDir, 'web');
  const done = path.join(runDir, '.done');
  const lock = path.join(runDir, '.lock');
  const deadline = Date.now() + BUILD_WAIT_MS;
  while (!existsSync(done)) {
    if (takeLock(lock)) {
      try {
        build(repoRoot, webRoot);
        writeFileSync(done, '');
      } finally {
        // On failure the next spec tries again (and fails with the build's own message).
        rmSync(lock, { recursive: true, force: true });
      }
      break;
    }
    if (Date.now() > deadline) throw new Error(`the shared panel build in ${runDir} did not finish`);
    await sleep(250);
  }
  return webRoot;
}

function takeLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch {
    return false;
  }
}

function build(repoRoot: string, outDir: string): void {
  execFileSync(
    process.execPath,
    [
      path.join(repoRoot, 'node_modules/vite/bin/vite.js'),
      'build',
      '--config',
      path.join(repoRoot, 'web/vite.config.ts'),
      '--outDir',
      outDir,
      '--emptyOutDir',
      '--logLevel',
      'warn',
    ],
    { cwd: repoRoot, stdio: 'inherit' },
  );
}
