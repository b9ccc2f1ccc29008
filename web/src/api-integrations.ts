import { ApiError, api } from './api';
import { unwrap, type Answer, type Body } from './api-client';

/**
 * The integration screens' API calls and shapes: the org's single sign-on connection
 * (/api/v1/org/sso, docs/sso.md), personal API tokens (/api/v1/tokens, docs/api-tokens.md) and
 * webhooks (/api/v1/org/webhooks, docs/webhooks.md). Secrets appear only in creation answers.
 */

// ---- single sign-on ----

/** The organization's connection, one shape for both kinds (the kind's own fields are null otherwise). */
export type SsoConnection = Answer<'/api/v1/org/sso', 'get'>;
export type SsoKind = SsoConnection['kind'];

/** What Sotto tells the IdP (SP entity id, ACS URL) and what it kept of the IdP's metadata. */
export type SamlDetails = NonNullable<SsoConnection['saml']>;

/** OpenID Connect: `redirectUri` is what to register with the IdP. */
export type OidcConnection = SsoConnection & { kind: 'oidc'; clientId: string };

/** SAML: `issuer` is the IdP's entity id, from its metadata. */
export type SamlConnection = SsoConnection & { kind: 'saml'; saml: SamlDetails };

export const isOidc = (c: SsoConnection): c is OidcConnection => c.kind === 'oidc' && c.clientId !== null;
export const isSaml = (c: SsoConnection): c is SamlConnection => c.kind === 'saml' && c.saml !== null;

/** The API's limit on the IdP metadata document (IDP_METADATA_MAX in sso.schema.ts). */
export const IDP_METADATA_MAX = 100_000;

type SsoInput = Body<'/api/v1/org/sso', 'put'>;

/** The whole IdP metadata document (the API keeps only its entity id, SSO URL and certificates). */
export type SamlInput = Omit<Extract<SsoInput, { kind: 'saml' }>, 'kind'>;

/**
 * The public SP metadata of an org (GET /api/v1/auth/sso/saml/:orgSlug/metadata, docs/sso.md).
 * The API does not list it, so it is built next to the ACS URL, which has the same public base.
 */
export const spMetadataUrl = (acsUrl: string, orgSlug: string): string =>
  acsUrl.replace(/\/acs$/, `/${encodeURIComponent(orgSlug)}/metadata`);

/** `clientSecret` is write-only; left out to keep the stored one. */
export type OidcInput = Extract<SsoInput, { kind?: 'oidc' }>;

/** The connection, or null when the organization has none (the API answers 404). */
export async function getSso(): Promise<SsoConnection | null> {
  try {
    return await unwrap(api.GET('/api/v1/org/sso'));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export const putOidc = (input: OidcInput): Promise<SsoConnection> =>
  unwrap(api.PUT('/api/v1/org/sso', { body: input }));

export const putSaml = (input: SamlInput): Promise<SsoConnection> =>
  unwrap(api.PUT('/api/v1/org/sso', { body: { kind: 'saml', ...input } }));

export async function deleteSso(): Promise<void> {
  await unwrap(api.DELETE('/api/v1/org/sso'));
}

// ---- personal API tokens ----

export type ApiToken = Answer<'/api/v1/tokens', 'get'>[number];
export type ApiScope = ApiToken['scopes'][number];

/** Every scope, in the order the form offers them. */
export const API_SCOPES = [
  'recordings:read',
  'recordings:write',
  'live:ingest',
  'org:read',
  'org:admin',
  'audit:read',
] as const satisfies readonly ApiScope[];

export const listTokens = (): Promise<ApiToken[]> => unwrap(api.GET('/api/v1/tokens'));

/** The answer carries the token itself, once. */
export const createToken = (
  input: Body<'/api/v1/tokens', 'post'>,
): Promise<Answer<'/api/v1/tokens', 'post', 201>> => unwrap(api.POST('/api/v1/tokens', { body: input }));

export async function revokeToken(id: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/tokens/{id}', { params: { path: { id } } }));
}

// ---- webhooks ----

export type Webhook = Answer<'/api/v1/org/webhooks', 'get'>[number];
export type WebhookEvent = Webhook['events'][number];
export type Delivery = Answer<'/api/v1/org/webhooks/{id}/deliveries', 'get'>[number];

/** Every event, in the order the form offers them. */
export const WEBHOOK_EVENTS = [
  'recording.done',
  'recording.failed',
  'recording.deleted',
] as const satisfies readonly WebhookEvent[];

const hook = (id: string) => ({ params: { path: { id } } });

export const listWebhooks = (): Promise<Webhook[]> => unwrap(api.GET('/api/v1/org/webhooks'));

/** The answer carries the signing secret, once. */
export const createWebhook = (
  url: string,
  events: WebhookEvent[],
): Promise<Answer<'/api/v1/org/webhooks', 'post', 201>> =>
  unwrap(api.POST('/api/v1/org/webhooks', { body: { url, events } }));

export const updateWebhook = (
  id: string,
  patch: Body<'/api/v1/org/webhooks/{id}', 'patch'>,
): Promise<Webhook> => unwrap(api.PATCH('/api/v1/org/webhooks/{id}', { ...hook(id), body: patch }));

export async function deleteWebhook(id: string): Promise<void> {
  await unwrap(api.DELETE('/api/v1/org/webhooks/{id}', hook(id)));
}

export const rotateWebhookSecret = (
  id: string,
): Promise<Answer<'/api/v1/org/webhooks/{id}/rotate-secret', 'post'>> =>
  unwrap(api.POST('/api/v1/org/webhooks/{id}/rotate-secret', hook(id)));

export const listDeliveries = (id: string): Promise<Delivery[]> =>
  unwrap(api.GET('/api/v1/org/webhooks/{id}/deliveries', hook(id)));

export const redeliver = (id: string, deliveryId: string): Promise<Delivery> =>
  unwrap(
    api.POST('/api/v1/org/webhooks/{id}/deliveries/{deliveryId}/redeliver', {
      params: { path: { id, deliveryId } },
    }),
  );
