import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonDictionary } from '@zxcvbn-ts/language-common';
import { dictionary as englishDictionary, translations } from '@zxcvbn-ts/language-en';
import { AppError } from '../../domain/errors.js';
import {
  checkPassword,
  PASSWORD_MIN_SCORE,
  passwordProblemMessages,
  type PasswordProblem,
} from '../../domain/password-policy.js';

/**
 * The one password rule set for every way an account gets a password (signup, password change,
 * invitation, support accounts): the domain rules (length, common list, not the email), then
 * zxcvbn-ts's strength estimate, score ≥ PASSWORD_MIN_SCORE. A refusal is a 422 weak_password
 * whose detail (shown by the panel under the field) says why, in zxcvbn's words.
 */

/**
 * The most common passwords (zxcvbn-ts's list, compiled from leaked-password corpora and kept
 * up to date by that project), lower-cased for a case-insensitive match. Loaded once.
 */
let commonPasswords: ReadonlySet<string> | undefined;
export function commonPasswordSet(): ReadonlySet<string> {
  commonPasswords ??= new Set(commonDictionary['passwords-common'].map((p) => p.toLowerCase()));
  return commonPasswords;
}

/**
 * Built once, on first use (~0.2 s for the dictionaries). Two caps keep one estimate within tens
 * of milliseconds on the request path whatever is sent (signup is unauthenticated): only the
 * first 64 characters are estimated — a 64-character prefix that is already strong makes the
 * rest irrelevant, and one that is weak (e.g. a repeated character) is refused anyway — and the
 * l33t matcher tries at most 10 substitutions (the default 100 costs seconds on long random
 * strings and finds nothing more on real passwords).
 */
let estimator: ZxcvbnFactory | undefined;
function zxcvbn(): ZxcvbnFactory {
  estimator ??= new ZxcvbnFactory({
    translations,
    graphs: adjacencyGraphs,
    dictionary: { ...commonDictionary, ...englishDictionary },
    maxLength: 64,
    l33tMaxSubstitutions: 10,
  });
  return estimator;
}

/** What the person is likely to build a password from: never a good password. */
export interface PasswordContext {
  email: string;
  name?: string | undefined;
  organization?: string | undefined;
}

/** The context as zxcvbn user inputs: whole values and their words (it matches each one). */
function personalWords(ctx: PasswordContext): string[] {
  const email = ctx.email.trim().toLowerCase();
  const values = [email, email.split('@')[0] ?? '', ctx.name ?? '', ctx.organization ?? ''];
  const words = values.flatMap((v) => v.split(/[^\p{L}\p{N}]+/u)).filter((w) => w.length >= 3);
  return [...new Set([...values.filter(Boolean), ...words])];
}

/** Throws 422 weak_password with `reason` (and zxcvbn's `warning`/`suggestions` when weak). */
export function assertAcceptablePassword(password: string, ctx: PasswordContext): void {
  const problem = checkPassword(password, { email: ctx.email, common: commonPasswordSet() });
  if (problem) throw refusal(problem, passwordProblemMessages[problem]);
  const result = zxcvbn().check(password, personalWords(ctx));
  if (result.score >= PASSWORD_MIN_SCORE) return;
  const { warning, suggestions } = result.feedback;
  const detail = [`${passwordProblemMessages.weak}.`, warning, ...suggestions].filter(Boolean).join(' ');
  throw refusal('weak', detail, { warning: warning ?? null, suggestions, score: result.score });
}

const refusal = (reason: PasswordProblem, detail: string, extra: Record<string, unknown> = {}) =>
  new AppError('weak_password', detail, { reason, ...extra });
