import { useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError, endSession, getMe } from '../api';
import { deleteMyAccount, getSettingsWithPolicy, type DepartedPolicy } from '../api-lifecycle';
import { canManageOrg, type MeInfo } from '../api-org';
import { errorText, when } from '../format';
import { navigate } from '../router';
import { FieldError, describedBy } from './org-common';
import { ConfirmDialog } from './recordings-confirm';

/** The password (and, when the account has one, second-factor code) a deletion asks for again. */
export interface ReauthState {
  password: string;
  code: string;
  /** Shown when the account has a second factor, or once the server asked for it. */
  needsCode: boolean;
  errors: { password?: string; code?: string; form?: string };
}

export const reauthStart = (needsCode: boolean): ReauthState => ({
  password: '',
  code: '',
  needsCode,
  errors: {},
});

export function ReauthFields({
  prefix,
  state,
  onChange,
  passwordRef,
  codeRef,
}: {
  prefix: string;
  state: ReauthState;
  onChange: (s: ReauthState) => void;
  passwordRef: React.RefObject<HTMLInputElement | null>;
  codeRef: React.RefObject<HTMLInputElement | null>;
}) {
  return (
    <>
      <label htmlFor={`${prefix}-password`}>Your password</label>
      <input
        id={`${prefix}-password`}
        ref={passwordRef}
        type="password"
        autoComplete="current-password"
        required
        value={state.password}
        aria-invalid={state.errors.password ? true : undefined}
        aria-describedby={describedBy(state.errors.password && `${prefix}-password-error`)}
        onChange={(e) => onChange({ ...state, password: e.target.value })}
      />
      <FieldError id={`${prefix}-password-error`} message={state.errors.password} />
      {state.needsCode && (
        <>
          <label htmlFor={`${prefix}-code`}>Code from your authenticator app</label>
          <input
            id={`${prefix}-code`}
            ref={codeRef}
            required
            autoComplete="one-time-code"
            inputMode="numeric"
            value={state.code}
            aria-invalid={state.errors.code ? true : undefined}
            aria-describedby={describedBy(`${prefix}-code-hint`, state.errors.code && `${prefix}-code-error`)}
            onChange={(e) => onChange({ ...state, code: e.target.value })}
          />
          <p id={`${prefix}-code-hint`} className="hint">
            A current code, or one of your unused recovery codes.
          </p>
          <FieldError id={`${prefix}-code-error`} message={state.errors.code} />
        </>
      )}
    </>
  );
}

/**
 * Maps a refusal of the password or code to the field it is about, with that field to focus (once
 * the confirmation dialog has closed). Null when the error is about neither: the caller shows it.
 */
export function reauthRefusal(
  err: unknown,
  state: ReauthState,
): { state: ReauthState; focus: 'password' | 'code' | null } | null {
  if (!(err instanceof ApiError)) return null;
  if (err.code === 'mfa_required')
    return {
      state: {
        ...state,
        needsCode: true,
        errors: { code: 'Your account has two-step verification: enter a code as well.' },
      },
      focus: 'code',
    };
  if (err.code === 'invalid_credentials') {
    if (/code/i.test(err.message) && state.needsCode)
      return {
        state: { ...state, errors: { code: 'That code was not accepted. Enter the newest code.' } },
        focus: 'code',
      };
    return { state: { ...state, errors: { password: 'Your password is not correct.' } }, focus: 'password' };
  }
  if (err.status === 429)
    return {
      state: { ...state, errors: { form: `${err.message} Wait a while, then try again.` } },
      focus: null,
    };
  return null;
}

/**
 * Focus for a field after a refusal: an effect, so it runs after the dialog's clean-up has put
 * focus back on the button that opened it.
 */
export function useFocusAfter(refs: {
  password: React.RefObject<HTMLInputElement | null>;
  code: React.RefObject<HTMLInputElement | null>;
}): (field: 'password' | 'code' | null) => void {
  const [target, setTarget] = useState<{ field: 'password' | 'code'; n: number } | null>(null);
  const { password, code } = refs;
  useEffect(() => {
    if (target) (target.field === 'password' ? password : code).current?.focus();
  }, [target, password, code]);
  return (field) => {
    if (field) setTarget((t) => ({ field, n: (t?.n ?? 0) + 1 }));
  };
}

const POLICY_TEXT: Record<DepartedPolicy, string> = {
  transfer: 'this organization transfers them to an owner (or, if there is none, an admin)',
  delete: 'this organization deletes them, each with a receipt in the audit log',
};

/**
 * Settings → Security: delete my own account (DELETE /api/v1/me). Login stops at once; the rest
 * (the user row, and the recordings transferred or deleted by the org's policy) within 24 hours.
 */
