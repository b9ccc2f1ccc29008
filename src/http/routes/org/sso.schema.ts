import { z } from 'zod';
import { NO_CONTROL } from '../text.schema.js';

/**
 * Request and response shapes of /api/v1/org/sso (the org's OIDC or SAML connection). The client
 * secret is write-only: accepted in PUT, never part of any answer (`hasClientSecret` only).
 */
// A DNS name of at least two labels (punycode for IDNs), as it appears after the @ of an email.
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/;

const bounded = (max: number) =>
  z.string().trim().min(1).max(max).regex(NO_CONTROL, 'must not contain control characters');

const domains = z
  .array(z.string().trim().toLowerCase().regex(DOMAIN, 'must be a domain name such as example.com'))
  .min(1)
  .max(50);
const roleMapping = z
  .record(bounded(200), z.enum(['admin', 'member']))
  .refine((m) => Object.keys(m).length <= 50, 'at most 50 mappings')
  .optional();

/** IdP metadata is read in full into memory and parsed: keep it small (real ones are a few KiB). */
export const IDP_METADATA_MAX = 100_000;

const samlPut = z.strictObject({
  kind: z.literal('saml'),
  /** The IdP's SAML metadata (one md:EntityDescriptor; no DTD; at least one signing cert). */
  idpMetadataXml: z.string().min(1).max(IDP_METADATA_MAX),
  allowedDomains: domains,
  /** SAML: the attribute name whose values map to a role. */
  roleClaim: bounded(100).nullable().optional(),
  roleMapping,
  requireSso: z.boolean().optional(),
});

const oidcPut = z.strictObject({
  kind: z.literal('oidc').optional(),
  issuer: z.string().trim().min(1).max(2048),
  clientId: bounded(512),
  clientSecret: z
    .string()
    .min(1)
    .max(512)
    .regex(NO_CONTROL, 'must not contain control characters')
    .optional(),
  allowedDomains: z
    .array(z.string().trim().toLowerCase().regex(DOMAIN, 'must be a domain name such as example.com'))
    .min(1)
    .max(50),
  roleClaim: bounded(100).nullable().optional(),
  roleMapping: z
    .record(bounded(200), z.enum(['admin', 'member']))
    .refine((m) => Object.keys(m).length <= 50, 'at most 50 mappings')
    .optional(),
  requireSso: z.boolean().optional(),
});

export const ssoPut = z.union([oidcPut, samlPut]);

const timestamp = z.iso.datetime();

export const ssoResponse = z.object({
  id: z.string(),
  kind: z.enum(['oidc', 'saml']),
  /** OIDC: the issuer. SAML: the IdP's entity id. */
  issuer: z.string(),
  clientId: z.string().nullable(),
  hasClientSecret: z.boolean(),
  /** SAML only: what to give the IdP, and what its metadata said. */
  saml: z
    .object({
      spEntityId: z.string(),
      acsUrl: z.string(),
      idpSsoUrl: z.string(),
      certificates: z.array(z.object({ fingerprint256: z.string(), validTo: timestamp })),
    })
    .nullable(),
  allowedDomains: z.array(z.string()),
  roleClaim: z.string().nullable(),
  roleMapping: z.record(z.string(), z.enum(['admin', 'member'])),
  requireSso: z.boolean(),
  /** Register this redirect URI with the IdP. */
  redirectUri: z.string(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
