import { useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import {
  IDP_METADATA_MAX,
  putSaml,
  spMetadataUrl,
  type SamlConnection,
  type SamlInput,
} from '../api-integrations';
import { errorText, when } from '../format';
import { CopyButton, FieldError, describedBy } from './org-common';
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

const count = (n: number) => n.toLocaleString('en');

/** A value to give the IdP, with its copy button. */
function Given({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>
        <code className="org-url" data-testid={testId}>
          {value}
        </code>
        <div>
          <CopyButton text={value} label={`Copy ${label}`} />
        </div>
      </dd>
    </>
  );
}

/** What to give the IdP (once saved), and what Sotto kept of the IdP's metadata. */
function SamlValues({ connection, orgSlug }: { connection: SamlConnection; orgSlug: string | null }) {
  const { saml } = connection;
  return (
    <div className="org-secret">
      <h4>Give these to your identity provider</h4>
      <dl className="org-saml-facts">
        <Given label="SP entity ID" value={saml.spEntityId} testId="saml-sp-entity-id" />
        <Given label="ACS URL" value={saml.acsUrl} testId="saml-acs-url" />
        {orgSlug && (
          <Given
            label="SP metadata URL"
            value={spMetadataUrl(saml.acsUrl, orgSlug)}
            testId="saml-sp-metadata-url"
          />
        )}
      </dl>
      <p className="hint">
        The ACS URL takes the HTTP-POST binding. The identity provider must sign the assertion (RSA-SHA256)
        and send the email as an email-format NameID or an <code>email</code> attribute; do not encrypt
        assertions.
      </p>
      <h4>From your identity provider's metadata</h4>
      <dl className="org-saml-facts">
        <dt>IdP entity ID</dt>
        <dd>
          <code className="org-url" data-testid="saml-idp-entity-id">
            {connection.issuer}
          </code>
        </dd>
        <dt>IdP sign-in URL</dt>
        <dd>
          <code className="org-url" data-testid="saml-idp-sso-url">
            {saml.idpSsoUrl}
          </code>
        </dd>
        <dt>Signing certificates</dt>
        <dd>
          <ul className="org-saml-certs" aria-label="Signing certificates (SHA-256 fingerprints)">
            {saml.certificates.map((c) => (
              <li key={c.fingerprint256}>
                <code className="org-url" data-testid="saml-cert-fingerprint">
                  {c.fingerprint256}
                </code>
                <span className="meta"> valid until {when(c.validTo)}</span>
              </li>
            ))}
          </ul>
        </dd>
      </dl>
    </div>
  );
}

type SamlErrors = Partial<Record<'metadata' | 'domains' | 'form', string>>;

/**
 * The SAML 2.0 form. The API keeps only the entity id, sign-in URL and certificates of the IdP
 * metadata, not the document, and wants the document on every save: changing the domains of an
 * existing connection means giving the metadata again (the hint says so).
 */
export function SamlForm({
  initial,
  orgSlug,
  onSaved,
}: {
  initial: SamlConnection | null;
  orgSlug: string | null;
  onSaved: (text: string) => void;
}) {
  const [xml, setXml] = useState('');
  const [fileName, setFileName] = useState('');
  const shared = useSharedSsoFields(initial);
  const [errors, setErrors] = useState<SamlErrors>({});
  const [busy, setBusy] = useState(false);
  const refs = { metadata: useRef<HTMLTextAreaElement>(null), domains: useRef<HTMLTextAreaElement>(null) };
  const tooBig = xml.length > IDP_METADATA_MAX;

  function fail(field: keyof typeof refs, message: string) {
    setErrors({ [field]: message });
    refs[field].current?.focus();
  }

  async function readFile(file: File | undefined) {
    if (!file) return;
    setErrors({});
    // Bytes ≥ characters, so a file four times the limit cannot fit; not read at all.
    if (file.size > IDP_METADATA_MAX * 4)
      return fail(
        'metadata',
        `${file.name} is too large for IdP metadata (at most ${count(IDP_METADATA_MAX)} characters).`,
      );
    try {
      const text = await file.text();
      setFileName(file.name);
      setXml(text);
      if (text.length > IDP_METADATA_MAX)
        fail(
          'metadata',
          `${file.name} has ${count(text.length)} characters; the limit is ${count(IDP_METADATA_MAX)}. Download the metadata of this one application, not of the whole identity provider.`,
        );
    } catch (err) {
      fail('metadata', `Could not read ${file.name}: ${errorText(err)}`);
    }
  }

  async function save(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    const domainList = linesOf(shared.domains.toLowerCase());
    if (!xml.trim())
      return fail(
        'metadata',
        initial
          ? 'Give the metadata again: Sotto keeps only what it needs from it, so every save needs the document.'
          : "Choose your identity provider's metadata file, or paste its XML.",
      );
    if (tooBig)
      return fail(
        'metadata',
        `The metadata has ${count(xml.length)} characters; the limit is ${count(IDP_METADATA_MAX)}.`,
      );
    const domainError = domainsProblem(domainList);
    if (domainError) return fail('domains', domainError);
    const input: SamlInput = {
      idpMetadataXml: xml,
      allowedDomains: domainList,
      roleClaim: shared.roleClaim.trim() || null,
      roleMapping: adminMapping(shared.adminValues),
      requireSso: shared.requireSso,
    };
    setBusy(true);
    try {
      await putSaml(input);
      onSaved(
        shared.turningOn
          ? SAVED_REQUIRING_SSO
          : 'Single sign-on saved. Give the values shown to your identity provider.',
      );
    } catch (err) {
      const { message, aboutDomains } = saveFailure(err);
      if (aboutDomains) fail('domains', message);
      else if (err instanceof ApiError && /idpMetadataXml/.test(err.message))
        fail(
          'metadata',
          `Not saved, the metadata was refused: ${err.message.replace(/^idpMetadataXml: /, '')}`,
        );
      else setErrors({ form: message });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="org-sso-form" onSubmit={(e) => void save(e)} aria-label="SAML 2.0 connection">
      <h3>SAML 2.0</h3>
      {initial && <SamlValues connection={initial} orgSlug={orgSlug} />}
      {!initial && (
        <p className="hint">
          Once saved, this screen shows the SP entity ID, ACS URL and SP metadata URL to enter in your
          identity provider's SAML application.
        </p>
      )}
      <label htmlFor="sso-saml-metadata">Identity provider metadata (XML)</label>
      <div className="org-saml-file">
        <input
          id="sso-saml-file"
          className="visually-hidden"
          type="file"
          accept=".xml,application/xml,text/xml,application/samlmetadata+xml"
          aria-describedby="sso-saml-metadata-hint"
          onChange={(e) => {
            void readFile(e.target.files?.[0]);
            e.target.value = '';
          }}
        />
        <label htmlFor="sso-saml-file" className="button">
          Choose a metadata file
        </label>
        {fileName && <span className="meta">Read from {fileName}</span>}
      </div>
      <textarea
        id="sso-saml-metadata"
        ref={refs.metadata}
        rows={6}
        spellCheck={false}
        className="org-saml-xml"
        placeholder={initial ? 'Stored: give the metadata again to save changes' : '<md:EntityDescriptor …>'}
        value={xml}
        aria-invalid={errors.metadata || tooBig ? true : undefined}
        aria-describedby={describedBy('sso-saml-metadata-hint', errors.metadata && 'sso-saml-metadata-error')}
        onChange={(e) => {
          setFileName('');
          setXml(e.target.value);
        }}
      />
      <p id="sso-saml-metadata-hint" className={tooBig ? 'warning' : 'hint'} data-testid="saml-metadata-size">
        {xml ? `${count(xml.length)} of at most ${count(IDP_METADATA_MAX)} characters. ` : ''}
        Download it from your identity provider's SAML application, or paste it. Sotto keeps the IdP's entity
        ID, sign-in URL and signing certificates from it
        {initial ? '; every save needs the document again, as it is not stored' : ''}.
      </p>
      <FieldError id="sso-saml-metadata-error" message={errors.metadata} />
      <DomainsField
        idPrefix="sso-saml"
        value={shared.domains}
        onChange={shared.setDomains}
        error={errors.domains}
        inputRef={refs.domains}
      />
      <AdminRoleFields
        idPrefix="sso-saml"
        claimLabel="Role attribute"
        claim={shared.roleClaim}
        onClaim={shared.setRoleClaim}
        values={shared.adminValues}
        onValues={shared.setAdminValues}
      >
        The name of a SAML attribute, for example <code>groups</code>, and the value <code>sotto-admins</code>
        . Applied only when an account is first created; everyone else starts as a member, and nobody becomes
        an owner this way.
      </AdminRoleFields>
      <SsoFormFooter shared={shared} formError={errors.form} busy={busy} isNew={!initial} />
    </form>
  );
}
