// Dependency scan: `npm audit` (known advisories, high and critical fail) and `npm audit
// signatures` (registry signatures and provenance of every installed package). Run by .ci/run and
// by operators (`npm run scan:deps`, `-- --omit=dev` for a production install).
//
// Both need services beyond the package registry: the advisory endpoint and sigstore's TUF
// repository. Machines that cannot reach them (this project's own CI among them) must not fail
// for lack of network, but must not pass silently either: each check that could not run says so
// in one line. A reachable service that reports a problem fails the run. `--require-network`
// makes an unreachable service fail too, for operators whose machines should reach it.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const requireNetwork = args.includes('--require-network');
const npmArgs = args.filter((a) => a !== '--require-network');

// Codes npm reports when the service is simply not there: DNS, refused or cut connections, and a
// registry (or mirror) that does not implement the endpoint.
const UNREACHABLE_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'FETCH_ERROR',
]);
const UNREACHABLE_STATUS = new Set([404, 405, 501, 502, 503, 504]);

function runNpm(npmCommand) {
  const result = spawnSync('npm', [...npmCommand, '--json', ...npmArgs], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  let json = null;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    // left null: reported below with npm's own words
  }
  return { status: result.status, json, stderr: result.stderr };
}

/** A one-line reason when npm could not reach the service at all, else null. */
function unreachable(json) {
  if (!json) return null;
  const code = json.error?.code ?? json.code;
  if (code && UNREACHABLE_CODES.has(code))
    return `${code}: ${json.error?.summary ?? json.message ?? ''}`.trim();
  if (typeof json.statusCode === 'number' && UNREACHABLE_STATUS.has(json.statusCode)) {
    return json.message ?? `HTTP ${json.statusCode}`;
  }
  return null;
}

let failed = false;
let skipped = false;

function cannot(what, reason) {
  console.log(`dependency scan: ${what} not run here, its service is unreachable (${reason.split('\n')[0]})`);
  skipped = true;
}

function fail(what, detail) {
  console.error(`dependency scan: ${what} FAILED`);
  if (detail) console.error(detail);
  failed = true;
}

// Advisories. npm exits non-zero both for findings at or above --audit-level and for errors, so the
// JSON body tells them apart.
{
  const { status, json, stderr } = runNpm(['audit', '--audit-level=high']);
  const counts = json?.metadata?.vulnerabilities;
  if (counts) {
    const summary = Object.entries(counts)
      .filter(([severity]) => severity !== 'total')
      .map(([severity, n]) => `${severity} ${n}`)
      .join(', ');
    if (counts.high + counts.critical > 0) {
      const lines = Object.values(json.vulnerabilities ?? {})
        .filter((v) => v.severity === 'high' || v.severity === 'critical')
        .map(
          (v) => `  ${v.name} (${v.severity}, ${v.range}) fix: ${v.fixAvailable ? 'available' : 'none yet'}`,
        );
      fail(`npm audit (${summary})`, lines.join('\n'));
    } else {
      console.log(`dependency scan: npm audit found no high or critical advisory (${summary})`);
    }
  } else if (unreachable(json)) {
    cannot('npm audit', unreachable(json));
  } else {
    fail(`npm audit (exit ${status})`, stderr.trim() || JSON.stringify(json));
  }
}

// Signatures and provenance attestations of what is installed.
{
  const { status, json, stderr } = runNpm(['audit', 'signatures']);
  if (json && Array.isArray(json.invalid)) {
    const bad = [...json.invalid, ...(json.missing ?? [])];
    if (bad.length > 0) {
      fail(
        'npm audit signatures',
        bad.map((p) => `  ${p.name}@${p.version}: ${p.code ?? 'missing signature'}`).join('\n'),
      );
    } else {
      console.log('dependency scan: npm audit signatures verified every installed package');
    }
  } else if (unreachable(json)) {
    cannot('npm audit signatures', unreachable(json));
  } else if (status === 0) {
    console.log('dependency scan: npm audit signatures verified every installed package');
  } else {
    fail(`npm audit signatures (exit ${status})`, stderr.trim() || JSON.stringify(json));
  }
}

if (failed || (skipped && requireNetwork)) process.exit(1);
