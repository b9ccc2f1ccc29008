// Builds native/sotto-sphinx-host (the warm PocketSphinx helper, see native/sphinx-host.c) from
// Debian's libpocketsphinx. Run by `npm install` (postinstall) and `npm run build`. A machine
// without the headers still installs and runs: Sotto then starts `pocketsphinx_continuous` once
// per chunk instead (slower, and no live partials), and says so at start-up.
//
// A plain compiler call rather than node-gyp: the helper is an ordinary executable with no
// Node.js API in it, so node-gyp's addon machinery (Node headers, a Python build step) would add
// nothing but time and another way to fail.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'native', 'sphinx-host.c');
const outDir = path.join(root, 'native', 'build');
const out = path.join(outDir, 'sotto-sphinx-host');
const HINT = 'apt-get install libpocketsphinx-dev pkg-config';

function fresh() {
  try {
    return statSync(out).mtimeMs >= statSync(source).mtimeMs;
  } catch {
    return false;
  }
}

if (process.env.SOTTO_SKIP_NATIVE === '1' || fresh()) process.exit(0);

let flags;
try {
  flags = execFileSync('pkg-config', ['--cflags', '--libs', 'pocketsphinx'], { encoding: 'utf8' })
    .trim()
    .split(/\s+/)
    .filter(Boolean);
} catch {
  console.warn(
    `sotto: the warm pocketsphinx helper was not built (no pkg-config data for libpocketsphinx; \`${HINT}\`). ` +
      'Transcription still works through pocketsphinx_continuous, more slowly and without live partials.',
  );
  process.exit(0);
}

mkdirSync(outDir, { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
try {
  execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', tmp, source, ...flags], { stdio: 'inherit' });
  renameSync(tmp, out);
} catch (err) {
  console.warn(
    `sotto: building the pocketsphinx helper failed (${err.message}); \`${HINT}\` and a C compiler are needed.`,
  );
  process.exit(0);
}
