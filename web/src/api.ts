/**
 * The panel's only way to the server: the public /api/v1 API, same origin.
 *
 * The access token lives in this module's memory only (never localStorage: an XSS could read
 * it there). The refresh token is the server's `__Host-sotto_refresh` HttpOnly cookie, which
 * JavaScript cannot read; a cookie refresh must carry a CSRF token from GET /auth/csrf in the
 * X-CSRF-Token header (docs/security.md).
 */
import { clearDrafts } from './pages/edit-drafts';

export interface Problem {
  status: number;
  code: string;
  title: string;
  detail?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(p: Problem) {
    super(p.detail ?? p.title);
    this.name = 'ApiError';
    this.status = p.status;
    this.code = p.code;
  }
}

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

async function problemOf(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as Partial<Problem>;
    return new ApiError({
      status: res.status,
      code: body.code ?? 'error',
      title: body.title ?? res.statusText,
      ...(body.detail ? { detail: body.detail } : {}),
    });
  } catch {
    return new ApiError({ status: res.status, code: 'error', title: `The server answered ${res.status}` });
  }
}

const json = (body: unknown): RequestInit => ({
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

type RefreshOutcome = 'ok' | 'refused' | 'offline';

/**
 * Trades the refresh cookie for a new access token. One at a time: the server rotates the
 * refresh token and treats a second use of the old one as theft (it ends the session).
 */
function refreshOnce(): Promise<RefreshOutcome> {
  refreshing ??= (async (): Promise<RefreshOutcome> => {
    try {
      const csrf = await fetch('/api/v1/auth/csrf', { credentials: 'same-origin' });
      if (!csrf.ok) return 'offline';
      const { token } = (await csrf.json()) as { token: string };
      const res = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        credentials: 'same-origin',
        body: '{}',
        headers: { 'content-type': 'application/json', 'x-csrf-token': token, 'x-sotto-client': 'browser' },
      });
      // Refused: this device's session was revoked or has expired.
      if (!res.ok) return res.status === 401 || res.status === 403 ? 'refused' : 'offline';
      const t = (await res.json()) as { accessToken: string; expiresIn: number };
      setToken(t.accessToken, t.expiresIn);
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
  const res = await sendUnauthenticated('/api/v1/auth/login', {
    method: 'POST',
    ...json({ email, password, client: 'browser', ...(code ? { code } : {}) }),
  });
  if (!res.ok) throw await problemOf(res);
  const t = (await res.json()) as { accessToken: string; expiresIn: number };
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

const OFFLINE = 'Sotto could not be reached. Check your connection and try again.';
const offline = () => new ApiError({ status: 0, code: 'network', title: OFFLINE });

/** fetch, with a lost connection as a plain sentence instead of the browser's "Failed to fetch". */
async function sendUnauthenticated(path: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(path, { ...init, credentials: 'same-origin' });
  } catch (err) {
    if (init.signal?.aborted) throw err;
    throw offline();
  }
}

/** Whether an error means the request never reached the server (offline, connection dropped). */
export const isOffline = (err: unknown): boolean => err instanceof ApiError && err.code === 'network';

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

/** An authenticated request; one retry after a refresh when the token was refused. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const send = async () =>
    sendUnauthenticated(path, {
      ...init,
      headers: {
        ...(init.headers as Record<string, string>),
        ...(supportOrg ? { 'x-sotto-org': supportOrg } : {}),
        authorization: `Bearer ${await currentToken()}`,
      },
    });
  let res = await send();
  // The session ended under the page: refresh, or sign in again in the dialog, then send the
  // same request once more, so the action the person took (a Save) completes.
  if ((await sessionRefused(res)) && (await recover())) res = await send();
  if (await sessionRefused(res)) endSession(REVOKED);
  return res;
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await request(path);
  if (!res.ok) throw await problemOf(res);
  return (await res.json()) as T;
}

export async function sendJson<T>(method: string, path: string, body: unknown): Promise<T> {
  const res = await request(path, { method, ...json(body) });
  if (!res.ok) throw await problemOf(res);
  return res.status === 204 ? (undefined as T) : ((await res.json()) as T);
}

export async function del(path: string): Promise<void> {
  const res = await request(path, { method: 'DELETE' });
  if (!res.ok) throw await problemOf(res);
}

/** Fetches a binary answer (export, audio) with the bearer token; the caller owns the blob. */
export async function getBlob(path: string): Promise<Blob> {
  const res = await request(path);
  if (!res.ok) throw await problemOf(res);
  return res.blob();
}

// ---- auth ----

export async function login(email: string, password: string, code?: string): Promise<void> {
  const res = await sendUnauthenticated('/api/v1/auth/login', {
    method: 'POST',
    ...json({ email, password, client: 'browser', ...(code ? { code } : {}) }),
  });
  if (!res.ok) throw await problemOf(res);
  const t = (await res.json()) as { accessToken: string; expiresIn: number };
  setToken(t.accessToken, t.expiresIn);
}

/**
 * Asks for a new organization. The server answers alike whether or not the address already has
 * an account, and mails the rest (a link to finish, or a note): nothing to log in to yet.
 */
export async function signup(input: {
  email: string;
  password: string;
  name: string;
  organization: string;
}): Promise<void> {
  const res = await sendUnauthenticated('/api/v1/auth/signup', { method: 'POST', ...json(input) });
  if (!res.ok) throw await problemOf(res);
}

/** The emailed link's token: creates the organization and its owner (log in afterwards). */
export async function verifySignup(
  token: string,
): Promise<{ user: { email: string }; organization: { name: string } }> {
  const res = await sendUnauthenticated('/api/v1/auth/signup/verify', { method: 'POST', ...json({ token }) });
  if (!res.ok) throw await problemOf(res);
  return (await res.json()) as { user: { email: string }; organization: { name: string } };
}

export async function logout(): Promise<void> {
  try {
    // With the bearer token no CSRF token is needed; the server also clears the cookie.
    if (accessToken)
      await fetch('/api/v1/auth/logout', {
        method: 'POST',
        credentials: 'same-origin',
        body: '{}',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
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

// ---- own account: password, second factor, devices ----

export function changePassword(currentPassword: string, newPassword: string): Promise<void> {
  return sendJson('POST', '/api/v1/auth/password', { currentPassword, newPassword });
}

export function startTotp(): Promise<{ secret: string; otpauthUri: string }> {
  return sendJson('POST', '/api/v1/auth/mfa/totp', {});
}

/** Turns TOTP on; the answer's recovery codes are shown once and never again. */
export function confirmTotp(code: string): Promise<{ recoveryCodes: string[] }> {
  return sendJson('POST', '/api/v1/auth/mfa/totp/confirm', { code });
}

export function disableTotp(code: string): Promise<void> {
  return sendJson('DELETE', '/api/v1/auth/mfa/totp', { code });
}

export interface Device {
  id: string;
  userAgent: string;
  ip: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  current: boolean;
}

export function listDevices(): Promise<Device[]> {
  return getJson('/api/v1/auth/devices');
}

export function revokeDevice(id: string): Promise<void> {
  return del(`/api/v1/auth/devices/${encodeURIComponent(id)}`);
}

/** Revokes every session of the user, this one included (the server clears the cookie too). */
export async function revokeAllDevices(): Promise<number> {
  const { revoked } = await sendJson<{ revoked: number }>('POST', '/api/v1/auth/devices/revoke-all', {});
  return revoked;
}

/**
 * Uploads with XMLHttpRequest, the only browser API that reports upload progress.
 * Resolves with the new recording's id.
 */
export async function uploadRecording(
  file: File,
  title: string,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<string> {
  const token = await currentToken();
  const form = new FormData();
  if (title.trim()) form.append('title', title.trim());
  form.append('audio', file, file.name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/recordings');
    xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body: { id?: string; code?: string; title?: string; detail?: string } = {};
      try {
        body = JSON.parse(xhr.responseText) as typeof body;
      } catch {
        // not JSON: reported by status below
      }
      if (xhr.status === 202 && body.id) resolve(body.id);
      else
        reject(
          new ApiError({
            status: xhr.status,
            code: body.code ?? 'error',
            title: body.title ?? `The server answered ${xhr.status}`,
            ...(body.detail ? { detail: body.detail } : {}),
          }),
        );
    };
    xhr.onerror = () =>
      reject(
        new ApiError({ status: 0, code: 'network', title: 'The upload was interrupted (network error)' }),
      );
    xhr.onabort = () => reject(new ApiError({ status: 0, code: 'aborted', title: 'Upload cancelled' }));
    signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(form);
  });
}

// ---- shapes ----

export type RecordingStatus = 'live' | 'queued' | 'processing' | 'done' | 'failed';

export interface Recording {
  id: string;
  title: string | null;
  status: RecordingStatus;
  progress: number;
  /** What a moving job is doing: queued, decoding, transcribing, speakers, saving (null otherwise). */
  stage?: 'queued' | 'decoding' | 'transcribing' | 'speakers' | 'saving' | null;
  /** Seconds since processing started, on the server's clock (processing only). */
  elapsedSeconds?: number | null;
  /** The server's estimate of the seconds left, once the progress means something. */
  remainingSeconds?: number | null;
  error: string | null;
  durationSeconds: number | null;
  createdAt: string;
  completedAt: string | null;
}

export interface Segment {
  id: string;
  speaker: string;
  start: number;
  end: number;
  text: string;
  edited: boolean;
}

export interface Transcript {
  revision: number;
  segments: Segment[];
  speakers: { id: string; name: string }[];
}

export interface Report {
  durationSeconds: number;
  speechSeconds: number;
  silenceSeconds: number;
  speakers: {
    speaker: string;
    name: string;
    talkSeconds: number;
    share: number;
    turns: number;
    words: number;
    wordsPerMinute: number;
    longestMonologueSeconds: number;
  }[];
  turns: number;
  overlaps: number;
  interruptions: number;
  topKeywords: { word: string; count: number }[];
}

export interface Me {
  user: { id: string; email: string; name: string };
  organization: { id: string; name: string } | null;
  role: string;
  mfaEnabled: boolean;
}
