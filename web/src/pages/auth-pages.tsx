import { useState, type FormEvent } from 'react';
import { ApiError, login, signup, takeSignOutNotice } from '../api';
import { errorText } from '../format';
import { navigate, onLinkClick } from '../router';
import { SecondFactorField } from './second-factor-field';
import { SsoLinkForm, SsoSection, ssoErrorFromUrl, ssoLinkWanted } from './sso-login';

function ErrorBox({ message }: { message: string | null }) {
  if (!message) return null;
  return (
    <p className="error" role="alert">
      {message}
    </p>
  );
}

export function LoginPage() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  // After the server answers mfa_required: the second step, by authenticator or recovery code.
  const [step, setStep] = useState<'password' | 'totp' | 'recovery'>('password');
  const [error, setError] = useState<string | null>(ssoErrorFromUrl);
  const [busy, setBusy] = useState(false);
  // The org refuses password login (require SSO): offer the SSO path at once.
  const [ssoRequired, setSsoRequired] = useState(false);
  // Set when the session ended without a log out here (revoked from another device, expired).
  const [notice] = useState(takeSignOutNotice);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(email, password, step === 'password' ? undefined : code.replace(/\s+/g, ''));
      navigate(
        location.pathname === '/login' || location.pathname === '/signup' ? '/recordings' : location.pathname,
      );
    } catch (err) {
      if (err instanceof ApiError && err.code === 'mfa_required' && step === 'password') {
        setStep('totp');
      } else if (err instanceof ApiError && err.code === 'sso_required') {
        setSsoRequired(true);
        setError('Your organization signs in with single sign-on. Continue with SSO below.');
      } else if (err instanceof ApiError && err.code === 'invalid_credentials') {
        setError(
          step === 'password'
            ? 'That email and password do not match an account.'
            : 'That code was not accepted. Check it and try again.',
        );
      } else setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  // Back from the IdP for an existing account not linked yet: prove the password once.
  if (ssoLinkWanted()) return <SsoLinkForm />;

  return (
    <main className="card narrow">
      <h1 tabIndex={-1}>Log in to Sotto</h1>
      {notice && (
        <p className="signed-out" role="alert">
          {notice}
        </p>
      )}
      <form onSubmit={(e) => void submit(e)} noValidate={false}>
        {step === 'password' ? (
          <>
            <label htmlFor="email">Email</label>
            <input
              id="email"
              type="email"
              autoComplete="username"
              required
              value={email}
              onChange={(e) => setEmail(e.target.value)}
            />
            <label htmlFor="password">Password</label>
            <input
              id="password"
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          </>
        ) : (
          <SecondFactorField
            id="code"
            step={step}
            code={code}
            onCode={setCode}
            onSwitch={(next) => {
              setCode('');
              setStep(next);
            }}
          />
        )}
        <ErrorBox message={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Logging in…' : step === 'password' ? 'Log in' : 'Verify'}
        </button>
      </form>
      {step === 'password' && (
        <SsoSection key={String(ssoRequired)} initialEmail={email} open={ssoRequired} />
      )}
      <p>
        New to Sotto?{' '}
        <a href="/signup" onClick={onLinkClick}>
          Create an organization
        </a>
      </p>
    </main>
  );
}

export function SignupPage() {
  const [form, setForm] = useState({ name: '', email: '', password: '', organization: '' });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // The address the link went to: the account exists once that link is opened.
  const [sentTo, setSentTo] = useState<string | null>(null);
  const field = (k: keyof typeof form) => ({
    id: `signup-${k}`,
    value: form[k],
    required: true,
    onChange: (e: React.ChangeEvent<HTMLInputElement>) => setForm({ ...form, [k]: e.target.value }),
  });

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signup(form);
      setSentTo(form.email.trim());
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  if (sentTo)
    return (
      <main className="card narrow">
        <h1 tabIndex={-1} ref={(h) => h?.focus()}>
          Check your email
        </h1>
        <p>
          We sent a message to <strong>{sentTo}</strong>. Open the link in it within 24 hours to create your
          organization, then log in. If that address already has an account, the message says so instead.
        </p>
        <p>
          Nothing arrived? Check the spam folder, or{' '}
          <button type="button" className="link" onClick={() => setSentTo(null)}>
            try again
          </button>
          .
        </p>
        <p>
          <a href="/login" onClick={onLinkClick}>
            Log in
          </a>
        </p>
      </main>
    );

  return (
    <main className="card narrow">
      <h1 tabIndex={-1}>Create your organization</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="signup-name">Your name</label>
        <input {...field('name')} autoComplete="name" />
        <label htmlFor="signup-email">Email</label>
        <input {...field('email')} type="email" autoComplete="email" />
        <label htmlFor="signup-password">Password</label>
        <input
          {...field('password')}
          type="password"
          autoComplete="new-password"
          aria-describedby="pw-hint"
        />
        <p id="pw-hint" className="hint">
          At least 12 characters and hard to guess; a long passphrase of unrelated words is best.
        </p>
        <label htmlFor="signup-organization">Organization</label>
        <input {...field('organization')} autoComplete="organization" />
        <ErrorBox message={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <p>
        Already have an account?{' '}
        <a href="/login" onClick={onLinkClick}>
          Log in
        </a>
      </p>
    </main>
  );
}
