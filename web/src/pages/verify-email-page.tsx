import { useEffect, useState } from 'react';
import { ApiError, verifySignup } from '../api';
import { errorText } from '../format';
import { linkTokenReader } from '../link-token';
import { onLinkClick } from '../router';

/** The link's token (see linkTokenReader): read once, then gone from the address bar. */
const linkToken = linkTokenReader();

type State =
  | { kind: 'working' }
  | { kind: 'done'; organization: string }
  | { kind: 'invalid' }
  | { kind: 'exists' }
  | { kind: 'failed'; message: string };

/** Only one verify request per page load, whatever React re-runs. */
let sent: Promise<State> | undefined;
function verifyOnce(token: string): Promise<State> {
  sent ??= verifySignup(token).then(
    (r): State => ({ kind: 'done', organization: r.organization.name }),
    (err: unknown): State =>
      err instanceof ApiError && err.status === 404
        ? { kind: 'invalid' }
        : err instanceof ApiError && err.status === 409
          ? { kind: 'exists' }
          : { kind: 'failed', message: errorText(err) },
  );
  return sent;
}

/**
 * The emailed signup link (`/verify-email#token=…`): proves the address, which creates the
 * organization and its owner; then the person logs in with the password chosen at signup.
 */
export function VerifyEmailPage() {
  const [token] = useState(linkToken.take);
  const [state, setState] = useState<State>(token ? { kind: 'working' } : { kind: 'invalid' });

  useEffect(() => {
    if (token) void verifyOnce(token).then(setState);
  }, [token]);

  useEffect(() => {
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [state.kind]);

  const logIn = (
    <p>
      <a href="/login" onClick={onLinkClick}>
        Log in
      </a>
    </p>
  );
  if (state.kind === 'working')
    return (
      <main className="card narrow" aria-busy="true">
        <h1 tabIndex={-1}>Verifying your email…</h1>
      </main>
    );
  if (state.kind === 'done')
    return (
      <main className="card narrow">
        <h1 tabIndex={-1}>Email verified</h1>
        <p>
          <strong>{state.organization}</strong> is ready. Log in with your email address and the password you
          chose.
        </p>
        {logIn}
      </main>
    );
  if (state.kind === 'exists')
    return (
      <main className="card narrow">
        <h1 tabIndex={-1}>You already have an account</h1>
        <p>This email address already has a Sotto account: log in with it.</p>
        {logIn}
      </main>
    );
  return (
    <main className="card narrow">
      <h1 tabIndex={-1}>This link does not work</h1>
      <p>
        {state.kind === 'failed'
          ? state.message
          : 'The link is incomplete, was already used, or has expired (links last 24 hours). Sign up again to get a new one.'}
      </p>
      <p>
        <a href="/signup" onClick={onLinkClick}>
          Sign up
        </a>{' '}
        or{' '}
        <a href="/login" onClick={onLinkClick}>
          log in
        </a>
      </p>
    </main>
  );
}
