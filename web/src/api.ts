/**
 * The panel's only way to the server: the public /api/v1 API, same origin.
 *
 * The access token lives in this module's memory only (never localStorage: an XSS could read
 * it there). The refresh token is the server's `__Host-sotto_refresh` HttpOnly cookie, which
 * JavaScript cannot read; a cookie refresh must carry a CSRF token from GET /auth/csrf in the
 * X-CSRF-Token header (docs/security.md).
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './api-schema';
import { ApiError, offline, offlineErrors, publicApi, unwrap, type Answer, type Body } from './api-client';
import { clearDrafts } from './pages/edit-drafts';

export { ApiError, isOffline, type Problem } from './api-client';

let accessToken: string | null = null;
let expiresAt = 0;
let refreshing: Promise<RefreshOutcome> | null = null;
const listeners = new Set<(signedIn: boolean) => void>();
// Why the session ended when the user did not log out here (revoked elsewhere, expired):
// the login page shows it once, so nobody is dropped there without a word.
let signOutNotice: string | null = null;

/** The reason the last session ended on its own, once; null after a deliberate log out. */
export function takeSignOutNotice(): string | null {
  const n = signOutNotice;
  signOutNotice = null;
  return n;
}

/** Ends the in-memory session with a reason the login page will show. */
export function endSession(notice: string): void {
  if (accessToken !== null) signOutNotice = notice;
  setToken(null);
}

const REVOKED = 'You were signed out on this device. Log in again to continue.';

