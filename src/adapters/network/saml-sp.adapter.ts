import { X509Certificate } from 'node:crypto';
import {
  generateServiceProviderMetadata,
  SAML,
  ValidateInResponseTo,
  type CacheProvider,
} from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';

/** What an uploaded IdP metadata document says Sotto needs (docs/sso.md). */
export interface SamlIdpMetadata {
  entityId: string;
  /** The IdP's SingleSignOnService for the HTTP-Redirect binding. */
  ssoUrl: string;
  /** Signing certificates as PEM; an assertion must verify against one of these only. */
  certs: string[];
}

export interface SamlSpSettings {
  /** Our entity id for this org: the audience every assertion must name. */
  spEntityId: string;
  acsUrl: string;
  idpEntityId: string;
  idpSsoUrl: string;
  idpCerts: string[];
  clockSkewMs: number;
}

/** The checked facts of a validated assertion (the raw XML is never kept or logged). */
export interface SamlIdentity {
  issuer: string;
  nameId: string;
  email: string | undefined;
  name: string | undefined;
  attributes: Record<string, unknown>;
  assertionId: string;
  /** The earliest NotOnOrAfter of the assertion's conditions and its bearer confirmation. */
  notOnOrAfter: Date;
  recipient: string | undefined;
  /** The bearer confirmation's InResponseTo (inside the signed assertion). */
  inResponseTo: string | undefined;
  /** The Response's Destination (outside the assertion's signature when only it is signed). */
  destination: string | undefined;
}

/** A metadata document Sotto will not use; `message` is safe to show the admin. */
export class SamlMetadataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SamlMetadataError';
  }
}

