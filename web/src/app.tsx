import { useEffect, useState } from 'react';
import { logout, onSessionChange, refresh } from './api';
import { canManageOrg, isSupport, useMe, useSupportOrg } from './api-org';
import { usePhone } from './media';
import { LoginPage, SignupPage } from './pages/auth-pages';
import { AcceptInvitationPage } from './pages/accept-invitation-page';
import { EngineBanner } from './pages/engine-banner';
import { LiveRecordingPage, LiveStartPage } from './pages/live-page';
import { NotFoundPage } from './pages/not-found-page';
import { OrgPage, SECTIONS } from './pages/org-page';
import { ReauthDialog } from './pages/reauth-dialog';
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
  const phone = usePhone();
  const [menuOpen, setMenuOpen] = useState(false);

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

  // A title per page, so tabs, history and screen readers say where you are.
  useEffect(() => {
    document.title = `${pageTitle(path, session === 'in')} · Sotto`;
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
  const here = path.startsWith('/recordings')
    ? live
      ? 'Live'
      : 'Recordings'
    : path === '/live'
      ? 'Live'
      : org
        ? 'Organization'
        : path.startsWith('/settings')
          ? 'Security'
          : '';

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href="/recordings" onClick={onLinkClick}>
          Sotto
        </a>
        {phone && (
          // The compact menu: the page you are on stays in view beside it.
          <>
            <span className="topbar-here">{here}</span>
            <button
              type="button"
              className="menu-toggle"
              aria-expanded={menuOpen}
              aria-controls="main-nav"
              onClick={() => setMenuOpen((o) => !o)}
            >
              Menu
            </button>
          </>
        )}
        <nav
          id="main-nav"
          aria-label="Main"
          hidden={phone && !menuOpen}
          onClick={(e) => {
            // Choosing a page (or logging out) folds the phone menu away.
            if ((e.target as HTMLElement).closest('a, button')) setMenuOpen(false);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Escape' && phone) {
              setMenuOpen(false);
              document.querySelector<HTMLElement>('.menu-toggle')?.focus();
            }
          }}
        >
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
      <ReauthDialog email={me?.user.email ?? null} />
    </>
  );
}

/** The document title of a path (a recording page puts its own title in once it has loaded). */
function pageTitle(path: string, signedIn: boolean): string {
  if (path === '/verify-email') return 'Verify your email';
  if (path === '/invite') return 'Accept invitation';
  if (!signedIn) return path === '/signup' ? 'Sign up' : 'Log in';
  if (['/', '/recordings', '/login', '/signup'].includes(path)) return 'Recordings';
  if (/^\/recordings\/[0-9a-fA-F-]{36}\/live$/.test(path)) return 'Live recording';
  if (/^\/recordings\/[0-9a-fA-F-]{36}$/.test(path)) return 'Recording';
  if (path === '/live') return 'Live';
  if (path === '/settings/security') return 'Security';
  if (path === '/support') return 'Choose an organization';
  const org = /^\/org(?:\/([a-z-]+))?$/.exec(path);
  if (org) {
    const section = SECTIONS.find((s) => s.id === (org[1] ?? 'members'));
    return section ? `Organization: ${section.label}` : 'Not found';
  }
  return 'Not found';
}
