import type { SsoConnectionRow, SsoEntry } from '../repositories/sso-connection.repository.js';
import type { ClientMeta } from './session.service.js';

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
  completeLogin(
    conn: SsoConnectionRow,
    id: { email: string; name: string | undefined; claims: Record<string, unknown> },
    meta: ClientMeta,
  ): Promise<{ refreshToken: string; sessionExpiresAt: Date }>;
}

export type SsoStart = { url: string; handle: string; ttlSeconds: number; kind: 'oidc' | 'saml' };