/** A response node-saml (or our own reading of it) refused. Never carries the XML. */
export class SamlResponseError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SamlResponseError';
  }
}

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const EMAIL_ATTRS = [
  'email',
  'mail',
  'urn:oid:0.9.2342.19200300.100.1.3',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
];
const NAME_ATTRS = ['displayName', 'name', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name'];

/** A strict DOM parse: any warning or error refuses the document. */
function parseStrict(xml: string): Document {
  // No DTD at all: entity expansion (billion laughs) and external entities are refused before
  // parsing, whatever the parser would do with them (xmldom resolves no external entity anyway).
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new SamlMetadataError('metadata must not contain a DTD');
  let failed = false;
  const doc = new DOMParser({
    locator: {},
    errorHandler: {
      warning: () => undefined,
      error: () => (failed = true),
      fatalError: () => (failed = true),
    },
  }).parseFromString(xml, 'text/xml');
  if (failed || !doc?.documentElement) throw new SamlMetadataError('metadata is not well-formed XML');
  return doc;
}

const toPem = (b64: string) =>
  `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;

const first = (v: unknown): unknown => (Array.isArray(v) ? v[0] : v);
const text = (v: unknown): string | undefined => {
  const x = first(v);
  if (typeof x === 'string') return x;
  if (x && typeof x === 'object' && typeof (x as { _?: unknown })._ === 'string')
    return (x as { _: string })._;
  return undefined;
};
const attrs = (v: unknown): Record<string, string> =>
  ((first(v) as { $?: Record<string, string> } | undefined)?.$ ?? {}) as Record<string, string>;

/**
 * The SAML service-provider side, on @node-saml/node-saml: reading IdP metadata, the
 * HTTP-Redirect AuthnRequest, our SP metadata, and validating an HTTP-POST response.
 */
export class SamlSp {
  /** Reads an IdP's EntityDescriptor; refuses DTDs, other roots, no redirect SSO or no cert. */
  parseIdpMetadata(xml: string, allowInsecure: boolean): SamlIdpMetadata {
    const root = parseStrict(xml).documentElement!;
    if (root.namespaceURI !== MD || root.localName !== 'EntityDescriptor')
      throw new SamlMetadataError('metadata must be one md:EntityDescriptor');
    const entityId = root.getAttribute('entityID')?.trim();
    if (!entityId || entityId.length > 1024) throw new SamlMetadataError('metadata has no entityID');
    const idp = Array.from(root.getElementsByTagNameNS(MD, 'IDPSSODescriptor'));
    if (idp.length !== 1) throw new SamlMetadataError('metadata must have one IDPSSODescriptor');
    const sso = Array.from(idp[0]!.getElementsByTagNameNS(MD, 'SingleSignOnService')).find(
      (e) => e.getAttribute('Binding') === REDIRECT,
    );
    const ssoUrl = sso?.getAttribute('Location')?.trim();
    if (!ssoUrl) throw new SamlMetadataError('metadata has no HTTP-Redirect SingleSignOnService');
    let url: URL;
    try {
      url = new URL(ssoUrl);
    } catch {
      throw new SamlMetadataError('the SingleSignOnService Location is not a URL');
    }
    if (url.protocol !== 'https:' && !(allowInsecure && url.protocol === 'http:'))
      throw new SamlMetadataError('the SingleSignOnService Location must be an https URL');
    if (url.hash || url.username || url.password || ssoUrl.length > 2048)
      throw new SamlMetadataError('the SingleSignOnService Location is not acceptable');
    const certs: string[] = [];
    for (const kd of Array.from(idp[0]!.getElementsByTagNameNS(MD, 'KeyDescriptor'))) {
      const use = kd.getAttribute('use');
      if (use && use !== 'signing') continue;
      for (const c of Array.from(kd.getElementsByTagNameNS(DS, 'X509Certificate'))) {
        const b64 = (c.textContent ?? '').replace(/\s+/g, '');
        if (!/^[A-Za-z0-9+/]+=*$/.test(b64))
          throw new SamlMetadataError('a signing certificate is malformed');
        const pem = toPem(b64);
        try {
          new X509Certificate(pem);
        } catch {
          throw new SamlMetadataError('a signing certificate is malformed');
        }
        if (!certs.includes(pem)) certs.push(pem);
      }
    }
    if (certs.length === 0) throw new SamlMetadataError('metadata has no signing certificate');
    if (certs.length > 10) throw new SamlMetadataError('metadata has too many signing certificates');
    return { entityId, ssoUrl, certs };
  }

  spMetadata(s: { spEntityId: string; acsUrl: string }): string {
    return generateServiceProviderMetadata({
      issuer: s.spEntityId,
      callbackUrl: s.acsUrl,
      wantAssertionsSigned: true,
      identifierFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    });
  }

  /** The HTTP-Redirect URL of an AuthnRequest whose ID is `requestId`. */
  async authorizeUrl(s: SamlSpSettings, requestId: string, relayState: string): Promise<string> {
    const saml = this.client(s, requestId);
    return saml.getAuthorizeUrlAsync(relayState, undefined, {});
  }

  /**
   * Validates a base64 SAMLResponse answering our request `requestId` (and no other):
   * node-saml checks the XML signature against the configured certificates only (assertion
   * signature required, one assertion only — no wrapping), InResponseTo on the response and its
   * bearer confirmation, NotBefore/NotOnOrAfter and the audience. The caller checks the rest
   * (issuer, recipient, destination, replay, its own clock).
   */
  async validate(s: SamlSpSettings, samlResponse: string, requestId: string): Promise<SamlIdentity> {
    const saml = this.client(s, requestId);
    let profile;
    try {
      ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (err) {
      throw new SamlResponseError('response refused', { cause: err });
    }
    if (!profile) throw new SamlResponseError('no assertion');
    const assertion = (profile.getAssertion?.() as { Assertion?: Record<string, unknown> } | undefined)
      ?.Assertion;
    if (!assertion) throw new SamlResponseError('no assertion');
    const assertionId = attrs(assertion).ID;
    const conditions = attrs(assertion.Conditions);
    const subject = first(assertion.Subject) as Record<string, unknown> | undefined;
    const confirmation = (
      Array.isArray(subject?.SubjectConfirmation) ? subject.SubjectConfirmation : []
    ).find((c: unknown) => attrs(c).Method === 'urn:oasis:names:tc:SAML:2.0:cm:bearer') as
      Record<string, unknown> | undefined;
    const data = attrs(confirmation?.SubjectConfirmationData);
    const limits = [conditions.NotOnOrAfter, data.NotOnOrAfter]
      .filter((x): x is string => typeof x === 'string')
      .map((x) => Date.parse(x));
    if (!assertionId || !confirmation || limits.length === 0 || limits.some((x) => Number.isNaN(x)))
      throw new SamlResponseError('assertion lacks an ID, a bearer confirmation or NotOnOrAfter');
    const responseXml = profile.getSamlResponseXml?.() ?? '';
    const destination = responseXml
      ? (new DOMParser()
          .parseFromString(responseXml, 'text/xml')
          .documentElement?.getAttribute('Destination') ?? undefined)
      : undefined;
    const a = (profile.attributes ?? {}) as Record<string, unknown>;
    const pick = (names: string[]) => names.map((n) => text(a[n])).find((v) => v);
    const nameIdEmail = profile.nameIDFormat?.endsWith(':emailAddress') ? profile.nameID : undefined;
    return {
      issuer: profile.issuer,
      nameId: profile.nameID,
      email: pick(EMAIL_ATTRS) ?? nameIdEmail,
      name: pick(NAME_ATTRS),
      attributes: a,
      assertionId,
      notOnOrAfter: new Date(Math.min(...limits)),
      recipient: data.Recipient,
      inResponseTo: data.InResponseTo,
      destination: destination || undefined,
    };
  }

  /**
   * One node-saml instance per operation, configured for one org's connection. Its request-id
   * cache knows exactly the one request this operation is about (already consumed from the
   * database by the caller), so InResponseTo can match nothing else.
   */
  private client(s: SamlSpSettings, requestId: string): SAML {
    // The request's age is enforced by the caller's flow state (its Clock, 10 minutes); node-saml
    // compares the cached instant with the system clock, so it gets "now" and always passes.
    const cache: CacheProvider = {
      saveAsync: async () => null,
      getAsync: async (key) => (key === requestId ? new Date().toISOString() : null),
      removeAsync: async () => null,
    };
    return new SAML({
      issuer: s.spEntityId,
      audience: s.spEntityId,
      callbackUrl: s.acsUrl,
      entryPoint: s.idpSsoUrl,
      idpCert: s.idpCerts,
      wantAssertionsSigned: true,
      // Many IdPs sign the assertion only; the assertion signature is what we require.
      wantAuthnResponseSigned: false,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: 10 * 60_000,
      acceptedClockSkewMs: s.clockSkewMs,
      cacheProvider: cache,
      generateUniqueId: () => requestId,
      identifierFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      disableRequestedAuthnContext: true,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
    });
  }
}
