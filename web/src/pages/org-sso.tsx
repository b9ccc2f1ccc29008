import { useRef, useState, type FormEvent } from 'react';
import {
  deleteSso,
  getSso,
  isOidc,
  isSaml,
  putOidc,
  type OidcConnection,
  type OidcInput,
  type SsoConnection,
  type SsoKind,
} from '../api-integrations';
import { useMe } from '../api-org';
import { when } from '../format';
import {
  Confirm,
  CopyButton,
  ErrorLine,
  FieldError,
  LoadStates,
  Status,
  describedBy,
  useLoad,
  useSectionState,
} from './org-common';
import {
  AdminRoleFields,
  DomainsField,
  SAVED_REQUIRING_SSO,
  SsoFormFooter,
  adminMapping,
  domainsProblem,
  linesOf,
  saveFailure,
  useSharedSsoFields,
} from './org-sso-fields';
import { SamlForm } from './org-sso-saml';

const KIND_NAMES: Record<SsoKind, string> = { oidc: 'OpenID Connect', saml: 'SAML 2.0' };

/**
 * Organization → Single sign-on: the org's identity provider connection. With none, the admin
 * picks a kind; with one, its kind's form shows (OIDC here, SAML in org-sso-saml.tsx). Switching
 * kind means removing the connection first, so a half-filled form never replaces a working one.
 * The client secret is write-only: the API only says one is stored, and the form leaves it out
 * unless a new one is typed.
 */
export function SsoSettingsSection() {
  const [load, reload] = useLoad(getSso);
  const { status, setStatus, error, setError, confirming, setConfirming, confirmed } =
    useSectionState<true>();
  const [kind, setKind] = useState<SsoKind>('oidc');
  const headingRef = useRef<HTMLHeadingElement>(null);
  const me = useMe();
  const connection = load.state === 'ready' ? load.data : null;
  const onSaved = (text: string) => {
    setStatus(text);
    setError(null);
    void reload();
  };

  const remove = () =>
    confirmed(deleteSso, {
      done: 'The single sign-on connection was removed. Everyone signs in with a password again.',
      failed: 'Could not remove the connection',
      reload,
      focus: headingRef,
      clearStatus: true,
    });

  return (
    <section className="card" aria-labelledby="sso-heading" aria-busy={load.state === 'loading'}>
      <h2 id="sso-heading" ref={headingRef} tabIndex={-1}>
        Single sign-on
      </h2>
      <p className="hint">
        Let people sign in through your identity provider (Okta, Entra ID, Google Workspace, Keycloak, …) with
        OpenID Connect or SAML 2.0. People whose email is in an allowed domain use{' '}
        <strong>Continue with SSO</strong> on the login page; new ones get an account as members the first
        time.
      </p>
      <Status text={status} />
      <ErrorLine message={error} />
      <LoadStates load={load} what="the single sign-on connection" onRetry={() => void reload()} />
      {load.state === 'ready' && !connection && (
        <>
          <p className="empty">
            Not set up yet: choose how your identity provider connects, then fill in the form below with its
            values.
          </p>
          <fieldset className="org-fieldset org-sso-kind">
            <legend>Protocol</legend>
            {(Object.keys(KIND_NAMES) as SsoKind[]).map((k) => (
              <label key={k} className="org-radio">
                <input
                  type="radio"
                  name="sso-kind"
                  value={k}
                  checked={kind === k}
                  onChange={() => setKind(k)}
                />
                {KIND_NAMES[k]}
              </label>
            ))}
          </fieldset>
        </>
      )}
      {connection && (isOidc(connection) || isSaml(connection)) && (
        <p className="hint" data-testid="sso-kind-note">
          This organization uses {KIND_NAMES[connection.kind]}. To switch to{' '}
          {KIND_NAMES[connection.kind === 'oidc' ? 'saml' : 'oidc']}, remove this connection below first, then
          set up the other kind.
        </p>
      )}
      {load.state === 'ready' && (connection ? isOidc(connection) : kind === 'oidc') && (
        <OidcForm
          key={connection?.updatedAt ?? 'new'}
          initial={connection && isOidc(connection) ? connection : null}
          onSaved={onSaved}
        />
      )}
      {load.state === 'ready' && (connection ? isSaml(connection) : kind === 'saml') && (
        <SamlForm
          key={connection?.updatedAt ?? 'new'}
          initial={connection && isSaml(connection) ? connection : null}
          orgSlug={me?.organization?.slug ?? null}
          onSaved={onSaved}
        />
      )}
      {connection && !isOidc(connection) && !isSaml(connection) && (
        <OtherKindSummary connection={connection} />
      )}
      {connection && (
        <div className="org-danger-zone">
          <h3>Remove the connection</h3>
          {confirming ? (
            <Confirm
              label="Confirm removing single sign-on"
              question="Remove single sign-on? Continue with SSO stops working; people who only ever signed in through it need a password reset."
              keepLabel="Keep it"
              doLabel="Remove"
              onKeep={() => setConfirming(null)}
              onDo={() => void remove()}
            />
          ) : (
            <button type="button" className="danger" onClick={() => setConfirming(true)}>
              Remove single sign-on…
            </button>
          )}
        </div>
      )}
    </section>
  );
}

function OtherKindSummary({ connection }: { connection: SsoConnection }) {
  return (
    <div className="org-sso-other">
      <p>
        This organization uses a <strong>{connection.kind.toUpperCase()}</strong> connection (allowed domains:{' '}
        {connection.allowedDomains.join(', ')}; require SSO {connection.requireSso ? 'on' : 'off'}; changed{' '}
        {when(connection.updatedAt)}). The panel cannot edit this kind yet: change it through the API (see the
        single sign-on documentation), or remove it below to set up another kind instead.
      </p>
    </div>
  );
}