export function AccountDeletionSection() {
  const [me, setMe] = useState<MeInfo | null>(null);
  const [policy, setPolicy] = useState<DepartedPolicy | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [state, setState] = useState<ReauthState>(reauthStart(false));
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const passwordRef = useRef<HTMLInputElement>(null);
  const codeRef = useRef<HTMLInputElement>(null);
  const focusLater = useFocusAfter({ password: passwordRef, code: codeRef });

  async function load() {
    setLoadError(null);
    try {
      // Fresh, not the header's cached copy: two-step verification may have changed on this page.
      const m = await getMe();
      setMe(m);
      setState((s) => ({ ...s, needsCode: s.needsCode || m.mfaEnabled }));
      // Only owners and admins may read the org's settings; members get the general explanation.
      if (canManageOrg(m))
        getSettingsWithPolicy().then(
          (s) => setPolicy(s.departedUserRecordings),
          () => setPolicy(null),
        );
    } catch (err) {
      setLoadError(errorText(err));
    }
  }
  useEffect(() => {
    void load();
  }, []);

  function ask(e: FormEvent) {
    e.preventDefault();
    if (!state.password) {
      setState({ ...state, errors: { password: 'Enter your password to confirm it is you.' } });
      passwordRef.current?.focus();
      return;
    }
    if (state.needsCode && !state.code.trim()) {
      setState({ ...state, errors: { code: 'Enter a code from your authenticator app.' } });
      codeRef.current?.focus();
      return;
    }
    setState({ ...state, errors: {} });
    setAsking(true);
  }

  async function remove() {
    setBusy(true);
    try {
      const { completeBy } = await deleteMyAccount({
        currentPassword: state.password,
        ...(state.needsCode && state.code.trim() ? { code: state.code.replace(/\s+/g, '') } : {}),
      });
      endSession(
        `Your account was deleted and you were signed out; it can no longer log in. What is left of it is removed by ${when(completeBy)} at the latest.`,
      );
      navigate('/login');
    } catch (err) {
      setAsking(false);
      const refused = reauthRefusal(err, state);
      setState(refused?.state ?? { ...state, errors: { form: `Not deleted: ${errorText(err)}` } });
      focusLater(refused?.focus ?? null);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section
      className="card lifecycle-danger"
      aria-labelledby="delete-account-heading"
      aria-busy={!me && !loadError}
    >
      <h2 id="delete-account-heading">Delete my account</h2>
      {!me && !loadError && <p>Loading…</p>}
      {loadError && (
        <div className="error" role="alert">
          <p className="org-error-text">Could not load your account: {loadError}</p>
          <button type="button" onClick={() => void load()}>
            Try again
          </button>
        </div>
      )}
      {me && !me.organization && (
        <p>Platform accounts are removed by the operator of this Sotto server, not from here.</p>
      )}
      {me?.organization && (
        <>
          <p>
            Deleting your account signs you out on every device at once, and the account can never log in
            again. Within <strong>24 hours</strong> it is removed for good, and your recordings are either
            transferred to a colleague or deleted, as {me.organization.name} decides:{' '}
            {policy
              ? `${POLICY_TEXT[policy]}.`
              : 'an owner or admin chose one or the other (ask them if it matters to you).'}{' '}
            A receipt of what was removed is e-mailed to {me.user.email}. This cannot be undone.
          </p>
          {me.role === 'owner' && (
            <p className="hint">
              If you are the organization's only owner, first make another member an owner (Organization →
              Members), or delete the whole organization (Organization → Data).
            </p>
          )}
          <form onSubmit={ask}>
            <ReauthFields
              prefix="delete-account"
              state={state}
              onChange={setState}
              passwordRef={passwordRef}
              codeRef={codeRef}
            />
            {state.errors.form && (
              <p className="error" role="alert">
                {state.errors.form}
              </p>
            )}
            <button type="submit" className="danger">
              Delete my account…
            </button>
          </form>
          {asking && (
            <ConfirmDialog
              title="Delete your account?"
              confirmLabel={busy ? 'Deleting…' : 'Delete my account'}
              cancelLabel="Keep my account"
              busy={busy}
              onConfirm={() => void remove()}
              onCancel={() => setAsking(false)}
            >
              <p>
                You are signed out at once and cannot log in again. Your recordings are{' '}
                {policy === 'delete'
                  ? 'deleted'
                  : policy === 'transfer'
                    ? 'transferred to an owner or admin'
                    : 'transferred or deleted, as your organization decided'}{' '}
                within 24 hours.
              </p>
            </ConfirmDialog>
          )}
        </>
      )}
    </section>
  );
}
