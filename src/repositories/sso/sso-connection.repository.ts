import type { Queryable } from '../../db/database.js';
import type { OrgRole } from '../../domain/roles.js';

/** An org's connection as stored (an OIDC secret still sealed). */
export interface SsoConnectionRow {
  id: string;
  orgId: string;
  kind: 'oidc' | 'saml';
  /** OIDC: the issuer identifier. SAML: the IdP's entity id (the assertions' Issuer). */
  issuer: string;
  /** OIDC only. */
  clientId: string | null;
  clientSecretEnc: Buffer | null;
  /** SAML only: the IdP's HTTP-Redirect SSO URL and its signing certificates (PEM). */
  samlSsoUrl: string | null;
  samlCerts: string[];
  allowedDomains: string[];
  roleClaim: string | null;
  roleMapping: Record<string, OrgRole>;
  requireSso: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** What a sign-in needs before any tenant exists: which connection, of which org. */
export interface SsoEntry {
  connectionId: string;
  orgId: string;
}

/** A connection entry with what the SAML routes need before any tenant exists. */
export interface SsoSamlEntry extends SsoEntry {
  kind: 'oidc' | 'saml';
  orgSlug: string;
}

export interface SsoLoginState {
  connectionId: string;
  orgId: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  expiresAt: Date;
}

interface DbRow {
  id: string;
  org_id: string;
  kind: 'oidc' | 'saml';
  issuer: string;
  client_id: string | null;
  client_secret_enc: Uint8Array | null;
  saml_sso_url: string | null;
  saml_certs: string[] | null;
  allowed_domains: string[];
  role_claim: string | null;
  role_mapping: Record<string, OrgRole> | string;
  require_sso: boolean;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `id, org_id, kind, issuer, client_id, client_secret_enc, saml_sso_url, saml_certs,
  allowed_domains, role_claim, role_mapping, require_sso, created_at, updated_at`;

const map = (r: DbRow): SsoConnectionRow => ({
  id: r.id,
  orgId: r.org_id,
  kind: r.kind,
  issuer: r.issuer,
  clientId: r.client_id,
  clientSecretEnc: r.client_secret_enc ? Buffer.from(r.client_secret_enc) : null,
  samlSsoUrl: r.saml_sso_url,
  samlCerts: r.saml_certs ?? [],
  allowedDomains: r.allowed_domains,
  roleClaim: r.role_claim,
  // pg parses jsonb; keep a string fallback for drivers that hand it over raw.
  roleMapping: typeof r.role_mapping === 'string' ? JSON.parse(r.role_mapping) : r.role_mapping,
  requireSso: r.require_sso,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * sso_connections and sso_login_states. Admin reads and writes run in the org's tenant
 * transaction; the sign-in lookups (by email domain, org slug, connection id) and the login
 * states run in the system context, because no tenant is known until the IdP has answered.
 */
export const ssoConnectionRepository = {
  async findForOrg(tx: Queryable, orgId: string): Promise<SsoConnectionRow | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM sso_connections WHERE org_id = $1`, [
      orgId,
    ]);
    return rows[0] && map(rows[0]);
  },

  /** Tenant or system context: one connection by id, checked against the org it must belong to. */
  async find(tx: Queryable, orgId: string, id: string): Promise<SsoConnectionRow | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM sso_connections WHERE id = $1 AND org_id = $2`,
      [id, orgId],
    );
    return rows[0] && map(rows[0]);
  },

  async upsert(
    tx: Queryable,
    c: {
      id: string;
      orgId: string;
      kind: 'oidc' | 'saml';
      issuer: string;
      clientId: string | null;
      clientSecretEnc: Buffer | null;
      samlSsoUrl: string | null;
      samlCerts: string[] | null;
      allowedDomains: string[];
      roleClaim: string | null;
      roleMapping: Record<string, OrgRole>;
      requireSso: boolean;
      now: Date;
    },
  ): Promise<SsoConnectionRow> {
    const { rows } = await tx.query<DbRow>(
      `INSERT INTO sso_connections (id, org_id, issuer, client_id, client_secret_enc, allowed_domains,
         role_claim, role_mapping, require_sso, created_at, updated_at, kind, saml_sso_url, saml_certs)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $10, $11, $12, $13)
       ON CONFLICT (org_id) DO UPDATE SET issuer = EXCLUDED.issuer, client_id = EXCLUDED.client_id,
         client_secret_enc = EXCLUDED.client_secret_enc, allowed_domains = EXCLUDED.allowed_domains,
         kind = EXCLUDED.kind, saml_sso_url = EXCLUDED.saml_sso_url, saml_certs = EXCLUDED.saml_certs,
         role_claim = EXCLUDED.role_claim, role_mapping = EXCLUDED.role_mapping,
         require_sso = EXCLUDED.require_sso, updated_at = EXCLUDED.updated_at
       RETURNING ${COLUMNS}`,
      [
        c.id,
        c.orgId,
        c.issuer,
        c.clientId,
        c.clientSecretEnc,
        c.allowedDomains,
        c.roleClaim,
        JSON.stringify(c.roleMapping),
        c.requireSso,
        c.now,
        c.kind,
        c.samlSsoUrl,
        c.samlCerts,
      ],
    );
    return map(rows[0]!);
  },

  async remove(tx: Queryable, orgId: string): Promise<string | undefined> {
    const { rows } = await tx.query<{ id: string }>(
      'DELETE FROM sso_connections WHERE org_id = $1 RETURNING id',
      [orgId],
    );
    return rows[0]?.id;
  },

  /** System context: the connection that accepts this email domain (at most one by design). */
  async entryByDomain(tx: Queryable, domain: string): Promise<SsoEntry | undefined> {
    const { rows } = await tx.query<{ id: string; org_id: string }>(
      `SELECT id, org_id FROM sso_connections WHERE allowed_domains @> ARRAY[$1]::text[]
        ORDER BY created_at LIMIT 2`,
      [domain],
    );
    // Two orgs claiming one domain is ambiguous: neither gets the sign-in (docs/sso.md).
    return rows.length === 1 ? { connectionId: rows[0]!.id, orgId: rows[0]!.org_id } : undefined;
  },

  /** System context: an org's connection by the org's slug. */
  async entryBySlug(tx: Queryable, slug: string): Promise<SsoEntry | undefined> {
    const { rows } = await tx.query<{ id: string; org_id: string }>(
      `SELECT c.id, c.org_id FROM sso_connections c JOIN orgs o ON o.id = c.org_id WHERE o.slug = $1`,
      [slug],
    );
    return rows[0] && { connectionId: rows[0].id, orgId: rows[0].org_id };
  },

  /** System context: whether password login is refused for members of this org. */
  async requiresSso(tx: Queryable, orgId: string): Promise<boolean> {
    const { rows } = await tx.query<{ require_sso: boolean }>(
      'SELECT require_sso FROM sso_connections WHERE org_id = $1',
      [orgId],
    );
    return rows[0]?.require_sso === true;
  },

  /** Tenant context: ends the live sessions of every non-owner of the org (require SSO turned on). */
  async revokeNonOwnerSessions(
    tx: Queryable,
    orgId: string,
    reason: string,
    now: Date,
    exceptSessionId: string,
  ): Promise<number> {
    const { rowCount } = await tx.query(
      `UPDATE sessions s SET revoked_at = $3, revoked_reason = $2
         FROM users u
        WHERE s.user_id = u.id AND s.org_id = $1 AND u.org_id = $1 AND u.role <> 'owner'
          AND s.revoked_at IS NULL AND s.id <> $4`,
      [orgId, reason, now, exceptSessionId],
    );
    return rowCount;
  },

  async insertState(tx: Queryable, handleHash: string, s: SsoLoginState, now: Date): Promise<void> {
    // Expired states of abandoned sign-ins go as new ones arrive: the table stays small.
    await tx.query('DELETE FROM sso_login_states WHERE expires_at < $1', [now]);
    await tx.query(
      `INSERT INTO sso_login_states (handle_hash, connection_id, org_id, state, nonce, code_verifier,
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [handleHash, s.connectionId, s.orgId, s.state, s.nonce, s.codeVerifier, now, s.expiresAt],
    );
  },

  /** Single use: the state is deleted as it is read, whatever happens next. */
  async consumeState(tx: Queryable, handleHash: string): Promise<SsoLoginState | undefined> {
    const { rows } = await tx.query<{
      connection_id: string;
      org_id: string;
      state: string;
      nonce: string;
      code_verifier: string;
      expires_at: Date;
    }>(
      `DELETE FROM sso_login_states WHERE handle_hash = $1
       RETURNING connection_id, org_id, state, nonce, code_verifier, expires_at`,
      [handleHash],
    );
    const r = rows[0];
    return (
      r && {
        connectionId: r.connection_id,
        orgId: r.org_id,
        state: r.state,
        nonce: r.nonce,
        codeVerifier: r.code_verifier,
        expiresAt: r.expires_at,
      }
    );
  },

  /** System context: an org's connection kind and slug (SAML metadata and AuthnRequest). */
  async samlEntry(tx: Queryable, orgId: string): Promise<SsoSamlEntry | undefined> {
    const { rows } = await tx.query<{ id: string; org_id: string; kind: 'oidc' | 'saml'; slug: string }>(
      `SELECT c.id, c.org_id, c.kind, o.slug FROM sso_connections c JOIN orgs o ON o.id = c.org_id
        WHERE c.org_id = $1`,
      [orgId],
    );
    const r = rows[0];
    return r && { connectionId: r.id, orgId: r.org_id, kind: r.kind, orgSlug: r.slug };
  },

  /** System context: the org of a slug, with its connection if any (SP metadata). */
  async samlEntryBySlug(tx: Queryable, slug: string): Promise<SsoSamlEntry | undefined> {
    const { rows } = await tx.query<{ id: string; org_id: string; kind: 'oidc' | 'saml'; slug: string }>(
      `SELECT c.id, c.org_id, c.kind, o.slug FROM sso_connections c JOIN orgs o ON o.id = c.org_id
        WHERE o.slug = $1`,
      [slug],
    );
    const r = rows[0];
    return r && { connectionId: r.id, orgId: r.org_id, kind: r.kind, orgSlug: r.slug };
  },

  /**
   * System context: records a used assertion id until it expires. False when it was already
   * there: a replay. Expired ids go first (they can no longer be replayed: the assertion's own
   * NotOnOrAfter refuses it).
   */
  async useAssertion(tx: Queryable, orgId: string, assertionId: string, expiresAt: Date, now: Date) {
    await tx.query('DELETE FROM sso_saml_assertions WHERE expires_at < $1', [now]);
    const { rowCount } = await tx.query(
      `INSERT INTO sso_saml_assertions (org_id, assertion_id, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (org_id, assertion_id) DO NOTHING`,
      [orgId, assertionId, expiresAt],
    );
    return rowCount === 1;
  },

  /** System context: the scheduler's sweep of expired assertion ids and login states. */
  async sweepExpired(tx: Queryable, now: Date): Promise<number> {
    const a = await tx.query('DELETE FROM sso_saml_assertions WHERE expires_at < $1', [now]);
    const b = await tx.query('DELETE FROM sso_login_states WHERE expires_at < $1', [now]);
    return a.rowCount + b.rowCount;
  },
};
