/**
 * Password rules (NIST SP 800-63B style): length, not a known-common password, not built from the
 * account's own email, and — checked by the caller with a strength estimator
 * (services/auth/password-strength.ts) — not easy to guess. No composition rules: they push people to
 * predictable patterns.
 *
 * Pure: the list of common passwords is handed in by the caller (services load it from a
 * maintained package), so this file imports nothing.
 */
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;

/** The email's local part shorter than this is only refused as the whole password, not inside it. */
const MIN_LOCAL_PART_TO_MATCH = 4;

export type PasswordProblem = 'too_short' | 'too_long' | 'common' | 'contains_email' | 'weak';

/** The lowest zxcvbn score accepted (0–4; 3 = "safely unguessable: moderate protection"). */
export const PASSWORD_MIN_SCORE = 3;

export const passwordProblemMessages: Record<PasswordProblem, string> = {
  too_short: `Use at least ${PASSWORD_MIN_LENGTH} characters`,
  too_long: `Use at most ${PASSWORD_MAX_LENGTH} characters`,
  common: 'This password is among the most commonly used passwords; choose another',
  contains_email: 'The password must not contain your email address',
  weak: 'This password is too easy to guess',
};

/** Length in characters as a person counts them (code points), not UTF-16 units. */
export function passwordLength(password: string): number {
  return [...password].length;
}

export function checkPassword(
  password: string,
  opts: { email: string; common: ReadonlySet<string> },
): PasswordProblem | undefined {
  const length = passwordLength(password);
  if (length < PASSWORD_MIN_LENGTH) return 'too_short';
  if (length > PASSWORD_MAX_LENGTH) return 'too_long';
  const lower = password.toLowerCase();
  if (opts.common.has(lower)) return 'common';
  const email = opts.email.trim().toLowerCase();
  const local = email.split('@')[0] ?? '';
  if (lower === email || lower === local) return 'contains_email';
  if (local.length >= MIN_LOCAL_PART_TO_MATCH && lower.includes(local)) return 'contains_email';
  return undefined;
}

/** Canonical form of an email address for storage and lookup. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}
