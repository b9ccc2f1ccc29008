import { useState, type ReactNode, type RefObject } from 'react';
import { ApiError } from '../api';
import type { OidcConnection, SamlConnection } from '../api-integrations';
import { errorText } from '../format';
import { ErrorLine, FieldError, describedBy } from './org-common';

/**
 * What the OIDC form (org-sso.tsx) and the SAML form (org-sso-saml.tsx) share: allowed domains,
 * admins from the IdP, require SSO and the submit row. Element ids take a prefix ("sso" or
 * "sso-saml") so both forms keep their own ids.
 */

/** Same rule as the API (src/http/routes/org/sso.schema.ts), so most mistakes are caught here. */
export const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/;

/** One entry per line (or comma), trimmed, without repeats. */
export const linesOf = (text: string) => [
  ...new Set(
    text
      .split(/[\n,]/)
      .map((w) => w.trim())
      .filter(Boolean),
  ),
];

/** Why these domains cannot be saved, or null when they can. */
export function domainsProblem(domainList: string[]): string | null {
  const bad = domainList.find((d) => !DOMAIN.test(d));
  if (domainList.length > 0 && !bad) return null;
  return bad ? `"${bad}" is not a domain name such as example.com.` : 'Enter at least one email domain.';
}

/** The IdP values that make someone an admin, one per line, as the API's role mapping. */
export function adminMapping(adminValues: string): Record<string, 'admin'> {
  const roleMapping: Record<string, 'admin'> = {};
  for (const v of linesOf(adminValues)) roleMapping[v] = 'admin';
  return roleMapping;
}

/** The text of a failed save; a conflict is about the domains (taken by another organization). */
export const saveFailure = (err: unknown) => ({
  message: err instanceof ApiError ? `Not saved: ${err.message}` : errorText(err),
  aboutDomains: err instanceof ApiError && err.code === 'conflict',
});

export const SAVED_REQUIRING_SSO =
  'Saved. Require SSO is on: admins and members now sign in through your identity provider.';

/** The state of the fields both kinds have, started from the stored connection. */
export function useSharedSsoFields(initial: OidcConnection | SamlConnection | null) {
  const [domains, setDomains] = useState(initial?.allowedDomains.join('\n') ?? '');
  const [roleClaim, setRoleClaim] = useState(initial?.roleClaim ?? '');
  const [adminValues, setAdminValues] = useState(
    Object.entries(initial?.roleMapping ?? {})
      .filter(([, r]) => r === 'admin')
      .map(([v]) => v)
      .join('\n'),
  );
  const [requireSso, setRequireSso] = useState(initial?.requireSso ?? false);
  const turningOn = requireSso && !initial?.requireSso;
  return {
    domains,
    setDomains,
    roleClaim,
    setRoleClaim,
    adminValues,
    setAdminValues,
    requireSso,
    setRequireSso,
    turningOn,
  };
}

/** Allowed email domains, with its hint and error. */
export function DomainsField({
  idPrefix,
  value,
  onChange,
  error,
  inputRef,
}: {
  idPrefix: string;
  value: string;
  onChange: (v: string) => void;
  error: string | undefined;
  inputRef: RefObject<HTMLTextAreaElement | null>;
}) {
  const id = `${idPrefix}-domains`;
  return (
    <>
      <label htmlFor={id}>Allowed email domains</label>
      <textarea
        id={id}
        ref={inputRef}
        rows={3}
        spellCheck={false}
        value={value}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(`${id}-hint`, error && `${id}-error`)}
        onChange={(e) => onChange(e.target.value)}
      />
      <p id={`${id}-hint`} className="hint">
        One per line, such as example.com. Only these emails can sign in through this connection, and the
        domain picks your organization on the login page. A domain can belong to one organization only.
      </p>
      <FieldError id={`${id}-error`} message={error} />
    </>
  );
}

/** The optional claim (OIDC) or attribute (SAML) whose values make a new account an admin. */
export function AdminRoleFields({
  idPrefix,
  claimLabel,
  claim,
  onClaim,
  values,
  onValues,
  children,
}: {
  idPrefix: string;
  claimLabel: string;
  claim: string;
  onClaim: (v: string) => void;
  values: string;
  onValues: (v: string) => void;
  /** The hint, which differs by kind. */
  children: ReactNode;
}) {
  const hintId = `${idPrefix}-role-hint`;
  return (
    <fieldset className="org-fieldset">
      <legend>Admins from the identity provider (optional)</legend>
      <label htmlFor={`${idPrefix}-role-claim`}>{claimLabel}</label>
      <input
        id={`${idPrefix}-role-claim`}
        maxLength={100}
        autoComplete="off"
        spellCheck={false}
        value={claim}
        aria-describedby={hintId}
        onChange={(e) => onClaim(e.target.value)}
      />
      <label htmlFor={`${idPrefix}-admin-values`}>Values that make someone an admin</label>
      <textarea
        id={`${idPrefix}-admin-values`}
        rows={2}
        spellCheck={false}
        value={values}
        aria-describedby={hintId}
        onChange={(e) => onValues(e.target.value)}
      />
      <p id={hintId} className="hint">
        {children}
      </p>
    </fieldset>
  );
}

/** Require SSO, with the warning shown while it is being turned on (both kinds share it). */
export function RequireSsoField({
  checked,
  turningOn,
  onChange,
}: {
  checked: boolean;
  turningOn: boolean;
  onChange: (on: boolean) => void;
}) {
  return (
    <>
      <label className="org-radio">
        <input
          type="checkbox"
          checked={checked}
          aria-describedby="sso-require-hint"
          onChange={(e) => onChange(e.target.checked)}
        />
        Require single sign-on for admins and members
      </label>
      <p
        id="sso-require-hint"
        className={turningOn ? 'warning' : 'hint'}
        role={turningOn ? 'alert' : undefined}
      >
        {turningOn
          ? 'When you save, every admin and member except you is signed out at once and can then sign in only through your identity provider; password login is refused for them. Owners keep password login as a break-glass path for when the identity provider is down.'
          : 'Password login is refused for admins and members; owners keep it as a break-glass path.'}
      </p>
    </>
  );
}

/** Require SSO, the form's error and the submit button: the end of both forms. */
export function SsoFormFooter({
  shared,
  formError,
  busy,
  isNew,
}: {
  shared: ReturnType<typeof useSharedSsoFields>;
  formError: string | undefined;
  busy: boolean;
  isNew: boolean;
}) {
  return (
    <>
      <RequireSsoField
        checked={shared.requireSso}
        turningOn={shared.turningOn}
        onChange={shared.setRequireSso}
      />
      <ErrorLine message={formError ?? null} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Saving…' : isNew ? 'Set up single sign-on' : 'Save changes'}
      </button>
    </>
  );
}
