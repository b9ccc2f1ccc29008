import { useState, type FormEvent } from 'react';

/** What each `/login?sso_error=<code>` means for the person signing in (no server details). */
const SSO_ERRORS: Record<string, string> = {
  not_configured: 'Single sign-on is not set up for that email domain or organization.',
  state_invalid: 'That sign-in link expired or was already used. Start again.',
  idp_error: 'Your identity provider did not complete the sign-in.',
  token_rejected: 'The answer from your identity provider could not be verified.',
  email_unverified: 'Your identity provider did not confirm your email address.',
  domain_not_allowed: 'Your email domain is not allowed to sign in to this organization.',
  account_not_allowed: 'This email belongs to an account that cannot sign in here.',
  failed: 'Single sign-on failed. Try again.',
};

/** The message for the `sso_error` of the current URL, if any. */
export function ssoErrorFromUrl(): string | null {
  const code = new URLSearchParams(location.search).get('sso_error');
  if (!code) return null;
  return SSO_ERRORS[code] ?? SSO_ERRORS.failed!;
}

/**
 * "Continue with SSO": asks for the work email and hands the browser to the server, which sends
 * it on to the organization's identity provider (a full navigation, not a fetch: the IdP's pages
 * are its own and the callback sets the session cookie).
 */
export function SsoSection({ initialEmail, open }: { initialEmail: string; open: boolean }) {
  const [shown, setShown] = useState(open);
  const [email, setEmail] = useState(initialEmail);

  function go(e: FormEvent) {
    e.preventDefault();
    location.assign(`/api/v1/auth/sso/start?email=${encodeURIComponent(email.trim())}`);
  }

  if (!shown && !open)
    return (
      <p>
        <button type="button" className="link" onClick={() => setShown(true)}>
          Continue with SSO
        </button>
      </p>
    );
  return (
    <form onSubmit={go} aria-label="Single sign-on">
      <label htmlFor="sso-email">Work email</label>
      <input
        id="sso-email"
        type="email"
        autoComplete="username"
        required
        value={email}
        onChange={(e) => setEmail(e.target.value)}
      />
      <button type="submit">Continue with SSO</button>
    </form>
  );
}

/** Whether the server sent this browser here to confirm a pending SSO link (`/login?sso_link=1`). */
export function ssoLinkWanted(): boolean {
  return new URLSearchParams(location.search).get('sso_link') === '1';
}

/**
 * The link step (docs/sso.md): the IdP vouched for an email that already has a Sotto account,
 * so its owner proves the account's password (and code, when TOTP is on) once; the server then
 * links the IdP identity and opens the session. The pending link is single use: any failure
 * means signing in with SSO again.
 */
export function SsoLinkForm() {
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = await fetch('/api/v1/auth/sso/link', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ password, ...(code.trim() ? { code: code.replace(/\s+/g, '') } : {}) }),
      });
      if (res.ok) {
        // A full load: the panel trades the new refresh cookie for an access token.
        location.assign('/');
        return;
      }
      setError(
        res.status === 401 || res.status === 409
          ? 'That did not confirm the account. Sign in with SSO again to retry.'
          : res.status === 429
            ? 'Too many attempts. Wait a moment, then sign in with SSO again.'
            : 'Linking failed. Sign in with SSO again.',
      );
    } catch {
      setError('Linking failed. Sign in with SSO again.');
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="card narrow">
      <h1 tabIndex={-1}>Confirm it&apos;s you to link single sign-on</h1>
      <p>
        Your identity provider signed you in with an email that already has a Sotto account. Enter that
        account&apos;s password once to link them; after that, single sign-on takes you straight in.
      </p>
      <form onSubmit={(e) => void submit(e)} aria-label="Link single sign-on">
        <label htmlFor="link-password">Password</label>
        <input
          id="link-password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <label htmlFor="link-code">Authenticator or recovery code (if you use two-factor)</label>
        <input
          id="link-code"
          autoComplete="one-time-code"
          value={code}
          onChange={(e) => setCode(e.target.value)}
        />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Linking…' : 'Link and sign in'}
        </button>
      </form>
      <p>
        <a href="/login">Back to log in</a>
      </p>
    </main>
  );
}
