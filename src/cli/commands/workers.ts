import type { Services } from '../../app.js';
import { AppError } from '../../domain/errors.js';
import { CliError } from '../cli-error.js';
import { stdout, type Print } from '../output.js';

/**
 * `sotto workers add|list|revoke`: the operator's worker tokens. A token without --org is a
 * platform worker serving every org; with --org it claims only that org's jobs. The token is
 * printed once and stored only as a hash. Org admins manage their own org's tokens through
 * /api/v1/org/workers.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function userErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AppError && err.status < 500) throw new CliError(err.message);
    throw err;
  }
}

export async function addWorker(
  services: Services,
  opts: { name: string; org?: string | undefined },
  print: Print = stdout,
): Promise<{ id: string; token: string }> {
  const { token, secret } = await userErrors(() =>
    services.workerTokens.createByOperator({ name: opts.name, orgSlug: opts.org }),
  );
  print(`Created worker token ${token.id} (${opts.org ? `org ${opts.org}` : 'platform: every org'}).`);
  print(`Token (shown once; give it to the worker as SOTTO_WORKER_TOKEN): ${secret}`);
  return { id: token.id, token: secret };
}

export async function listWorkers(services: Services, print: Print = stdout): Promise<void> {
  const tokens = await services.workerTokens.listAll();
  if (tokens.length === 0) {
    print('No worker tokens.');
    return;
  }
  for (const t of tokens) {
    print(
      [
        t.id,
        t.revokedAt ? 'revoked' : 'active ',
        t.orgId ? `org:${t.orgId}` : 'platform',
        `last used ${t.lastUsedAt ? t.lastUsedAt.toISOString() : 'never'}`,
        JSON.stringify(t.name),
      ].join('  '),
    );
  }
}

export async function revokeWorker(services: Services, id: string, print: Print = stdout): Promise<void> {
  if (!UUID.test(id)) throw new CliError('ID must be a worker token id (see `sotto workers list`)');
  const revoked = await userErrors(() => services.workerTokens.revokeByOperator(id.toLowerCase()));
  print(
    revoked
      ? `Revoked worker token ${id}; its jobs were handed back.`
      : `Worker token ${id} was already revoked.`,
  );
}
