import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/**
 * One interface over the two engines Sotto runs on: PGlite (embedded, one connection) and
 * PostgreSQL (a pool). Repositories receive a `Queryable` — the transaction they run in — and
 * never open connections themselves; `db/tenant.ts` decides the role and tenant of each
 * transaction.
 */
export type Row = Record<string, unknown>;

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

export interface Queryable {
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
  /**
   * Set on transactions opened by withTenant(): the org RLS is scoped to. Code that works outside
   * the database (the data-key cache) checks it so it cannot be led across tenants either.
   */
  readonly tenantOrgId?: string;
  /**
   * Set on transactions opened by withTenant() for an actor authenticated by a personal API
   * token: AuditService.record names the token in every entry written in the transaction.
   */
  readonly apiTokenId?: string;
}

/** A transaction handle; `exec` runs multi-statement SQL without parameters (migrations). */
export interface Transaction extends Queryable {
  exec(sql: string): Promise<void>;
}

export interface Database {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Multi-statement SQL without parameters (migrations). Runs as the login role. */
  exec(sql: string): Promise<void>;
  /** Plain statement outside any tenant (readiness probes, migration bookkeeping). */
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<QueryResult<T>>;
  /**
   * Calls `onNotify` for each NOTIFY on `channel` (after the notifying transaction commits) until
   * the returned function is called. PostgreSQL: one dedicated connection per listener that
   * reconnects by itself (and calls `onNotify` once after reconnecting: notifications sent while
   * it was away are lost). PGlite: the embedded database's own listener, in this process.
   */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** LISTEN takes an identifier, not a parameter: only plain lower-case names are accepted. */
function checkChannel(channel: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`invalid channel name "${channel}"`);
}

class PgliteDatabase implements Database {
  readonly kind = 'pglite';
  constructor(private readonly pg: PGlite) {}

  dumpDataDir(): Promise<Blob> {
    return this.pg.dumpDataDir('none');
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    // PGlite serialises transactions itself: there is one connection and this holds it.
    return this.pg.transaction(async (tx) =>
      fn({
        query: async <R>(text: string, params?: readonly unknown[]) => {
          const res = await tx.query<R>(text, params as unknown[] | undefined);
          return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
        },
        exec: async (sql: string) => {
          await tx.exec(sql);
        },
      }),
    );
  }

  async exec(sql: string): Promise<void> {
    await this.pg.exec(sql);
  }

  async query<T = Row>(text: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    const res = await this.pg.query<T>(text, params as unknown[] | undefined);
    return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
  }

  async listen(channel: string, onNotify: () => void): Promise<() => Promise<void>> {
    checkChannel(channel);
    const stop = await this.pg.listen(channel, () => onNotify());
    return async () => {
      await stop().catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    await this.pg.close();
  }
}

const LISTEN_RETRY_MS = 1000;
const LISTEN_RETRY_MAX_MS = 30_000;

class PostgresDatabase implements Database {
  readonly kind = 'postgres';
  private readonly listeners = new Set<() => Promise<void>>();
  constructor(
    private readonly pool: pg.Pool,
    private readonly clientConfig: pg.ClientConfig,
  ) {}

  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // The connection lost while checked out (PostgreSQL restarted, network cut): pg emits 'error'
    // besides failing the query, and an 'error' nobody listens to would kill the process. The
    // failed query is what reports it; the pool drops the dead client on release.
    const lost = () => undefined;
    client.on('error', lost);
    try {
      await client.query('BEGIN');
      const result = await fn({
        query: async <R>(text: string, params?: readonly unknown[]) => {
          const res = await client.query(text, params as unknown[] | undefined);
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
        },
        exec: async (sql: string) => {
          await client.query(sql);
        },
      });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.off('error', lost);
      client.release();
    }
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async query<T = Row>(text: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
    const res = await this.pool.query(text, params as unknown[] | undefined);
    return { rows: res.rows as T[], rowCount: res.rowCount ?? 0 };
  }

