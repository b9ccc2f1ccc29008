import { useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError, login, logout } from '../api';
import { acceptInvitation, previewInvitation, type InvitationPreview } from '../api-org';
import { errorText } from '../format';
import { linkTokenReader } from '../link-token';
import { navigate, onLinkClick } from '../router';
import { FieldError, describedBy } from './org-common';

const ROLE_WORD: Record<InvitationPreview['role'], string> = {
  owner: 'an owner',
  admin: 'an admin',
  member: 'a member',
};

/** The link's token (see linkTokenReader): read once, then gone from the address bar. */
const linkToken = linkTokenReader();

/**
 * Accepting an invitation (signed out): name and password, then signed in on /recordings. Opened
 * while signed in (someone else's session in this browser), it keeps the token in memory and
 * offers to log out first.
 */
export function AcceptInvitationPage({ signedIn = false }: { signedIn?: boolean }) {
  const [token] = useState(linkToken.take);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<{ name?: string; password?: string; form?: string }>({});
  const [invalid, setInvalid] = useState(!token);
  const [busy, setBusy] = useState(false);
  // The organization and who invited them, from the token, before anything is typed.
  const [about, setAbout] = useState<InvitationPreview | null>(null);
  const nameRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [invalid]);

  useEffect(() => {
    if (!token) return;
    let live = true;
    previewInvitation(token).then(
      (p) => live && setAbout(p),
      (err: unknown) => {
        // A link that does not work says so at once; anything else leaves the form usable.
        if (live && err instanceof ApiError && err.status === 404) setInvalid(true);
      },
    );
    return () => {
      live = false;
    };
  }, [token]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!token) return;
    setBusy(true);
    setErrors({});
    try {
      const accepted = await acceptInvitation({ token, name: name.trim(), password });
      await login(accepted.user.email, password);
      linkToken.forget();
      navigate('/recordings');
    } catch (err) {
      if (err instanceof ApiError && err.code === 'weak_password') {
        setErrors({ password: err.message });
        passwordRef.current?.focus();
      } else if (err instanceof ApiError && err.status === 400) {
        setErrors({ name: 'Enter your name (up to 200 characters).' });
        nameRef.current?.focus();
      } else if (err instanceof ApiError && err.status === 404) {
        setInvalid(true);
      } else setErrors({ form: errorText(err) });
    } finally {
      setBusy(false);
    }
  }

  if (signedIn && !invalid)
    return (
      <section className="card narrow">
        <h1 tabIndex={-1}>Accept invitation</h1>
        <p>
          You are logged in to Sotto in this browser. To join with the invited email address, log out first;
          the invitation stays open in this tab.
        </p>
        <button
          type="button"
          className="primary"
          onClick={() => {
            void logout().then(() => navigate('/invite'));
          }}
        >
          Log out and accept
        </button>
      </section>
    );

  // Signed out this is the whole page; signed in it sits inside the app's <main>.
  const Shell = signedIn ? 'section' : 'main';
  if (invalid)
    return (
      <Shell className="card narrow">
        <h1 tabIndex={-1}>This invitation does not work</h1>
        <p>
          The link is incomplete, was already used, was replaced by a newer invitation, was revoked, or has
          expired (links last 7 days). Ask the person who invited you to send a new one.
        </p>
        <p>
          Already joined?{' '}
          <a href="/login" onClick={onLinkClick}>
            Log in
          </a>
        </p>
      </Shell>
    );

  return (
    <main className="card narrow">
      <h1 tabIndex={-1}>Join your organization on Sotto</h1>
      {about ? (
        <p className="invite-about">
          {about.invitedBy ? `${about.invitedBy.name} invited you` : 'You were invited'} to join{' '}
          <strong>{about.organization.name}</strong> as {ROLE_WORD[about.role]}, with the email address{' '}
          <strong>{about.email}</strong>. Choose the name your colleagues will see and a password.
        </p>
      ) : (
        <p>You were invited by email. Choose the name your colleagues will see and a password.</p>
      )}
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="invite-name">Your name</label>
        <input
          id="invite-name"
          ref={nameRef}
          autoComplete="name"
          required
          maxLength={200}
          value={name}
          aria-invalid={errors.name ? true : undefined}
          aria-describedby={describedBy(errors.name && 'invite-name-error')}
          onChange={(e) => setName(e.target.value)}
        />
        <FieldError id="invite-name-error" message={errors.name} />
        <label htmlFor="invite-password">Password</label>
        <input
          id="invite-password"
          ref={passwordRef}
          type="password"
          autoComplete="new-password"
          required
          value={password}
          aria-invalid={errors.password ? true : undefined}
          aria-describedby={describedBy('invite-password-hint', errors.password && 'invite-password-error')}
          onChange={(e) => setPassword(e.target.value)}
        />
        <p id="invite-password-hint" className="hint">
          At least 12 characters, hard to guess and not made from your email; a long passphrase of unrelated
          words is best.
        </p>
        <FieldError id="invite-password-error" message={errors.password} />
        {errors.form && (
          <p className="error" role="alert">
            {errors.form}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Joining…' : 'Join and log in'}
        </button>
      </form>
    </main>
  );
}
