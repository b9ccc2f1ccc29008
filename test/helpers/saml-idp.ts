import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { generate } from 'selfsigned';
import { SignedXml } from 'xml-crypto';

/**
 * A SAML identity provider for tests: its own RSA key and self-signed certificate, real
 * metadata, and HTTP-POST responses signed with xml-crypto (RSA-SHA256, exclusive c14n,
 * enveloped signature on the assertion) exactly as IdPs sign them. Each option bends one part
 * of a response so a test can show that Sotto refuses it.
 */
export interface ResponseOptions {
  email: string;
  /** A persistent NameID (the IdP's subject); by default the NameID is the email. */
  nameId?: string;
  name?: string;
  groups?: string[];
  /** The request id to answer; null for an unsolicited response (no InResponseTo). */
  inResponseTo: string | null;
  /** The assertion's own InResponseTo when it differs from the response's (null: none). */
  assertionInResponseTo?: string | null;
  audience: string;
  recipient: string;
  destination?: string;
  /** Seconds from now until NotOnOrAfter (negative: already expired). Default 300. */
  validForSeconds?: number;
  /** 'none': no signature at all. 'foreign': signed with a key the metadata never named. */
  signing?: 'own' | 'foreign' | 'none';
  /** Rewrites the signed XML (e.g. the email after signing). */
  afterSign?: (xml: string) => string;
  /** Adds a second, unsigned assertion for another user (signature wrapping). */
  wrapWith?: string;
  issuer?: string;
}

export interface TestSamlIdp {
  entityId: string;
  ssoUrl: string;
  certPem: string;
  metadata(): string;
  response(o: ResponseOptions): string;
}

const SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';

const iso = (ms: number) => new Date(ms).toISOString();
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
const certBody = (pem: string) => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');

async function keyPair() {
  const pems = await generate([{ name: 'commonName', value: 'test-idp' }], {
    keySize: 2048,
    algorithm: 'sha256',
  });
  return { key: pems.private, cert: pems.cert };
}

function assertionXml(o: ResponseOptions, issuer: string, id: string, email: string): string {
  const now = Date.now();
  const until = iso(now + (o.validForSeconds ?? 300) * 1000);
  const own = o.assertionInResponseTo === undefined ? o.inResponseTo : o.assertionInResponseTo;
  const irt = own ? ` InResponseTo="${esc(own)}"` : '';
  const groups = (o.groups ?? []).map((g) => `<saml:AttributeValue>${esc(g)}</saml:AttributeValue>`).join('');
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${iso(now)}">` +
    `<saml:Issuer>${esc(issuer)}</saml:Issuer>` +
    (o.nameId
      ? `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${esc(o.nameId)}</saml:NameID>`
      : `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${esc(email)}</saml:NameID>`) +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
    `<saml:SubjectConfirmationData${irt} NotOnOrAfter="${until}" Recipient="${esc(o.recipient)}"/>` +
    `</saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${iso(now - 5000)}" NotOnOrAfter="${until}">` +
    `<saml:AudienceRestriction><saml:Audience>${esc(o.audience)}</saml:Audience></saml:AudienceRestriction>` +
    `</saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="_s${randomBytes(8).toString('hex')}">` +
    `<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>` +
    `</saml:AuthnStatement>` +
    `<saml:AttributeStatement>` +
    `<saml:Attribute Name="email"><saml:AttributeValue>${esc(email)}</saml:AttributeValue></saml:Attribute>` +
    (o.name
      ? `<saml:Attribute Name="displayName"><saml:AttributeValue>${esc(o.name)}</saml:AttributeValue></saml:Attribute>`
      : '') +
    (groups ? `<saml:Attribute Name="groups">${groups}</saml:Attribute>` : '') +
    `</saml:AttributeStatement></saml:Assertion>`
  );
}

function sign(xml: string, key: string, cert: string): string {
  const sig = new SignedXml({
    privateKey: key,
    publicCert: cert,
    signatureAlgorithm: SHA256,
    canonicalizationAlgorithm: EXC_C14N,
  });
  sig.addReference({
    xpath: "//*[local-name(.)='Assertion']",
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', EXC_C14N],
  });
  sig.computeSignature(xml, {
    location: { reference: "//*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' },
  });
  return sig.getSignedXml();
}

export async function startSamlIdp(name: string): Promise<TestSamlIdp> {
  const own = await keyPair();
  const foreign = await keyPair();
  const entityId = `https://${name}.idp.test/metadata`;
  const ssoUrl = `https://${name}.idp.test/sso`;
  return {
    entityId,
    ssoUrl,
    certPem: own.cert,
    metadata: () =>
      `<?xml version="1.0"?>` +
      `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${entityId}">` +
      `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">` +
      `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certBody(own.cert)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
      `<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${ssoUrl}"/>` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${ssoUrl}"/>` +
      `</md:IDPSSODescriptor></md:EntityDescriptor>`,
    response(o) {
      const issuer = o.issuer ?? entityId;
      const assertionId = `_a${randomBytes(16).toString('hex')}`;
      let assertion = assertionXml(o, issuer, assertionId, o.email);
      const keys = o.signing === 'foreign' ? foreign : own;
      if (o.signing !== 'none') assertion = sign(assertion, keys.key, keys.cert);
      if (o.afterSign) assertion = o.afterSign(assertion);
      const extra = o.wrapWith
        ? assertionXml(o, issuer, `_w${randomBytes(16).toString('hex')}`, o.wrapWith)
        : '';
      const irt = o.inResponseTo ? ` InResponseTo="${esc(o.inResponseTo)}"` : '';
      const dest = o.destination ? ` Destination="${esc(o.destination)}"` : '';
      const xml =
        `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"` +
        ` ID="_r${randomBytes(16).toString('hex')}" Version="2.0" IssueInstant="${iso(Date.now())}"${dest}${irt}>` +
        `<saml:Issuer>${esc(issuer)}</saml:Issuer>` +
        `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
        extra +
        assertion +
        `</samlp:Response>`;
      return Buffer.from(xml).toString('base64');
    },
  };
}

/** What the IdP reads from our HTTP-Redirect AuthnRequest URL. */
export function readAuthnRequest(location: string): { id: string; relayState: string; xml: string } {
  const url = new URL(location);
  const xml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const id = /\sID="([^"]+)"/.exec(xml)![1]!;
  return { id, relayState: url.searchParams.get('RelayState')!, xml };
}
