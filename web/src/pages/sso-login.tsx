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
