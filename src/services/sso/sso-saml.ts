import { X509Certificate, timingSafeEqual } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { randomToken, sha256Hex } from '../../crypto/random.js';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import {
  SamlMetadataError,
  SamlResponseError,
  type SamlIdentity,
  type SamlIdpMetadata,
  type SamlSp,
  type SamlSpSettings,
} from '../../adapters/network/saml-sp.adapter.js';
import {
  ssoConnectionRepository,
  type SsoConnectionRow,
  type SsoEntry,
} from '../../repositories/sso/sso-connection.repository.js';
import type { ClientMeta } from '../auth/session.service.js';
import type { SsoOptions, SsoOutcome, SsoShared, SsoStart } from './sso-shared.js';

/** PUT /api/v1/org/sso with a SAML IdP: everything about the IdP comes from its metadata. */
export interface SamlConnectionInput {
  kind: 'saml';
  idpMetadataXml: string;
  allowedDomains: string[];
  roleClaim?: string | null | undefined;
  roleMapping?: Record<string, 'admin' | 'member'> | undefined;
  requireSso?: boolean | undefined;
}

export interface SamlView {
  /** Give these to the IdP (or let it read GET /api/v1/auth/sso/saml/<org slug>/metadata). */
  spEntityId: string;
  acsUrl: string;
  idpSsoUrl: string;
  certificates: { fingerprint256: string; validTo: string }[];
}

/** Clock tolerance on NotBefore/NotOnOrAfter, ours and node-saml's. */
export const SAML_CLOCK_SKEW_MS = 60_000;

const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * SAML 2.0 sign-in (docs/sso.md), the protocol part only: SsoService owns the connection, the
 * refusals and the shared finish (domain rules, JIT provisioning, session).
 *
 * Binding the IdP's POST to our request: the ACS is a cross-site POST, so the SameSite=Lax flow
 * cookie is not sent with it. The flow is found by RelayState (a random handle, stored hashed,
 * single use, 10 minutes) and must carry a second cookie of the same value that is SameSite=None
 * (it binds the POST to the browser that started; it authorises nothing else); the response's
 * InResponseTo must be the AuthnRequest id stored under that handle, for that org's connection.
 */
