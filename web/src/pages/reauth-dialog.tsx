import { useEffect, useRef, useState, type FormEvent } from 'react';
import {
  adoptCookieSession,
  ApiError,
  isOffline,
  onSessionElsewhere,
  reauthenticate,
  setReauthHandler,
} from '../api';
import { errorText } from '../format';
import { SecondFactorField } from './second-factor-field';

type Step = 'password' | 'totp' | 'recovery' | 'sso';

/** What a refused sign-in means, as a sentence for the field it concerns. */
function refusal(err: unknown, step: Step): string {
  if (err instanceof ApiError) {
    if (err.code === 'invalid_credentials')
      return step === 'password'
        ? 'That password is not right. Try again.'
        : 'That code was not accepted. Check it and try again.';
    if (err.code === 'other_account') return err.message;
    if (err.status === 429) return 'Too many attempts. Wait a minute, then try again.';
    if (isOffline(err)) return err.message;
  }
  return errorText(err);
}

/**
 * The session ended under a signed-in page (revoked on another device, expired): instead of
 * dropping the person on the log-in page with their work gone, this modal asks them to sign in
 * again — password, then the authenticator or a recovery code when the account has two-step
 * verification, or single sign-on in a new tab when that is how they sign in — and the request
 * that was refused (a Save, a rename) is then sent again by api.ts. "Log out instead" ends the
 * session as before (unsaved transcript edits still come back after logging in: edit-drafts.ts).
 */
export function ReauthDialog({ email }: { email: string | null }) {
  const [pending, setPending] = useState<((ok: boolean) => void) | null>(null);

  useEffect(() => {
    setReauthHandler(
      () =>
        new Promise<boolean>((resolve) => {
          // A function in state must be wrapped, or React would call it as an updater.
          setPending(() => resolve);
        }),
    );
    return () => setReauthHandler(null);
  }, []);

  if (!pending) return null;
  const finish = (ok: boolean) => {
    setPending(null);
    pending(ok);
  };
  return <ReauthForm knownEmail={email} onDone={finish} />;
}

function ReauthForm({ knownEmail, onDone }: { knownEmail: string | null; onDone: (ok: boolean) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const first = useRef<HTMLInputElement>(null);
  const [step, setStep] = useState<Step>('password');
  const [email, setEmail] = useState(knownEmail ?? '');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [ssoOpened, setSsoOpened] = useState(false);

  useEffect(() => {
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const d = dialog.current;
    if (d && !d.open) d.showModal();
    first.current?.focus();
    return () => {
      if (d?.open) d.close();
      // Back to the control the person was using (the Save button, say), if it is still there.
      if (opener?.isConnected) opener.focus();
    };
  }, []);

  // Single sign-on finishes in another tab, which tells this one when it has signed in.
  useEffect(() => {
    if (step !== 'sso') return;
    return onSessionElsewhere(() => void adopt(false));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [step]);

  async function adopt(asked: boolean) {
    setBusy(true);
    setError(null);
    try {
      if (await adoptCookieSession()) onDone(true);
      else if (asked)
        setError('You are not signed in yet. Finish signing in in the other tab, then choose Continue.');
    } catch (err) {
      setError(refusal(err, 'sso'));
    } finally {
      setBusy(false);
    }
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await reauthenticate(
        email.trim(),
        password,
        step === 'password' ? undefined : code.replace(/\s+/g, ''),
      );
      onDone(true);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'mfa_required' && step === 'password') {
        setStep('totp');
      } else if (err instanceof ApiError && err.code === 'sso_required') {
        setStep('sso');
        setError('Your organization signs in with single sign-on.');
      } else setError(refusal(err, step));
    } finally {
      setBusy(false);
    }
  }

  function openSso() {
    setSsoOpened(true);
    // A new tab: this page, and the action waiting in it, must stay as they are.
    window.open(`/api/v1/auth/sso/start?email=${encodeURIComponent(email.trim())}`, '_blank', 'noopener');
  }

  const fieldId = step === 'password' ? 'reauth-password' : 'reauth-code';
  const errorId = 'reauth-error';
  const invalid = error !== null && step !== 'sso';
  return (
    <dialog
      ref={dialog}
      className="confirm-dialog reauth-dialog"
      aria-labelledby="reauth-title"
      aria-describedby="reauth-why"
      onCancel={(e) => {
        // Escape must not throw away the action that is waiting for this sign-in.
        e.preventDefault();
      }}
    >
      <h2 id="reauth-title">Sign in again to continue</h2>
      <p id="reauth-why">
        Your session ended (it expired, or this device was signed out elsewhere). Sign in again and what you
        were doing carries on: nothing on this page is lost.
      </p>
      {step === 'sso' ? (
        <div className="reauth-sso">
          <p>
            Sign in with your organization&apos;s single sign-on in a new tab. This page continues by itself
            when you are done there.
          </p>
          {error && (
            <p className="error" role="alert" id={errorId}>
              {error}
            </p>
          )}
          <div className="dialog-actions">
            <button type="button" onClick={() => onDone(false)}>
              Log out instead
            </button>
            {ssoOpened && (
              <button type="button" disabled={busy} onClick={() => void adopt(true)}>
                Continue
              </button>
            )}
            <button type="button" className="primary" onClick={openSso}>
              Sign in with SSO in a new tab
            </button>
          </div>
        </div>
      ) : (
        <form onSubmit={(e) => void submit(e)}>
          {knownEmail ? (
            <p>
              Signed in as <strong>{knownEmail}</strong>
            </p>
          ) : (
            <>
              <label htmlFor="reauth-email">Email</label>
              <input
                id="reauth-email"
                type="email"
                autoComplete="username"
                required
                value={email}
                onChange={(e) => setEmail(e.target.value)}
              />
            </>
          )}
          {step === 'password' ? (
            <>
              <label htmlFor={fieldId}>Password</label>
              <input
                id={fieldId}
                ref={first}
                type="password"
                autoComplete="current-password"
                required
                value={password}
                aria-invalid={invalid || undefined}
                aria-describedby={invalid ? errorId : undefined}
                onChange={(e) => setPassword(e.target.value)}
              />
            </>
          ) : (
            <SecondFactorField
              id={fieldId}
              step={step}
              code={code}
              onCode={setCode}
              describedBy={invalid ? errorId : undefined}
              onSwitch={(next) => {
                setCode('');
                setError(null);
                setStep(next);
              }}
            />
          )}
          {error && (
            <p className="error" role="alert" id={errorId}>
              {error}
            </p>
          )}
          <div className="dialog-actions">
            <button type="button" onClick={() => onDone(false)}>
              Log out instead
            </button>
            <button type="submit" className="primary" disabled={busy}>
              {busy ? 'Signing in…' : step === 'password' ? 'Sign in and continue' : 'Verify and continue'}
            </button>
          </div>
          {step === 'password' && (
            <p>
              <button
                type="button"
                className="link"
                onClick={() => {
                  setError(null);
                  setStep('sso');
                }}
              >
                Use single sign-on instead
              </button>
            </p>
          )}
        </form>
      )}
    </dialog>
  );
}