type OidcErrors = Partial<Record<'issuer' | 'clientId' | 'clientSecret' | 'domains' | 'form', string>>;

function OidcForm({ initial, onSaved }: { initial: OidcConnection | null; onSaved: (text: string) => void }) {
  const [issuer, setIssuer] = useState(initial?.issuer ?? '');
  const [clientId, setClientId] = useState(initial?.clientId ?? '');
  const [secret, setSecret] = useState('');
  const shared = useSharedSsoFields(initial);
  const [errors, setErrors] = useState<OidcErrors>({});
  const [busy, setBusy] = useState(false);
  const refs = {
    issuer: useRef<HTMLInputElement>(null),
    clientId: useRef<HTMLInputElement>(null),
    clientSecret: useRef<HTMLInputElement>(null),
    domains: useRef<HTMLTextAreaElement>(null),
  };

  function fail(field: keyof typeof refs, message: string) {
    setErrors({ [field]: message });
    refs[field].current?.focus();
  }

  async function save(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    const domainList = linesOf(shared.domains.toLowerCase());
    if (!/^https?:\/\/\S+$/.test(issuer.trim()))
      return fail('issuer', 'Enter the issuer URL exactly as your identity provider shows it (https://…).');
    if (!clientId.trim()) return fail('clientId', 'Enter the client ID your identity provider gave you.');
    if (!initial && !secret) return fail('clientSecret', 'Enter the client secret (needed the first time).');
    const domainError = domainsProblem(domainList);
    if (domainError) return fail('domains', domainError);
    const input: OidcInput = {
      issuer: issuer.trim(),
      clientId: clientId.trim(),
      allowedDomains: domainList,
      roleClaim: shared.roleClaim.trim() || null,
      roleMapping: adminMapping(shared.adminValues),
      requireSso: shared.requireSso,
      ...(secret ? { clientSecret: secret } : {}),
    };
    setBusy(true);
    try {
      await putOidc(input);
      setSecret('');
      onSaved(shared.turningOn ? SAVED_REQUIRING_SSO : 'Single sign-on saved.');
    } catch (err) {
      const { message, aboutDomains } = saveFailure(err);
      if (aboutDomains) fail('domains', message);
      else setErrors({ form: message });
    } finally {
      setBusy(false);
    }
  }

  const field = (
    id: string,
    label: string,
    key: 'issuer' | 'clientId' | 'clientSecret',
    value: string,
    set: (v: string) => void,
    hint: string,
    extra: { type?: string; maxLength: number; autoComplete?: string; placeholder?: string },
  ) => (
    <>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        ref={refs[key]}
        type={extra.type ?? 'text'}
        maxLength={extra.maxLength}
        autoComplete={extra.autoComplete ?? 'off'}
        spellCheck={false}
        placeholder={extra.placeholder}
        value={value}
        aria-invalid={errors[key] ? true : undefined}
        aria-describedby={describedBy(`${id}-hint`, errors[key] && `${id}-error`)}
        onChange={(e) => set(e.target.value)}
      />
      <p id={`${id}-hint`} className="hint">
        {hint}
      </p>
      <FieldError id={`${id}-error`} message={errors[key]} />
    </>
  );

  return (
    <form className="org-sso-form" onSubmit={(e) => void save(e)} aria-label="OpenID Connect connection">
      <h3>OpenID Connect</h3>
      {initial && (
        <div className="org-secret">
          <p>
            Redirect URI to register with your identity provider (a confidential web client, authorization
            code flow, scopes <code>openid email profile</code>):
          </p>
          <code className="secret" data-testid="sso-redirect-uri">
            {initial.redirectUri}
          </code>
          <div>
            <CopyButton text={initial.redirectUri} label="Copy redirect URI" />
          </div>
        </div>
      )}
      {field(
        'sso-issuer',
        'Issuer URL',
        'issuer',
        issuer,
        setIssuer,
        'The issuer identifier, e.g. https://login.example.com/realms/acme; Sotto reads its discovery document.',
        { maxLength: 2048, type: 'url' },
      )}
      {field(
        'sso-client-id',
        'Client ID',
        'clientId',
        clientId,
        setClientId,
        'From the client you created.',
        {
          maxLength: 512,
        },
      )}
      {field(
        'sso-client-secret',
        'Client secret',
        'clientSecret',
        secret,
        setSecret,
        initial
          ? 'A secret is stored (it is never shown). Leave this empty to keep it, or type a new one to replace it.'
          : 'Stored encrypted and never shown again.',
        {
          maxLength: 512,
          type: 'password',
          autoComplete: 'new-password',
          ...(initial ? { placeholder: 'Stored: leave empty to keep' } : {}),
        },
      )}
      <DomainsField
        idPrefix="sso"
        value={shared.domains}
        onChange={shared.setDomains}
        error={errors.domains}
        inputRef={refs.domains}
      />
      <AdminRoleFields
        idPrefix="sso"
        claimLabel="Role claim"
        claim={shared.roleClaim}
        onClaim={shared.setRoleClaim}
        values={shared.adminValues}
        onValues={shared.setAdminValues}
      >
        For example the claim <code>groups</code> and the value <code>sotto-admins</code>. Applied only when
        an account is first created; everyone else starts as a member, and nobody becomes an owner this way.
      </AdminRoleFields>
      <SsoFormFooter shared={shared} formError={errors.form} busy={busy} isNew={!initial} />
    </form>
  );
}
