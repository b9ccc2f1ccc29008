/**
 * The panel's only way to the server: the public /api/v1 API, same origin.
 *
 * The access token lives in this module's memory only (never localStorage: an XSS could read
 * it there). The refresh token is the server's `__Host-sotto_refresh` HttpOnly cookie, which
 * JavaScript cannot read; a cookie refresh must carry a CSRF token from GET /auth/csrf in the
 * X-CSRF-Token header (docs/security.md).
 */

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
let refreshing: Promise<boolean> | null = null;
const listeners = new Set<(signedIn: boolean) => void>();

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

/**
 * Trades the refresh cookie for a new access token. One at a time: the server rotates the
 * refresh token and treats a second use of the old one as theft (it ends the session).
 */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      const csrf = await fetch('/api/v1/auth/csrf', { credentials: 'same-origin' });
      if (!csrf.ok) return false;
      const { token } = (await csrf.json()) as { token: string };
      const res = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        credentials: 'same-origin',
        body: '{}',
        headers: { 'content-type': 'application/json', 'x-csrf-token': token, 'x-sotto-client': 'browser' },
      });
      if (!res.ok) {
        setToken(null);
        return false;
      }
      const t = (await res.json()) as { accessToken: string; expiresIn: number };
      setToken(t.accessToken, t.expiresIn);
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** A token good for at least the next half minute, refreshed first when needed. */
export async function currentToken(): Promise<string> {
  if (!accessToken || Date.now() > expiresAt - 30_000) await refresh();
  if (!accessToken)
    throw new ApiError({ status: 401, code: 'unauthenticated', title: 'Please log in again' });
  return accessToken;
}

/** An authenticated request; one retry after a refresh when the token was refused. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const send = async () =>
    fetch(path, {
      ...init,
      credentials: 'same-origin',
      headers: {
        ...(init.headers as Record<string, string>),
        authorization: `Bearer ${await currentToken()}`,
      },
    });
  let res = await send();
  if (res.status === 401 && (await refresh())) res = await send();
  if (res.status === 401) setToken(null);
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
  const res = await fetch('/api/v1/auth/login', {
    method: 'POST',
    credentials: 'same-origin',
    ...json({ email, password, client: 'browser', ...(code ? { code } : {}) }),
  });
  if (!res.ok) throw await problemOf(res);
  const t = (await res.json()) as { accessToken: string; expiresIn: number };
  setToken(t.accessToken, t.expiresIn);
}

export async function signup(input: {
  email: string;
  password: string;
  name: string;
  organization: string;
}): Promise<void> {
  const res = await fetch('/api/v1/auth/signup', { method: 'POST', ...json(input) });
  if (!res.ok) throw await problemOf(res);
  await login(input.email, input.password);
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
    setToken(null);
  }
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
