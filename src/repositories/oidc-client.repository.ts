import * as oidc from 'openid-client';

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

/**
 * The network side of OIDC sign-in, on openid-client (v6): discovery, the authorization URL and
 * the code exchange. `authorizationCodeGrant` checks state, PKCE, and the ID token's issuer,
 * audience (azp), nonce, exp/iat (30 s tolerance); `enableNonRepudiationChecks` adds the
 * signature check against the issuer's JWKS, which openid-client skips by default for ID tokens
 * received straight from the token endpoint over TLS. We want it anyway: it is what makes a
 * forged or swapped token fail even when the transport is not the weak point.
 */
export class OidcClientRepository {
  private async configure(s: OidcClientSettings): Promise<oidc.Configuration> {
    const execute = [oidc.enableNonRepudiationChecks];
    if (s.allowInsecure) execute.push(oidc.allowInsecureRequests);
    try {
      return await oidc.discovery(
        new URL(s.issuer),
        s.clientId,
        { client_secret: s.clientSecret, [oidc.clockSkew]: s.clockSkewSeconds },
        oidc.ClientSecretBasic(s.clientSecret),
        { execute, timeout: TIMEOUT_SECONDS },
      );
    } catch (err) {
      throw new OidcError('discovery_failed', { cause: err });
    }
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
