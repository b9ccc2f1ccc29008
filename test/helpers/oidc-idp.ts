import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import Provider from 'oidc-provider';

/**
 * A real OpenID Provider (the `oidc-provider` package) on a local HTTP port, for SSO tests. It
 * sits behind a small in-process proxy on the issuer's port so a test can rewrite the token
 * endpoint's ID token (audience, nonce, expiry, signing key) while everything else — discovery,
 * JWKS, authorization with PKCE, the code exchange — is the provider's own behaviour. The login
 * and consent step is completed without a form: the account named in `nextAccount` signs in.
 */
export interface IdpAccount {
  email: string;
  email_verified: boolean;
  name?: string;
  groups?: string[];
}

export type TokenTamper = (claims: JWTPayload) => JWTPayload;

export interface TestIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  accounts: Map<string, IdpAccount>;
  nextAccount: string;
  /** Rewrites the next ID tokens' claims (re-signed with the IdP's own key). */
  tamper: TokenTamper | undefined;
  /** Re-sign the next ID tokens with a key the IdP never published. */
  foreignKey: boolean;
  close(): Promise<void>;
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function startIdp(opts: { redirectUri: string }): Promise<TestIdp> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid: 'idp-key', alg: 'RS256', use: 'sig' };
  const foreign = (await generateKeyPair('RS256', { extractable: true })).privateKey;

  const front = http.createServer();
  const back = http.createServer();
  const frontPort = await listen(front);
  const backPort = await listen(back);
  const issuer = `http://127.0.0.1:${frontPort}`;

  const idp: TestIdp = {
    issuer,
    clientId: `sotto-${randomBytes(4).toString('hex')}`,
    clientSecret: randomBytes(24).toString('base64url'),
    accounts: new Map(),
    nextAccount: '',
    tamper: undefined,
    foreignKey: false,
    close: async () => {
      await new Promise((r) => front.close(r));
      await new Promise((r) => back.close(r));
    },
  };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: idp.clientId,
        client_secret: idp.clientSecret,
        redirect_uris: [opts.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [jwk] },
    pkce: { required: () => true },
    // Scope claims go into the ID token as well (Sotto reads the ID token, not userinfo).
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    findAccount: (_ctx, sub) => {
      const a = idp.accounts.get(sub);
      return a ? { accountId: sub, claims: () => ({ sub, ...a }) } : undefined;
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: { devInteractions: { enabled: false } },
    cookies: { keys: [randomBytes(16).toString('hex')] },
  });

  const callback = provider.callback();
  back.on('request', (req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      void (async () => {
        const details = await provider.interactionDetails(req, res);
        const accountId = idp.nextAccount;
        const grant = new provider.Grant({ accountId, clientId: String(details.params.client_id) });
        grant.addOIDCScope('openid email profile');
        const grantId = await grant.save();
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId }, consent: { grantId } },
          { mergeWithLastSubmission: false },
        );
      })().catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
      return;
    }
    // Koa's request handler settles every error itself (ctx.onerror answers 500) and never rejects.
    void callback(req, res);
  });

  const resign = async (idToken: string): Promise<string> => {
    let claims = decodeJwt(idToken);
    if (idp.tamper) claims = idp.tamper(claims);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'idp-key', typ: 'JWT' })
      .sign(idp.foreignKey ? foreign : privateKey);
  };

  // The proxy: the issuer's public face. Only the token endpoint's answer is ever rewritten.
  front.on('request', (req, res) => {
    const upstream = http.request(
      { host: '127.0.0.1', port: backPort, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        const rewrite = req.url?.startsWith('/token') && (idp.tamper || idp.foreignKey);
        if (!rewrite) {
          res.writeHead(up.statusCode ?? 500, up.headers);
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          void (async () => {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id_token?: string };
            if (body.id_token) body.id_token = await resign(body.id_token);
            const out = Buffer.from(JSON.stringify(body));
            const headers = { ...up.headers, 'content-length': String(out.length) };
            res.writeHead(up.statusCode ?? 500, headers);
            res.end(out);
          })();
        });
      },
    );
    req.pipe(upstream);
  });

  return idp;
}

/** Minimal cookie jar for driving the IdP with fetch (its cookies are its own business). */
export class CookieJar {
  private readonly cookies = new Map<string, string>();
  store(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, i).trim(), pair!.slice(i + 1));
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * Follows the IdP's redirects from the authorization URL until it sends the browser back to
 * `redirectUri`; returns that final URL (with code and state, or an error).
 */
export async function followIdp(authorizationUrl: string, redirectUri: string): Promise<URL> {
  const jar = new CookieJar();
  let url = authorizationUrl;
  for (let hop = 0; hop < 10; hop++) {
    if (url.startsWith(redirectUri)) return new URL(url);
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.store(res);
    const location = res.headers.get('location');
    if (!location) throw new Error(`IdP stopped at ${url}: ${res.status} ${await res.text()}`);
    url = new URL(location, url).toString();
  }
  throw new Error('too many IdP redirects');
}