export class SamlSso {
  readonly acsUrl: string;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly sp: SamlSp,
    private readonly opts: SsoOptions,
    private readonly shared: SsoShared,
  ) {
    this.acsUrl = `${opts.publicUrl}/api/v1/auth/sso/saml/acs`;
  }

  /** Our entity id for an org: by id, so renaming the org's slug never breaks the IdP's trust. */
  spEntityId(orgId: string): string {
    return `${this.opts.publicUrl}/api/v1/auth/sso/saml/orgs/${orgId}`;
  }

  view(c: SsoConnectionRow): SamlView {
    return {
      spEntityId: this.spEntityId(c.orgId),
      acsUrl: this.acsUrl,
      idpSsoUrl: c.samlSsoUrl ?? '',
      certificates: c.samlCerts.map((pem) => {
        const x = new X509Certificate(pem);
        return { fingerprint256: x.fingerprint256, validTo: new Date(x.validTo).toISOString() };
      }),
    };
  }

  parseMetadata(xml: string): SamlIdpMetadata {
    try {
      return this.sp.parseIdpMetadata(xml, this.opts.allowInsecureIssuers);
    } catch (err) {
      if (err instanceof SamlMetadataError)
        throw new AppError('validation_failed', `idpMetadataXml: ${err.message}`);
      throw new AppError('validation_failed', 'idpMetadataXml could not be read');
    }
  }

  /** Public SP metadata of an org whose connection is SAML (404 for anything else). */
  async metadata(orgSlug: string): Promise<string> {
    const e = await withSystem(this.db, (tx) =>
      ssoConnectionRepository.samlEntryBySlug(tx, orgSlug.toLowerCase()),
    );
    if (!e || e.kind !== 'saml') throw notFound('SAML connection');
    return this.sp.spMetadata({ spEntityId: this.spEntityId(e.orgId), acsUrl: this.acsUrl });
  }

  /** Starts a SAML sign-in when the entry's connection is SAML; undefined for OIDC. */
  async start(entry: SsoEntry): Promise<SsoStart | undefined> {
    const e = await withSystem(this.db, (tx) => ssoConnectionRepository.samlEntry(tx, entry.orgId));
    if (!e || e.kind !== 'saml' || e.connectionId !== entry.connectionId) return undefined;
    const conn = await this.connection(entry);
    const requestId = `_${randomBytes(20).toString('hex')}`;
    const handle = randomToken();
    const url = await this.sp.authorizeUrl(this.settings(conn), requestId, handle);
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + this.opts.stateTtlSeconds * 1000);
    // The flow-state row of OIDC, reused: `state` holds the AuthnRequest id (the only
    // InResponseTo we will accept for this handle); SAML has no nonce or PKCE verifier.
    await withSystem(this.db, (tx) =>
      ssoConnectionRepository.insertState(
        tx,
        sha256Hex(handle),
        { ...entry, state: requestId, nonce: '-', codeVerifier: '-', expiresAt },
        now,
      ),
    );
    return { url, handle, ttlSeconds: this.opts.stateTtlSeconds, kind: 'saml' };
  }

  /**
   * The assertion consumer: finds the flow by RelayState (single use), requires the browser's
   * binding cookie to match, lets node-saml verify signature, InResponseTo, times and audience,
   * then checks issuer, recipient, destination and replay itself before the shared finish.
   */
  async acs(
    relayState: string | undefined,
    browserHandle: string | undefined,
    samlResponse: string,
    meta: ClientMeta,
  ): Promise<SsoOutcome> {
    if (!relayState || !browserHandle || !sameText(relayState, browserHandle))
      throw await this.shared.refused(undefined, 'state_invalid', meta);
    const now = this.clock.now();
    const st = await withSystem(this.db, (tx) =>
      ssoConnectionRepository.consumeState(tx, sha256Hex(relayState)),
    );
    if (!st || st.expiresAt.getTime() <= now.getTime())
      throw await this.shared.refused(undefined, 'state_invalid', meta);
    const entry = { connectionId: st.connectionId, orgId: st.orgId };
    const conn = await this.connection(entry).catch(() => undefined);
    if (!conn) throw await this.shared.refused(entry, 'not_configured', meta);
    let id: SamlIdentity;
    try {
      id = await this.sp.validate(this.settings(conn), samlResponse, st.state);
    } catch (err) {
      if (!(err instanceof SamlResponseError)) throw err;
      throw await this.shared.refused(entry, 'token_rejected', meta);
    }
    const fresh = id.notOnOrAfter.getTime() + SAML_CLOCK_SKEW_MS > now.getTime();
    const ok =
      id.issuer === conn.issuer &&
      id.recipient === this.acsUrl &&
      // The Response's InResponseTo (checked by node-saml) is outside the assertion's signature:
      // the signed bearer confirmation must name our request too, or an assertion issued for
      // another flow (or IdP-initiated) could be rewrapped into this one.
      id.inResponseTo === st.state &&
      (id.destination === undefined || id.destination === this.acsUrl) &&
      fresh;
    if (!ok) throw await this.shared.refused(entry, 'token_rejected', meta);
    // Single use, even inside the assertion's validity window (kept until it expires anyway).
    const expiresAt = new Date(id.notOnOrAfter.getTime() + SAML_CLOCK_SKEW_MS);
    const first = await withSystem(this.db, (tx) =>
      ssoConnectionRepository.useAssertion(tx, conn.orgId, id.assertionId, expiresAt, now),
    );
    if (!first) throw await this.shared.refused(entry, 'token_rejected', meta);
    // The IdP vouches for the address it asserts (SAML has no email_verified): a connection
    // only accepts its allowed domains, and never an account of another org.
    if (!id.email) throw await this.shared.refused(entry, 'email_unverified', meta);
    if (!id.nameId) throw await this.shared.refused(entry, 'token_rejected', meta);
    return this.shared.completeLogin(
      conn,
      { issuer: id.issuer, subject: id.nameId, email: id.email, name: id.name, claims: id.attributes },
      meta,
    );
  }

  private async connection(entry: SsoEntry): Promise<SsoConnectionRow> {
    const c = await withTenant(this.db, { orgId: entry.orgId, userId: null }, (tx) =>
      ssoConnectionRepository.find(tx, entry.orgId, entry.connectionId),
    );
    if (!c || c.kind !== 'saml' || !c.samlSsoUrl || c.samlCerts.length === 0)
      throw new AppError('not_found', 'SAML connection');
    return c;
  }

  private settings(c: SsoConnectionRow): SamlSpSettings {
    return {
      spEntityId: this.spEntityId(c.orgId),
      acsUrl: this.acsUrl,
      idpEntityId: c.issuer,
      idpSsoUrl: c.samlSsoUrl!,
      idpCerts: c.samlCerts,
      clockSkewMs: SAML_CLOCK_SKEW_MS,
    };
  }
}