  async listen(channel: string, onNotify: () => void): Promise<() => Promise<void>> {
    checkChannel(channel);
    let client: pg.Client | undefined;
    let stopped = false;
    let retryMs = LISTEN_RETRY_MS;
    let timer: NodeJS.Timeout | undefined;
    const connect = async (first: boolean): Promise<void> => {
      const c = new pg.Client(this.clientConfig);
      // A lost connection must not crash the process: the listener reconnects instead.
      c.on('error', () => undefined);
      c.on('end', () => {
        if (client === c) client = undefined;
        if (!stopped) schedule();
      });
      c.on('notification', (n) => {
        if (n.channel === channel) onNotify();
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${channel}`);
      } catch (err) {
        c.removeAllListeners('end');
        await c.end().catch(() => undefined);
        if (first) throw err;
        schedule();
        return;
      }
      if (stopped) {
        await c.end().catch(() => undefined);
        return;
      }
      client = c;
      retryMs = LISTEN_RETRY_MS;
      // Whatever was notified while the connection was down is lost: look once now.
      if (!first) onNotify();
    };
    const schedule = () => {
      if (stopped || timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void connect(false);
      }, retryMs);
      timer.unref();
      retryMs = Math.min(retryMs * 2, LISTEN_RETRY_MAX_MS);
    };
    await connect(true);
    const stop = async () => {
      stopped = true;
      this.listeners.delete(stop);
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    };
    this.listeners.add(stop);
    return stop;
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners].map((stop) => stop()));
    await this.pool.end();
  }
}

export interface DatabaseOptions {
  /** postgres://… for PostgreSQL; otherwise PGlite in `dataDir` ('memory://' for tests). */
  databaseUrl?: string | undefined;
  /**
   * TLS to PostgreSQL, verify-full: the certificate must chain to `ca` (the system's CAs when
   * undefined) and name the host. Undefined: plaintext (a local server, or sslmode=disable).
   */
  tls?: { ca: string | undefined } | undefined;
  pgliteDir?: string;
  /**
   * Start the embedded database from a data directory made by `dumpEmbeddedDatabase` instead of
   * an empty one (initdb costs 1–2 s; the test harness starts every spec from a migrated copy).
   */
  pgliteLoadDataDir?: Blob;
  poolSize?: number;
}

/** The embedded database's data directory as an uncompressed tarball (see pgliteLoadDataDir). */
export async function dumpEmbeddedDatabase(db: Database): Promise<Blob> {
  if (!(db instanceof PgliteDatabase)) throw new Error('only the embedded database can be dumped');
  return db.dumpDataDir();
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.databaseUrl) {
    const clientConfig: pg.ClientConfig = {
      connectionString: opts.databaseUrl,
      // Explicit, so libpq's PGSSLMODE/PGSSLROOTCERT in the environment cannot change it behind
      // the config's back. rejectUnauthorized plus Node's default host-name check is verify-full.
      ssl: opts.tls ? { rejectUnauthorized: true, ...(opts.tls.ca ? { ca: opts.tls.ca } : {}) } : false,
      // A wedged query must not hold a pooled connection forever.
      statement_timeout: 30_000,
      idle_in_transaction_session_timeout: 60_000,
      application_name: 'sotto',
    };
    const pool = new pg.Pool({ ...clientConfig, max: opts.poolSize ?? 10 });
    // An idle client losing its connection must not crash the process; the next query reports it.
    pool.on('error', () => undefined);
    return new PostgresDatabase(pool, clientConfig);
  }
  const dir = opts.pgliteDir ?? 'memory://';
  if (!dir.startsWith('memory://')) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pglite = await PGlite.create({
    dataDir: dir,
    ...(opts.pgliteLoadDataDir ? { loadDataDir: opts.pgliteLoadDataDir } : {}),
  });
  return new PgliteDatabase(pglite);
}
