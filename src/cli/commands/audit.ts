import type { Services } from '../../app.js';
import type { ChainReport } from '../../services/operations/audit.service.js';
import { CliError } from '../cli-error.js';
import { stdout, type Print } from '../output.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AuditVerifyOptions {
  /** One organization's chain; omitted: every chain, the platform chain included. */
  org?: string | undefined;
  json?: boolean | undefined;
}

/**
 * `sotto audit verify`: recomputes every hash and link of each chain and compares its end with
 * the recorded head. Returns the exit status: 0 when every chain is intact, 1 otherwise.
 */
export async function auditVerify(
  services: Services,
  opts: AuditVerifyOptions = {},
  print: Print = stdout,
): Promise<number> {
  if (opts.org !== undefined && !UUID.test(opts.org)) throw new CliError('--org: not an organization id');
  const reports = await services.audit.verify(opts.org?.toLowerCase());
  const broken = reports.filter((r) => !r.ok);
  if (opts.json) {
    print(JSON.stringify({ ok: broken.length === 0, chains: reports }));
  } else {
    if (reports.length === 0) print('No audit entries yet.');
    for (const r of reports) print(describe(r));
    print(
      broken.length === 0
        ? `All ${reports.length} chain(s) intact.`
        : `${broken.length} of ${reports.length} chain(s) BROKEN: the audit log was altered outside Sotto.`,
    );
  }
  return broken.length === 0 ? 0 : 1;
}

function describe(r: ChainReport): string {
  const name = r.orgId === null ? 'platform' : `org ${r.orgId}`;
  if (r.ok) return `ok      ${name}: ${r.entries} entries`;
  return `BROKEN  ${name}: ${r.entries} entries; at seq ${r.problem?.seq}: ${r.problem?.reason}`;
}
