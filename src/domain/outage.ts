/**
 * Infrastructure failures told apart from everything else: a dependency that is down or
 * unreachable (PostgreSQL, Redis) and a full disk. They are nobody's fault and pass by themselves,
 * so they must never read as a refusal (a revoked right, a bad request) nor as a bug (500), and
 * they must not use up a job's attempts. Judged by the shape of what the driver or the operating
 * system threw (errno codes, SQLSTATEs, ioredis's errors), through `cause` chains.
 */
export type Outage = 'unavailable' | 'insufficient_storage';

/** Seconds a client should wait before trying again (the Retry-After of a 503 or 507). */
export const OUTAGE_RETRY_AFTER_SECONDS: Record<Outage, number> = {
  unavailable: 5,
  insufficient_storage: 60,
};

// ENOSPC/EDQUOT from the OS; 53100 is PostgreSQL's disk_full.
const STORAGE_CODES = new Set(['ENOSPC', 'EDQUOT', '53100']);
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
  // PostgreSQL: too many connections, shutting down (admin, crash), starting up.
  '53300',
  '57P01',
  '57P02',
  '57P03',
]);
// pg: a connection lost mid-query, a pool that cannot connect in time; ioredis: a closed or
// reconnecting connection that gave up on a command.
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/,
  /timeout exceeded when trying to connect/,
  /^Connection is closed/,
  /^Stream isn't writeable/,
  /^Reached the max retries per request limit/,
];

export function outageOf(err: unknown): Outage | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    const { code, name, message, errors } = e as {
      code?: unknown;
      name?: unknown;
      message?: unknown;
      errors?: unknown;
    };
    if (typeof code === 'string') {
      if (STORAGE_CODES.has(code)) return 'insufficient_storage';
      // SQLSTATE class 08: connection exceptions.
      if (UNAVAILABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return 'unavailable';
    }
    if (name === 'MaxRetriesPerRequestError') return 'unavailable';
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((m) => m.test(message)))
      return 'unavailable';
    // Node reports a connection refused on every address of a host as an AggregateError.
    if (Array.isArray(errors) && errors.length > 0) {
      const inner = outageOf(errors[0]);
      if (inner) return inner;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
