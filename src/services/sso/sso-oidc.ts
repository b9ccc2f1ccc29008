import * as oidc from 'openid-client';
import { randomToken, sha256Hex } from '../../crypto/random.js';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { OidcError, type OidcClient, type OidcIdentity } from '../../adapters/network/oidc-client.adapter.js';
import { ssoConnectionRepository, type SsoEntry } from '../../repositories/sso/sso-connection.repository.js';
import { assertPublicUrlHost, SsrfBlockedError } from '../../adapters/network/ssrf-guard.adapter.js';
import type { KeyService } from '../keys/key.service.js';
import type { ClientMeta } from '../auth/session.service.js';
import {
  SsoLoginError,
  type SsoErrorCode,
  type SsoOptions,
  type SsoOutcome,
  type SsoShared,
  type SsoStart,
} from './sso-shared.js';

/** Where an OIDC client secret is sealed (KeyService field-bound AAD). */
export const secretAt = (orgId: string, rowId: string) => ({
  orgId,
  table: 'sso_connections',
  rowId,
  field: 'client_secret',
});

/**
 * OpenID Connect sign-in (docs/sso.md), the protocol part only: authorization code + PKCE
 * through openid-client, the flow state behind the browser's Lax cookie. SsoService owns the
 * connection, the refusals and the shared finish (domain rules, JIT provisioning, session).
 */
export class OidcSso {
  readonly redirectUri: string;

  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly clock: Clock,
    private readonly idp: OidcClient,
    private readonly opts: SsoOptions,
    private readonly shared: SsoShared,
  ) {
    this.redirectUri = `${opts.publicUrl}/api/v1/auth/sso/callback`;
  }

  /** The IdP URL to redirect to (state, nonce, PKCE stored server-side) and the cookie's handle. */
  async start(entry: SsoEntry, email: string | undefined): Promise<SsoStart> {
    const { settings } = await this.settingsOf(entry);
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = await this.idp
      .authorizationUrl(settings, {
        redirectUri: this.redirectUri,
        state,
        nonce,
        codeVerifier,
        loginHint: email,
      })
      .catch((err: unknown) => {
        throw new SsoLoginError(err instanceof OidcError ? 'idp_error' : 'failed');
      });
    const handle = randomToken();
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + this.opts.stateTtlSeconds * 1000);
    await withSystem(this.db, (tx) =>
      ssoConnectionRepository.insertState(
        tx,
        sha256Hex(handle),
        { ...entry, state, nonce, codeVerifier, expiresAt },
        now,
      ),
    );
    return { url: url.toString(), handle, ttlSeconds: this.opts.stateTtlSeconds, kind: 'oidc' };
  }

  /**
   * Finishes a sign-in: consumes the login state of the browser's handle (single use), lets
   * openid-client verify the answer and the ID token, then hands over to the shared finish.
   */
  async callback(handle: string | undefined, query: string, meta: ClientMeta): Promise<SsoOutcome> {
    const now = this.clock.now();
    const st = handle
      ? await withSystem(this.db, (tx) => ssoConnectionRepository.consumeState(tx, sha256Hex(handle)))
      : undefined;
    if (!st || st.expiresAt.getTime() <= now.getTime())
      throw await this.shared.refused(undefined, 'state_invalid', meta);
    const entry = { connectionId: st.connectionId, orgId: st.orgId };
    const loaded = await this.settingsOf(entry).catch(() => undefined);
    if (!loaded) throw await this.shared.refused(entry, 'not_configured', meta);
    let id: OidcIdentity;
    try {
      id = await this.idp.exchange(loaded.settings, new URL(`${this.redirectUri}?${query}`), st);
    } catch (err) {
      const code: SsoErrorCode =
        err instanceof OidcError && err.reason === 'idp_error' ? 'idp_error' : 'token_rejected';
      throw await this.shared.refused(entry, code, meta);
    }
    if (!id.email || !id.emailVerified) throw await this.shared.refused(entry, 'email_unverified', meta);
    if (!id.subject) throw await this.shared.refused(entry, 'token_rejected', meta);
    return this.shared.completeLogin(
      loaded.connection,
      { issuer: id.issuer, subject: id.subject, email: id.email, name: id.name, claims: id.claims },
      meta,
    );
  }

  /**
   * The issuer as saved: an https URL without query, fragment or credentials and, unless the
   * operator allowed insecure issuers (tests, a local IdP), passing the SSRF guard at save time
   * (literal private addresses, local names, names resolving to a blocked address). The guarded
   * fetch applies the same guard again to every request sent to the IdP.
   */
  async checkIssuer(raw: string): Promise<string> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new AppError('validation_failed', 'issuer must be a URL');
    }
    const insecureOk = this.opts.allowInsecureIssuers;
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && insecureOk))
      throw new AppError('validation_failed', 'issuer must be an https URL');
    if (url.search || url.hash || url.username || url.password)
      throw new AppError('validation_failed', 'issuer must not carry a query, fragment or credentials');
    if (!insecureOk)
      await assertPublicUrlHost(url).catch((err: unknown) => {
        if (err instanceof SsrfBlockedError)
          throw new AppError('validation_failed', 'issuer must not point to a private address');
        throw err;
      });
    // The issuer identifier is compared exactly with the ID token's iss: keep it as given.
    return raw;
  }

  private async settingsOf(entry: SsoEntry) {
    // The OIDC client checks iat/exp on the wall clock; this offset moves it onto the app's clock
    // (the one place a service reads the wall clock: to measure how far the injected one is).
    // eslint-disable-next-line no-restricted-properties -- the wall clock is what is measured here
    const skew = Math.round((this.clock.now().getTime() - Date.now()) / 1000);
    return withTenant(this.db, { orgId: entry.orgId, userId: null }, async (tx) => {
      const connection = await ssoConnectionRepository.find(tx, entry.orgId, entry.connectionId);
      if (!connection || connection.kind !== 'oidc' || !connection.clientSecretEnc || !connection.clientId)
        throw new SsoLoginError('not_configured');
      const clientSecret = await this.keys.decryptString(
        tx,
        secretAt(entry.orgId, connection.id),
        connection.clientSecretEnc,
      );
      return {
        connection,
        settings: {
          issuer: connection.issuer,
          clientId: connection.clientId,
          clientSecret,
          allowInsecure: this.opts.allowInsecureIssuers,
          clockSkewSeconds: skew,
          cacheKey: `${connection.id}:${connection.updatedAt.getTime()}`,
        },
      };
    });
  }
}
