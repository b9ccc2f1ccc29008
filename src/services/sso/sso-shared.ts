import type { SsoConnectionRow, SsoEntry } from '../../repositories/sso/sso-connection.repository.js';
import type { ClientMeta } from '../auth/session.service.js';

/** Why a sign-in was refused: the code the panel shows (`/login?sso_error=…`), never details. */
export type SsoErrorCode =
  | 'not_configured'
  | 'state_invalid'
  | 'idp_error'
  | 'token_rejected'
  | 'email_unverified'
  | 'domain_not_allowed'
  | 'account_not_allowed'
  | 'failed';

export class SsoLoginError extends Error {
  constructor(readonly code: SsoErrorCode) {
    super(`SSO sign-in refused: ${code}`);
    this.name = 'SsoLoginError';
  }
}

export interface SsoOptions {
  publicUrl: string;
  allowInsecureIssuers: boolean;
  stateTtlSeconds: number;
}

/** What the protocol parts (sso-oidc.ts, sso-saml.ts) borrow from SsoService. */
export interface SsoShared {
  /** Records a refused sign-in (reason code only) and returns the error to throw. */
  refused(entry: SsoEntry | undefined, code: SsoErrorCode, meta: ClientMeta): Promise<SsoLoginError>;
  /** The shared finish once the protocol has proven who this is: domains, JIT, session. */
  completeLogin(conn: SsoConnectionRow, id: SsoIdentity, meta: ClientMeta): Promise<SsoOutcome>;
}

/** Who the IdP says this is, once the protocol has verified it. */
export interface SsoIdentity {
  /** OIDC: the ID token's iss. SAML: the assertion's Issuer. */
  issuer: string;
  /** OIDC: sub. SAML: the NameID. The account link is keyed by it, never by the email. */
  subject: string;
  email: string;
  name: string | undefined;
  claims: Record<string, unknown>;
}

/**
 * The end of a sign-in: a session, or — for an existing account not yet linked to this IdP
 * subject — a pending link the browser must confirm with the account's password (+ TOTP).
 */
export type SsoOutcome =
  | { kind: 'session'; refreshToken: string; sessionExpiresAt: Date }
  | { kind: 'link'; handle: string; ttlSeconds: number };

export type SsoStart = { url: string; handle: string; ttlSeconds: number; kind: 'oidc' | 'saml' };
