/**
 * Brute-force protection for credential checks (login, MFA codes, password change), built on
 * rate-limiter-flexible by the rate-limit work. Contract used by the auth service:
 *
 *   await guard.check(ip, accountKey)     before verifying; throws AppError('rate_limited', …,
 *                                         { retryAfterSeconds }) when this IP or this
 *                                         IP+account pair is blocked
 *   await guard.failed(ip, accountKey)    after a failed verification (progressive IP penalty,
 *                                         per-IP+account counter, slow global per-account counter)
 *   await guard.succeeded(ip, accountKey) after a success (clears the IP+account counter)
 *
 * accountKey is the normalised email (or user id). Per-account limits are keyed by IP+account so
 * an attacker elsewhere cannot lock the real user out.
 */
export interface LoginGuard {
  check(ip: string, accountKey: string): Promise<void>;
  failed(ip: string, accountKey: string): Promise<void>;
  succeeded(ip: string, accountKey: string): Promise<void>;
}

/** Allows everything; only for wiring before the real guard exists and for unit tests. */
export const openLoginGuard: LoginGuard = {
  check: async () => undefined,
  failed: async () => undefined,
  succeeded: async () => undefined,
};
