import { z } from 'zod';

/**
 * Request and response shapes of /api/v1/org/sso (the org's OIDC connection). The client
 * secret is write-only: accepted in PUT, never part of any answer (`hasClientSecret` only).
 */
// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001f\u007f-\u009f]*$/;
// A DNS name of at least two labels (punycode for IDNs), as it appears after the @ of an email.
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/;

const bounded = (max: number) =>
  z.string().trim().min(1).max(max).regex(NO_CONTROL, 'must not contain control characters');

export const ssoPut = z.strictObject({
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

const timestamp = z.iso.datetime();

export const ssoResponse = z.object({
  id: z.string(),
  kind: z.literal('oidc'),
  issuer: z.string(),
  clientId: z.string(),
  hasClientSecret: z.literal(true),
  allowedDomains: z.array(z.string()),
  roleClaim: z.string().nullable(),
  roleMapping: z.record(z.string(), z.enum(['admin', 'member'])),
  requireSso: z.boolean(),
  /** Register this redirect URI with the IdP. */
  redirectUri: z.string(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
