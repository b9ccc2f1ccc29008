import type { TenantContext } from '../domain/auth-context.js';
import type { Database, Queryable } from './database.js';

export const APP_ROLE = 'sotto_app';
export const SYSTEM_ROLE = 'sotto_system';

/**
 * Every tenant query runs here: one transaction, as the RLS-bound role, with the org and user set
 * transaction-locally. If a repository forgets a WHERE org_id = …, the database still refuses to
 * show or write another org's rows.
 */
export function withTenant<T>(
  db: Database,
  ctx: TenantContext,
  fn: (tx: Queryable) => Promise<T>,
): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query(
      `SELECT set_config('role', '${APP_ROLE}', true),
              set_config('app.org_id', $1, true),
              set_config('app.user_id', $2, true)`,
      [ctx.orgId, ctx.userId ?? ''],
    );
    // An actor's API token travels with the transaction so the audit log can name it (an Actor
    // is a TenantContext with more fields; a plain context has none).
    const apiTokenId = (ctx as { apiToken?: { id: string } | undefined }).apiToken?.id;
    return fn({
      query: (text, params) => tx.query(text, params),
      tenantOrgId: ctx.orgId,
      ...(apiTokenId ? { apiTokenId } : {}),
    });
  });
}

/**
 * Pre-tenant work that cannot know the org yet (login by email, refresh by token hash, session
 * checks, key rotation, audit verification). Runs as sotto_system, which bypasses RLS; only the
 * auth, key and audit repositories call it.
 */
export function withSystem<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT set_config('role', '${SYSTEM_ROLE}', true)`);
    return fn(tx);
  });
}
