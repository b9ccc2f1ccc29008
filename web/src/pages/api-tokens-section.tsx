import { useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import {
  API_SCOPES,
  createToken,
  listTokens,
  revokeToken,
  type ApiScope,
  type ApiToken,
} from '../api-integrations';
import { errorText, when } from '../format';
import {
  Confirm,
  FieldError,
  HASH_ONLY_NOTE,
  ListStates,
  SecretOnce,
  describedBy,
  useLoad,
  useSectionState,
} from './org-common';

const SCOPE_TEXT: Record<ApiScope, string> = {
  'recordings:read': 'Read recordings, transcripts and reports',
  'recordings:write': 'Upload, edit and delete recordings; live recordings',
  'live:ingest': 'Stream live audio only (sotto bot)',
  'org:read': 'Read the organization and its members',
  'org:admin': 'Administer the organization (owners and admins)',
  'audit:read': 'Read the audit log (owners and admins)',
};

const EXPIRY_DAYS = [7, 30, 90, 365] as const;

const STATUS_TEXT: Record<ApiToken['status'], string> = {
  active: 'Active',
  expired: 'Expired',
  revoked: 'Revoked',
};

/**
 * Settings → Security → API tokens: the user's own personal tokens for scripts and `sotto bot`.
 * The token is in the creation answer only; lists show name, scopes and dates.
 */
export function ApiTokensSection() {
  const [load, reload] = useLoad(listTokens);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<ApiScope[]>(['recordings:read']);
  const [days, setDays] = useState<number>(90);
  const [errors, setErrors] = useState<{ name?: string; scopes?: string }>({});
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const { status, setStatus, error, setError, confirming, setConfirming, confirmed } =
    useSectionState<string>();
  const [busy, setBusy] = useState(false);
  const nameRef = useRef<HTMLInputElement>(null);
  const tokenRef = useRef<HTMLHeadingElement>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);

  async function create(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    setError(null);
    setStatus('');
    setCreated(null);
    if (!name.trim()) {
      setErrors({ name: 'Give the token a name that says where it is used, such as "zoom bot".' });
      nameRef.current?.focus();
      return;
    }
    if (scopes.length === 0) {
      setErrors({ scopes: 'Choose at least one thing the token may do.' });
      return;
    }
    setBusy(true);
    try {
      const t = await createToken({ name: name.trim(), scopes, expiresInDays: days });
      setCreated({ name: t.name, token: t.token });
      setName('');
      await reload();
      tokenRef.current?.focus();
    } catch (err) {
      // A scope the role cannot use, too many tokens, a too-long lifetime: the API says which.
      const message = err instanceof ApiError ? `Not created: ${err.message}` : errorText(err);
      if (err instanceof ApiError && err.status < 500 && /scope/i.test(err.message))
        setErrors({ scopes: message });
      else setErrors({ name: message });
      nameRef.current?.focus();
    } finally {
      setBusy(false);
    }
  }

  const revoke = (t: ApiToken) =>
    confirmed(() => revokeToken(t.id), {
      done: `The token ${t.name} was revoked; it stops working at once.`,
      failed: `Could not revoke ${t.name}`,
      reload,
      focus: headingRef,
    });

  const toggle = (s: ApiScope, on: boolean) =>
    setScopes(on ? API_SCOPES.filter((x) => x === s || scopes.includes(x)) : scopes.filter((x) => x !== s));

  return (
    <section className="card" aria-labelledby="tokens-heading" aria-busy={load.state === 'loading'}>
      <h2 id="tokens-heading" ref={headingRef} tabIndex={-1}>
        API tokens
      </h2>
      <p className="hint">
        For scripts, integrations and <code>sotto bot</code>: send it as <code>Authorization: Bearer …</code>.
        A token acts as you, limited to what you tick here and never more than your role allows. It cannot
        change your password, sign-in or tokens.
      </p>
      <form onSubmit={(e) => void create(e)} aria-label="New API token">
        <label htmlFor="token-name">Token name</label>
        <input
          id="token-name"
          ref={nameRef}
          maxLength={100}
          autoComplete="off"
          value={name}
          aria-invalid={errors.name ? true : undefined}
          aria-describedby={describedBy(errors.name && 'token-name-error')}
          onChange={(e) => setName(e.target.value)}
        />
        <FieldError id="token-name-error" message={errors.name} />
        <fieldset
          className="org-fieldset"
          aria-describedby={describedBy(errors.scopes && 'token-scopes-error')}
        >
          <legend>What it may do</legend>
          {API_SCOPES.map((s) => (
            <label key={s} className="org-radio">
              <input
                type="checkbox"
                checked={scopes.includes(s)}
                onChange={(e) => toggle(s, e.target.checked)}
              />
              <span>
                {SCOPE_TEXT[s]} <code className="org-scope">{s}</code>
              </span>
            </label>
          ))}
          <FieldError id="token-scopes-error" message={errors.scopes} />
        </fieldset>
        <label htmlFor="token-expiry">Expires after</label>
        <select
          id="token-expiry"
          className="org-select"
          value={days}
          onChange={(e) => setDays(Number(e.target.value))}
        >
          {EXPIRY_DAYS.map((d) => (
            <option key={d} value={d}>
              {d} days
            </option>
          ))}
        </select>
        <div>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create token'}
          </button>
        </div>
      </form>
      {created && (
        <SecretOnce
          title={`Token ${created.name}`}
          secret={created.token}
          note={HASH_ONLY_NOTE}
          testId="api-token"
          copyLabel="Copy token"
          headingRef={tokenRef}
          onHide={() => setCreated(null)}
        />
      )}
      <ListStates
        status={status}
        error={error}
        load={load}
        what="your API tokens"
        onRetry={() => void reload()}
        empty="No API tokens yet. Create one above when a script or bot needs access."
      />
      {load.state === 'ready' && load.data.length > 0 && (
        <ul className="org-list" aria-label="API tokens">
          {load.data.map((t) => (
            <li key={t.id} className="org-row">
              <div className="org-row-main">
                <strong>{t.name}</strong>
                <span className={`status org-token-${t.status}`}>{STATUS_TEXT[t.status]}</span>
                <span className="meta">
                  {t.scopes.join(', ')} · {t.status === 'expired' ? 'expired' : 'expires'} {when(t.expiresAt)}{' '}
                  · {t.lastUsedAt ? `last used ${when(t.lastUsedAt)}` : 'never used'}
                  {t.revokedAt && ` · revoked ${when(t.revokedAt)}`}
                </span>
              </div>
              {t.status === 'active' &&
                (confirming === t.id ? (
                  <Confirm
                    label={`Confirm revoking ${t.name}`}
                    question={`Revoke ${t.name}? Anything using it stops working at once.`}
                    keepLabel="Keep it"
                    doLabel="Revoke"
                    onKeep={() => setConfirming(null)}
                    onDo={() => void revoke(t)}
                  />
                ) : (
                  <div className="org-actions">
                    <button type="button" aria-label={`Revoke ${t.name}`} onClick={() => setConfirming(t.id)}>
                      Revoke…
                    </button>
                  </div>
                ))}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
