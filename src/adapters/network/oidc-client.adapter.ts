import * as oidc from 'openid-client';
import { guardedFetch } from './sso-guarded-fetch.adapter.js';

/** The ID-token claims Sotto reads; everything else the IdP sends is ignored. */
export interface OidcIdentity {
  issuer: string;
  subject: string;
  email: string | undefined;
  emailVerified: boolean;
  name: string | undefined;
  /** The raw claims, for the optional role claim (never logged). */
  claims: Record<string, unknown>;
}

export interface OidcClientSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Plain-http issuers are refused unless the operator allowed them (tests, local IdPs). */
  allowInsecure: boolean;
  /** Our clock minus the system clock, in seconds: openid-client checks exp/iat against it. */
  clockSkewSeconds: number;
  /**
   * The discovery cache key: connection id + updated_at, so any change of the connection
   * discovers again.
   */
  cacheKey: string;
}

/** A failure talking to or trusting the IdP. `reason` is a short code, safe to audit. */
export class OidcError extends Error {
  constructor(
    readonly reason: 'discovery_failed' | 'idp_error' | 'token_rejected',
    options?: ErrorOptions,
  ) {
    super(`OIDC ${reason}`, options);
    this.name = 'OidcError';
  }
}

const TIMEOUT_SECONDS = 10;
/** How long a discovered configuration is reused (per connection and version of it). */
export const DISCOVERY_TTL_MS = 10 * 60_000;
const CACHE_MAX = 1000;

/**
 * The network side of OIDC sign-in, on openid-client (v6): discovery, the authorization URL and
 * the code exchange. `authorizationCodeGrant` checks state, PKCE, and the ID token's issuer,
 * audience (azp), nonce, exp/iat (30 s tolerance); `enableNonRepudiationChecks` adds the
 * signature check against the issuer's JWKS, which openid-client skips by default for ID tokens
 * received straight from the token endpoint over TLS. We want it anyway: it is what makes a
 * forged or swapped token fail even when the transport is not the weak point.
 */
export class OidcClient {
  /** Discovered server metadata by connection version: not fetched on every start/callback. */
  private readonly cache = new Map<string, { server: oidc.ServerMetadata; expiresAt: number }>();
  /** How many discovery documents were fetched (tests: the cache is used). */
  discoveries = 0;

  constructor(private readonly now: () => number = Date.now) {}

  private async configure(s: OidcClientSettings): Promise<oidc.Configuration> {
    // Unless the operator allowed insecure issuers (tests, an IdP on localhost), every request to
    // the admin-chosen issuer — discovery, JWKS, token endpoint — goes through the SSRF guard.
    const fetchFn = s.allowInsecure ? undefined : guardedFetch;
    const clientMeta = { client_secret: s.clientSecret, [oidc.clockSkew]: s.clockSkewSeconds };
    const auth = oidc.ClientSecretBasic(s.clientSecret);
    const hit = this.cache.get(s.cacheKey);
    let config: oidc.Configuration;
    if (hit && hit.expiresAt > this.now() && hit.server.issuer === s.issuer) {
      config = new oidc.Configuration(hit.server, s.clientId, clientMeta, auth);
      if (fetchFn) config[oidc.customFetch] = fetchFn;
      config.timeout = TIMEOUT_SECONDS;
    } else {
      const execute = s.allowInsecure ? [oidc.allowInsecureRequests] : [];
      try {
        this.discoveries += 1;
        config = await oidc.discovery(new URL(s.issuer), s.clientId, clientMeta, auth, {
          execute,
          timeout: TIMEOUT_SECONDS,
          ...(fetchFn ? { [oidc.customFetch]: fetchFn } : {}),
        });
      } catch (err) {
        throw new OidcError('discovery_failed', { cause: err });
      }
      if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
      // A plain copy of the document (serverMetadata() also carries helper methods).
      const server = JSON.parse(JSON.stringify(config.serverMetadata())) as oidc.ServerMetadata;
      this.cache.set(s.cacheKey, { server, expiresAt: this.now() + DISCOVERY_TTL_MS });
      // Only the discovery call is by then done: later requests use the config's own settings.
      if (fetchFn) config[oidc.customFetch] = fetchFn;
    }
    oidc.enableNonRepudiationChecks(config);
    if (s.allowInsecure) oidc.allowInsecureRequests(config);
    return config;
  }

  /** The IdP URL to send the browser to, with state, nonce and the PKCE S256 challenge. */
  async authorizationUrl(
    s: OidcClientSettings,
    p: { redirectUri: string; state: string; nonce: string; codeVerifier: string; loginHint?: string },
  ): Promise<URL> {
    const config = await this.configure(s);
    const params: Record<string, string> = {
      redirect_uri: p.redirectUri,
      response_type: 'code',
      scope: 'openid email profile',
      state: p.state,
      nonce: p.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(p.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (p.loginHint) params.login_hint = p.loginHint;
    return oidc.buildAuthorizationUrl(config, params);
  }

  /** Exchanges the code of `callbackUrl` and returns the verified identity. */
  async exchange(
    s: OidcClientSettings,
    callbackUrl: URL,
    checks: { state: string; nonce: string; codeVerifier: string },
  ): Promise<OidcIdentity> {
    const config = await this.configure(s);
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      // An error answer from the IdP (access_denied…) versus a response we refused to trust.
      const idp = err instanceof oidc.AuthorizationResponseError || err instanceof oidc.ResponseBodyError;
      throw new OidcError(idp ? 'idp_error' : 'token_rejected', { cause: err });
    }
    const claims = tokens.claims();
    if (!claims) throw new OidcError('token_rejected');
    return {
      issuer: claims.iss,
      subject: claims.sub,
      email: typeof claims.email === 'string' ? claims.email : undefined,
      emailVerified: claims.email_verified === true,
      name: typeof claims.name === 'string' ? claims.name : undefined,
      claims: { ...claims },
    };
  }
}