export function onSessionChange(fn: (signedIn: boolean) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setToken(token: string | null, expiresIn = 0): void {
  const was = accessToken !== null;
  accessToken = token;
  expiresAt = token ? Date.now() + expiresIn * 1000 : 0;
  if (was !== (token !== null)) for (const l of listeners) l(token !== null);
}

type RefreshOutcome = 'ok' | 'refused' | 'offline';

/**
 * Trades the refresh cookie for a new access token. One at a time: the server rotates the
 * refresh token and treats a second use of the old one as theft (it ends the session).
 */
function refreshOnce(): Promise<RefreshOutcome> {
  refreshing ??= (async (): Promise<RefreshOutcome> => {
    try {
      const csrf = await publicApi.GET('/api/v1/auth/csrf');
      if (!csrf.data) return 'offline';
      const res = await publicApi.POST('/api/v1/auth/refresh', {
        body: {},
        headers: { 'x-csrf-token': csrf.data.token, 'x-sotto-client': 'browser' },
      });
      // Refused: this device's session was revoked or has expired.
      if (!res.data)
        return res.response.status === 401 || res.response.status === 403 ? 'refused' : 'offline';
      setToken(res.data.accessToken, res.data.expiresIn);
      return 'ok';
    } catch {
      return 'offline';
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** The start-up refresh (and any plain one): a refused refresh ends the session. */
export async function refresh(): Promise<boolean> {
  const r = await refreshOnce();
  if (r === 'refused') endSession(REVOKED);
  // A tab that opened signed in (e.g. back from single sign-on) tells the others: one that is
  // asking its person to sign in again can take the new session up (reauth-dialog.tsx).
  if (r === 'ok') sessionChannel?.postMessage('signed-in');
  return r === 'ok';
}

/**
 * Asked, when the session ends under a signed-in page, to sign the same person in again without
 * leaving it (the re-authentication dialog, reauth-dialog.tsx). Resolves true once a new access
 * token is set, false when the person chose to leave (then the session ends as before).
 */
export type ReauthHandler = () => Promise<boolean>;
let reauthHandler: ReauthHandler | null = null;
let recovering: Promise<boolean> | null = null;

export function setReauthHandler(fn: ReauthHandler | null): void {
  reauthHandler = fn;
}

/**
 * Gets a working session back after the token was refused or ran out: a cookie refresh, else
 * (the session was revoked or expired) the re-authentication dialog, shared by every request
 * that is waiting, so the pending actions all go on once the person has signed in again.
 */
function recover(): Promise<boolean> {
  recovering ??= (async () => {
    try {
      const r = await refreshOnce();
      if (r === 'ok') return true;
      if (r === 'offline') throw offline();
      if (accessToken !== null && reauthHandler && (await reauthHandler())) return true;
      endSession(REVOKED);
      return false;
    } finally {
      recovering = null;
    }
  })();
  return recovering;
}

/** Signs in again from the re-authentication dialog; the account must be the one that was here. */
export async function reauthenticate(email: string, password: string, code?: string): Promise<void> {
  const before = sessionUserId();
  const t = await signIn(email, password, code);
  adoptToken(t.accessToken, t.expiresIn, before);
}

/**
 * After single sign-on in another tab (which set the refresh cookie): trades the cookie for a
 * token. False while that tab has not finished; an error when it signed in another account.
 */
export async function adoptCookieSession(): Promise<boolean> {
  const before = sessionUserId();
  const old = { accessToken, expiresAt };
  const r = await refreshOnce();
  if (r === 'offline') throw offline();
  // Refused: that tab has not finished yet; the old (dead) token stays until the person decides.
  if (r !== 'ok') return false;
  keepSameAccount(before, old);
  return true;
}

function adoptToken(token: string, expiresIn: number, before: string | null): void {
  const old = { accessToken, expiresAt };
  setToken(token, expiresIn);
  keepSameAccount(before, old);
}

/**
 * The page holds the previous account's data (and drafts bound to it): another account signing
 * in here would see it, so its token is not kept.
 */
function keepSameAccount(
  before: string | null,
  old: { accessToken: string | null; expiresAt: number },
): void {
  if (!before || sessionUserId() === before) return;
  accessToken = old.accessToken;
  expiresAt = old.expiresAt;
  throw new ApiError({
    status: 409,
    code: 'other_account',
    title: 'That is a different account. Sign in as the account that was using this page.',
  });
}

/** Tells this browser's other panel tabs that a session was just started or refreshed. */
const sessionChannel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('sotto-session') : null;

export function onSessionElsewhere(fn: () => void): () => void {
  const h = () => fn();
  sessionChannel?.addEventListener('message', h);
  return () => sessionChannel?.removeEventListener('message', h);
}

/** A token good for at least the next half minute, refreshed first when needed. */
export async function currentToken(): Promise<string> {
  if (!accessToken || Date.now() > expiresAt - 30_000) {
    if (accessToken) await recover();
    else await refresh();
  }
  if (!accessToken)
    throw new ApiError({ status: 401, code: 'unauthenticated', title: 'Please log in again' });
  return accessToken;
}

/**
 * A 401 about the token (ended, expired), not one about a password or code the user typed
 * (`invalid_credentials` on a password change): only the former ends the session.
 */
async function sessionRefused(res: Response): Promise<boolean> {
  if (res.status !== 401) return false;
  try {
    const { code } = (await res.clone().json()) as { code?: string };
    return code !== 'invalid_credentials' && code !== 'mfa_required';
  } catch {
    return true;
  }
}

// Platform support only: the organization they act in (its grant must be active), sent as
// X-Sotto-Org on every API call. Org members never set it (the server ignores it for them).
let supportOrg: string | null = null;

export function setSupportOrg(orgId: string | null): void {
  supportOrg = orgId;
}

/** The token and the support org on a request, over whatever it carried before. */
async function authorised(request: Request): Promise<Request> {
  const token = await currentToken();
  const out = new Request(request);
  if (supportOrg) out.headers.set('x-sotto-org', supportOrg);
  out.headers.set('authorization', `Bearer ${token}`);
  return out;
}

// Each request as it was before the token went on, kept until its answer is in: a refused token
// sends it once more (a request's body can be read only once).
const unsent = new Map<string, Request>();

/** The session on every authenticated call; one retry after a refresh when the token was refused. */
const session: Middleware = {
  async onRequest({ request, id }) {
    // A copy first: making the authorised request takes the body out of this one.
    const copy = request.clone();
    const out = await authorised(request);
    unsent.set(id, copy);
    return out;
  },
  async onResponse({ response, id }) {
    const original = unsent.get(id);
    unsent.delete(id);
    let res = response;
    // The session ended under the page: refresh, or sign in again in the dialog, then send the
    // same request once more, so the action the person took (a Save) completes.
    if (original && (await sessionRefused(res)) && (await recover())) {
      const again = await authorised(original);
      try {
        res = await fetch(again);
      } catch (err) {
        if (again.signal.aborted) throw err;
        throw offline();
      }
    }
    if (await sessionRefused(res)) endSession(REVOKED);
    return res;
  },
  onError({ id }) {
    unsent.delete(id);
  },
};

/** Every authenticated call of the public API, typed by openapi.json (web/src/api-schema.d.ts). */
export const api = createClient<paths>({ credentials: 'same-origin' });
// onError runs last-added first: the session forgets the request, then the error becomes "offline".
api.use(offlineErrors, session);

// ---- auth ----

/** POST /auth/login as the browser (the refresh token comes back as the HttpOnly cookie). */
function signIn(
  email: string,
  password: string,
  code?: string,
): Promise<Answer<'/api/v1/auth/login', 'post'>> {
  return unwrap(
    publicApi.POST('/api/v1/auth/login', {
      body: { email, password, client: 'browser', ...(code ? { code } : {}) },
    }),
  );
}

export async function login(email: string, password: string, code?: string): Promise<void> {
  const t = await signIn(email, password, code);
  setToken(t.accessToken, t.expiresIn);
}

/**
 * Asks for a new organization. The server answers alike whether or not the address already has
 * an account, and mails the rest (a link to finish, or a note): nothing to log in to yet.
 */
export async function signup(input: Body<'/api/v1/auth/signup', 'post'>): Promise<void> {
  await unwrap(publicApi.POST('/api/v1/auth/signup', { body: input }));
}

/** The emailed link's token: creates the organization and its owner (log in afterwards). */
export function verifySignup(token: string): Promise<Answer<'/api/v1/auth/signup/verify', 'post', 201>> {
  return unwrap(publicApi.POST('/api/v1/auth/signup/verify', { body: { token } }));
}

export async function logout(): Promise<void> {
  try {
    // With the bearer token no CSRF token is needed; the server also clears the cookie.
    if (accessToken)
      await publicApi.POST('/api/v1/auth/logout', {
        body: {},
        headers: { authorization: `Bearer ${accessToken}` },
      });
  } finally {
    signOutNotice = null;
    setToken(null);
    // Unsaved transcript edits are confidential text: none stays behind a deliberate log out.
    clearDrafts();
  }
}

/** The signed-in account (the access token's `sub`), or null: tab-local data is bound to it. */
export function sessionUserId(): string | null {
  try {
    const payload = (accessToken ?? '').split('.')[1];
    if (!payload) return null;
    const claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown };
    return typeof claims.sub === 'string' ? claims.sub : null;
  } catch {
    return null;
  }
}

// ---- shapes (of the answers, as openapi.json describes them) ----

export type Recording = Answer<'/api/v1/recordings/{id}', 'get'>;
export type RecordingStatus = Recording['status'];
export type Report = Answer<'/api/v1/recordings/{id}/report', 'get'>;
export type Me = Answer<'/api/v1/me', 'get'>;

/** GET /me, fresh (api-org.ts's loadMe shares one per session). */
export const getMe = (): Promise<Me> => unwrap(api.GET('/api/v1/me'));
