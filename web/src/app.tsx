import { useEffect, useState } from 'react';
import { logout, onSessionChange, refresh } from './api';
import { canManageOrg, isSupport, useMe, useSupportOrg } from './api-org';
import { LoginPage, SignupPage } from './pages/auth-pages';
import { AcceptInvitationPage } from './pages/accept-invitation-page';
import { EngineBanner } from './pages/engine-banner';
import { LiveRecordingPage, LiveStartPage } from './pages/live-page';
import { NotFoundPage } from './pages/not-found-page';
import { OrgPage } from './pages/org-page';
import { SupportOrgBadge, SupportOrgPicker } from './pages/org-support-switch';
import { RecordingPage } from './pages/recording-page';
import { RecordingsPage } from './pages/recordings-page';
import { SecurityPage } from './pages/security-page';
import { VerifyEmailPage } from './pages/verify-email-page';
import { navigate, onLinkClick, usePath } from './router';

type SessionState = 'checking' | 'in' | 'out';

export function App() {
  const path = usePath();
  const [session, setSession] = useState<SessionState>('checking');
  // Who is signed in decides the Organization link; platform support first picks an org to act in.
  const me = useMe(session === 'in');
  const supportOrg = useSupportOrg();

  useEffect(() => {
    const off = onSessionChange((signedIn) => setSession(signedIn ? 'in' : 'out'));
    // A reload loses the in-memory token; the HttpOnly refresh cookie brings the session back.
    void refresh().then((ok) => setSession(ok ? 'in' : 'out'));
    return () => {
      off();
    };
  }, []);

  // Move focus to the new screen's heading so screen readers announce the change.
  useEffect(() => {
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [path, session]);

  if (session === 'checking')
    return (
      <main className="centered" aria-busy="true">
        <p>Loading…</p>
      </main>
    );

  // The emailed signup link works the same signed in or out: it concerns another account.
  if (path === '/verify-email')
    return (
      <div className="auth-shell">
        <VerifyEmailPage />
      </div>
    );

  if (session === 'out') {
    const page =
      path === '/signup' ? <SignupPage /> : path === '/invite' ? <AcceptInvitationPage /> : <LoginPage />;
    return <div className="auth-shell">{page}</div>;
  }

  let page: React.ReactNode;
  const rec = /^\/recordings\/([0-9a-fA-F-]{36})$/.exec(path);
  const live = /^\/recordings\/([0-9a-fA-F-]{36})\/live$/.exec(path);
  const org = /^\/org(?:\/([a-z-]+))?$/.exec(path);
  if (path === '/' || path === '/recordings' || path === '/login' || path === '/signup')
    page = <RecordingsPage />;
  else if (rec) page = <RecordingPage key={rec[1]} id={rec[1]!} />;
  else if (live) page = <LiveRecordingPage key={live[1]} id={live[1]!} />;
  else if (path === '/live') page = <LiveStartPage />;
  else if (org) page = <OrgPage section={org[1] ?? 'members'} />;
  else if (path === '/settings/security') page = <SecurityPage />;
  else if (path === '/invite') page = <AcceptInvitationPage signedIn />;
  else page = <NotFoundPage />;
  if (isSupport(me) && (path === '/support' || (!supportOrg && path !== '/settings/security')))
    page = <SupportOrgPicker />;

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href="/recordings" onClick={onLinkClick}>
          Sotto
        </a>
        <nav aria-label="Main">
          <a
            href="/recordings"
            onClick={onLinkClick}
            aria-current={path.startsWith('/recordings') ? 'page' : undefined}
          >
            Recordings
          </a>
          <a href="/live" onClick={onLinkClick} aria-current={path === '/live' || live ? 'page' : undefined}>
            Live
          </a>
          {(canManageOrg(me) || isSupport(me)) && (
            <a href="/org" onClick={onLinkClick} aria-current={org ? 'page' : undefined}>
              Organization
            </a>
          )}
          <a
            href="/settings/security"
            onClick={onLinkClick}
            aria-current={path.startsWith('/settings') ? 'page' : undefined}
          >
            Security
          </a>
          {isSupport(me) && <SupportOrgBadge />}
          <button
            type="button"
            className="link"
            onClick={() => {
              void logout().then(() => navigate('/login'));
            }}
          >
            Log out
          </button>
        </nav>
      </header>
      <EngineBanner me={me} />
      <main id="main" key={supportOrg?.id ?? ''}>
        {page}
      </main>
    </>
  );
}
