import { useEffect, useRef, useState, type FormEvent } from 'react';
import QRCode from 'qrcode';
import { ApiError, getMe } from '../api';
import { changePassword, confirmTotp, disableTotp, startTotp } from '../api-account';
import { errorText } from '../format';
import { ApiTokensSection } from './api-tokens-section';
import { AccountDeletionSection } from './account-deletion-section';
import { DevicesSection } from './devices-section';

/**
 * Settings → Security: the user's own password, second factor and devices. Everything here goes
 * through /api/v1/auth with the user's own session (no organization permission is involved).
 */
export function SecurityPage() {
  return (
    <>
      <h1 tabIndex={-1}>Security</h1>
      <PasswordSection />
      <MfaSection />
      <DevicesSection />
      <ApiTokensSection />
      <AccountDeletionSection />
    </>
  );
}

/** An input's error, tied to it by aria-describedby so a screen reader reads it with the field. */
function FieldError({ id, message }: { id: string; message: string | null }) {
  if (!message) return null;
  return (
    <p id={id} className="error-inline" role="alert">
      {message}
    </p>
  );
}

const describedBy = (...ids: (string | false | null | undefined)[]) =>
  ids.filter(Boolean).join(' ') || undefined;

function PasswordSection() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [errors, setErrors] = useState<{ current?: string; next?: string; form?: string }>({});
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);
  const currentRef = useRef<HTMLInputElement>(null);
  const nextRef = useRef<HTMLInputElement>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setDone(false);
    try {
      await changePassword(current, next);
      setCurrent('');
      setNext('');
      setDone(true);
    } catch (err) {
      // Each refusal goes under the field it is about, and focus moves there.
      if (err instanceof ApiError && err.code === 'invalid_credentials') {
        setErrors({ current: 'Your current password is not correct.' });
        currentRef.current?.focus();
      } else if (err instanceof ApiError && (err.code === 'weak_password' || err.status === 422)) {
        setErrors({ next: err.message });
        nextRef.current?.focus();
      } else setErrors({ form: errorText(err) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="pw-heading">
      <h2 id="pw-heading">Password</h2>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="pw-current">Current password</label>
        <input
          id="pw-current"
          ref={currentRef}
          type="password"
          autoComplete="current-password"
          required
          value={current}
          aria-invalid={errors.current ? true : undefined}
          aria-describedby={describedBy(errors.current && 'pw-current-error')}
          onChange={(e) => setCurrent(e.target.value)}
        />
        <FieldError id="pw-current-error" message={errors.current ?? null} />
        <label htmlFor="pw-new">New password</label>
        <input
          id="pw-new"
          ref={nextRef}
          type="password"
          autoComplete="new-password"
          required
          value={next}
          aria-invalid={errors.next ? true : undefined}
          aria-describedby={describedBy('pw-new-hint', errors.next && 'pw-new-error')}
          onChange={(e) => setNext(e.target.value)}
        />
        <p id="pw-new-hint" className="hint">
          At least 12 characters and hard to guess; a long passphrase is best. Your other devices will be
          signed out.
        </p>
        <FieldError id="pw-new-error" message={errors.next ?? null} />
        <FieldError id="pw-form-error" message={errors.form ?? null} />
        <p className="notice" role="status">
          {done ? 'Password changed. Your other devices were signed out.' : ''}
        </p>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Changing…' : 'Change password'}
        </button>
      </form>
    </section>
  );
}

type MfaState =
  | { step: 'loading' }
  | { step: 'error'; message: string }
  | { step: 'off' }
  | { step: 'enrolling'; secret: string; qr: string }
  | { step: 'codes'; codes: string[] }
  | { step: 'on' };

function MfaSection() {
  const [state, setState] = useState<MfaState>({ step: 'loading' });
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const codeRef = useRef<HTMLInputElement>(null);
  const codesHeading = useRef<HTMLHeadingElement>(null);

  async function load() {
    setState({ step: 'loading' });
    try {
      const me = await getMe();
      setState({ step: me.mfaEnabled ? 'on' : 'off' });
    } catch (err) {
      setState({ step: 'error', message: errorText(err) });
    }
  }
  useEffect(() => {
    void load();
  }, []);

  useEffect(() => {
    if (state.step === 'enrolling') codeRef.current?.focus();
    if (state.step === 'codes') codesHeading.current?.focus();
  }, [state.step]);

  async function begin() {
    setBusy(true);
    setError(null);
    try {
      const { secret, otpauthUri } = await startTotp();
      // An SVG as a data: URL in an <img>: the CSP allows data: images, no inline script or style.
      const svg = await QRCode.toString(otpauthUri, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
      setCode('');
      setState({
        step: 'enrolling',
        secret,
        qr: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`,
      });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  async function confirm(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { recoveryCodes } = await confirmTotp(code.replace(/\s+/g, ''));
      setCode('');
      setState({ step: 'codes', codes: recoveryCodes });
    } catch (err) {
      setError(
        err instanceof ApiError && err.status < 500 && err.code !== 'unauthenticated'
          ? 'That code was not accepted. Check the time on your phone and enter the newest code.'
          : errorText(err),
      );
      codeRef.current?.focus();
    } finally {
      setBusy(false);
    }
  }

  async function disable(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await disableTotp(code.replace(/\s+/g, ''));
      setCode('');
      setState({ step: 'off' });
    } catch (err) {
      setError(
        err instanceof ApiError && err.status < 500 && err.code !== 'unauthenticated'
          ? 'That code was not accepted. Enter a current code from your app or an unused recovery code.'
          : errorText(err),
      );
      codeRef.current?.focus();
    } finally {
      setBusy(false);
    }
  }

  const codeField = (label: string, hint: string) => (
    <>
      <label htmlFor="mfa-code">{label}</label>
      <input
        id="mfa-code"
        ref={codeRef}
        required
        autoComplete="one-time-code"
        inputMode="numeric"
        value={code}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy('mfa-code-hint', error && 'mfa-code-error')}
        onChange={(e) => setCode(e.target.value)}
      />
      <p id="mfa-code-hint" className="hint">
        {hint}
      </p>
      <FieldError id="mfa-code-error" message={error} />
    </>
  );

  return (
    <section className="card" aria-labelledby="mfa-heading" aria-busy={state.step === 'loading'}>
      <h2 id="mfa-heading">Two-step verification</h2>
      {state.step === 'loading' && <p>Loading…</p>}
      {state.step === 'error' && (
        <>
          <p className="error" role="alert">
            Could not load your settings: {state.message}
          </p>
          <button type="button" onClick={() => void load()}>
            Try again
          </button>
        </>
      )}
      {state.step === 'off' && (
        <>
          <p>
            Off. Turn it on so that a stolen password alone cannot open your account: you will also enter a
            code from an authenticator app when you log in.
          </p>
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <button type="button" className="primary" disabled={busy} onClick={() => void begin()}>
            {busy ? 'Starting…' : 'Set up an authenticator app'}
          </button>
        </>
      )}
      {state.step === 'enrolling' && (
        <>
          <ol className="steps">
            <li>
              Scan this code with your authenticator app (for example Aegis, Google Authenticator or
              1Password).
            </li>
            <li>Or enter this key by hand:</li>
          </ol>
          <img
            className="qr"
            src={state.qr}
            alt="QR code for your authenticator app"
            width={200}
            height={200}
          />
          <p>
            Setup key:{' '}
            <code className="secret" data-testid="totp-secret">
              {state.secret}
            </code>
          </p>
          <form onSubmit={(e) => void confirm(e)}>
            {codeField('Code from the app', 'Enter the 6-digit code the app now shows, to prove it works.')}
            <button type="submit" className="primary" disabled={busy}>
              {busy ? 'Checking…' : 'Turn on'}
            </button>
            <button
              type="button"
              onClick={() => {
                setError(null);
                setState({ step: 'off' });
              }}
            >
              Cancel
            </button>
          </form>
        </>
      )}
      {state.step === 'codes' && (
        <RecoveryCodes
          codes={state.codes}
          headingRef={codesHeading}
          onDone={() => setState({ step: 'on' })}
        />
      )}
      {state.step === 'on' && (
        <>
          <p>
            <strong>On.</strong> Logging in asks for a code from your authenticator app (or one of your
            recovery codes).
          </p>
          <form onSubmit={(e) => void disable(e)}>
            {codeField('Code to turn it off', 'A current code from your app, or an unused recovery code.')}
            <button type="submit" className="danger" disabled={busy}>
              {busy ? 'Turning off…' : 'Turn off two-step verification'}
            </button>
          </form>
        </>
      )}
    </section>
  );
}

function RecoveryCodes({
  codes,
  headingRef,
  onDone,
}: {
  codes: string[];
  headingRef: React.RefObject<HTMLHeadingElement | null>;
  onDone: () => void;
}) {
  const [copied, setCopied] = useState<string>('');
  const text = `Sotto recovery codes (each works once)\n\n${codes.join('\n')}\n`;
  const [href] = useState(() => URL.createObjectURL(new Blob([text], { type: 'text/plain' })));
  useEffect(() => () => URL.revokeObjectURL(href), [href]);

  return (
    <div className="recovery">
      <h3 ref={headingRef} tabIndex={-1}>
        Two-step verification is on. Store these recovery codes now.
      </h3>
      <p className="warning">
        They are shown only this once. Each code lets you log in one time if you lose your phone. Keep them
        somewhere safe, away from this device (a password manager or on paper).
      </p>
      <ul className="codes" aria-label="Recovery codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ul>
      <div className="toolbar">
        <button
          type="button"
          onClick={() => {
            navigator.clipboard.writeText(text).then(
              () => setCopied('Copied to the clipboard.'),
              () => setCopied('Copying was refused by the browser: download them or write them down.'),
            );
          }}
        >
          Copy
        </button>
        <a className="button" href={href} download="sotto-recovery-codes.txt">
          Download
        </a>
        <button type="button" className="primary" onClick={onDone}>
          I have stored them
        </button>
      </div>
      <p className="notice" role="status">
        {copied}
      </p>
    </div>
  );
}
