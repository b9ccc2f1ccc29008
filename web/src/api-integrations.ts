import { ApiError, del, getJson, sendJson } from './api';

/**
 * The integration screens' API calls and shapes: the org's single sign-on connection
 * (/api/v1/org/sso, docs/sso.md), personal API tokens (/api/v1/tokens, docs/api-tokens.md) and
 * webhooks (/api/v1/org/webhooks, docs/webhooks.md). Secrets appear only in creation answers.
 */

// ---- single sign-on ----

export type SsoKind = 'oidc' | 'saml';

interface SsoCommon {
  id: string;
  allowedDomains: string[];
  requireSso: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface OidcConnection extends SsoCommon {
  kind: 'oidc';
  issuer: string;
  clientId: string;
  hasClientSecret: boolean;
  roleClaim: string | null;
  roleMapping: Record<string, 'admin' | 'member'>;
  /** Register this with the IdP. */
  redirectUri: string;
}

/** What Sotto tells the IdP (SP entity id, ACS URL) and what it kept of the IdP's metadata. */
export interface SamlDetails {
  spEntityId: string;
  acsUrl: string;
  idpSsoUrl: string;
  certificates: { fingerprint256: string; validTo: string }[];
}

export interface SamlConnection extends SsoCommon {
  kind: 'saml';
  /** The IdP's entity id, from its metadata. */
  issuer: string;
  saml: SamlDetails;
  roleClaim: string | null;
  roleMapping: Record<string, 'admin' | 'member'>;
}

/** Any other kind a newer server may answer with; shown read-only. */
export interface OtherConnection extends SsoCommon {
  kind: string;
  [field: string]: unknown;
}

export type SsoConnection = OidcConnection | SamlConnection | OtherConnection;

export const isOidc = (c: SsoConnection): c is OidcConnection => c.kind === 'oidc';
export const isSaml = (c: SsoConnection): c is SamlConnection => c.kind === 'saml' && Boolean(c.saml);

/** The API's limit on the IdP metadata document (IDP_METADATA_MAX in sso.schema.ts). */
export const IDP_METADATA_MAX = 100_000;

export interface SamlInput {
  /** The whole IdP metadata document; the API keeps only its entity id, SSO URL and certificates. */
  idpMetadataXml: string;
  allowedDomains: string[];
  roleClaim: string | null;
  roleMapping: Record<string, 'admin' | 'member'>;
  requireSso: boolean;
}

/**
 * The public SP metadata of an org (GET /api/v1/auth/sso/saml/:orgSlug/metadata, docs/sso.md).
 * The API does not list it, so it is built next to the ACS URL, which has the same public base.
 */
export const spMetadataUrl = (acsUrl: string, orgSlug: string): string =>
  acsUrl.replace(/\/acs$/, `/${encodeURIComponent(orgSlug)}/metadata`);

export interface OidcInput {
  issuer: string;
  clientId: string;
  /** Write-only; left out to keep the stored one. */
  clientSecret?: string;
  allowedDomains: string[];
  roleClaim: string | null;
  roleMapping: Record<string, 'admin' | 'member'>;
  requireSso: boolean;
}

/** The connection, or null when the organization has none (the API answers 404). */
export async function getSso(): Promise<SsoConnection | null> {
  try {
    return await getJson<SsoConnection>('/api/v1/org/sso');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export const putOidc = (input: OidcInput): Promise<SsoConnection> =>
  sendJson('PUT', '/api/v1/org/sso', input);

export const putSaml = (input: SamlInput): Promise<SsoConnection> =>
  sendJson('PUT', '/api/v1/org/sso', { kind: 'saml', ...input });

export const deleteSso = (): Promise<void> => del('/api/v1/org/sso');

// ---- personal API tokens ----

export const API_SCOPES = [
  'recordings:read',
  'recordings:write',
  'live:ingest',
  'org:read',
  'org:admin',
  'audit:read',
] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export interface ApiToken {
  id: string;
  userId: string;
  name: string;
  scopes: ApiScope[];
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  status: 'active' | 'expired' | 'revoked';
}

export const listTokens = (): Promise<ApiToken[]> => getJson('/api/v1/tokens');

export const createToken = (input: {
  name: string;
  scopes: ApiScope[];
  expiresInDays: number;
}): Promise<ApiToken & { token: string }> => sendJson('POST', '/api/v1/tokens', input);

export const revokeToken = (id: string): Promise<void> => del(`/api/v1/tokens/${encodeURIComponent(id)}`);

// ---- webhooks ----

export const WEBHOOK_EVENTS = ['recording.done', 'recording.failed', 'recording.deleted'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface Webhook {
  id: string;
  url: string;
  events: WebhookEvent[];
  enabled: boolean;
  createdAt: string;
  rotatedAt: string | null;
}

export interface Delivery {
  id: string;
  event: WebhookEvent;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  payload: Record<string, unknown>;
}

const hook = (id: string) => `/api/v1/org/webhooks/${encodeURIComponent(id)}`;

export const listWebhooks = (): Promise<Webhook[]> => getJson('/api/v1/org/webhooks');

export const createWebhook = (url: string, events: WebhookEvent[]): Promise<Webhook & { secret: string }> =>
  sendJson('POST', '/api/v1/org/webhooks', { url, events });

export const updateWebhook = (
  id: string,
  patch: { url?: string; events?: WebhookEvent[]; enabled?: boolean },
): Promise<Webhook> => sendJson('PATCH', hook(id), patch);

export const deleteWebhook = (id: string): Promise<void> => del(hook(id));

export const rotateWebhookSecret = (id: string): Promise<{ secret: string; previousValidUntil: string }> =>
  sendJson('POST', `${hook(id)}/rotate-secret`, {});

export const listDeliveries = (id: string): Promise<Delivery[]> => getJson(`${hook(id)}/deliveries`);

export const redeliver = (id: string, deliveryId: string): Promise<Delivery> =>
  sendJson('POST', `${hook(id)}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`, {});
