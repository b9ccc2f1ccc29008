/**
 * The typed HTTP layer under the panel's API calls: openapi-fetch clients over the paths, bodies
 * and answers of openapi.json (web/src/api-schema.d.ts, generated from the server's zod schemas by
 * `npm run openapi`), the panel's error type, and helpers that name an answer's or a body's type.
 * The session (bearer token, refresh, re-authentication) is a middleware added in api.ts.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './api-schema';

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

const OFFLINE = 'Sotto could not be reached. Check your connection and try again.';
export const offline = (): ApiError => new ApiError({ status: 0, code: 'network', title: OFFLINE });

/** Whether an error means the request never reached the server (offline, connection dropped). */
export const isOffline = (err: unknown): boolean => err instanceof ApiError && err.code === 'network';

/**
 * The ApiError of a refused answer from its body as it was read: a problem document (JSON), or
 * text or nothing when the answer was not JSON. `untitled` stands in for a missing title.
 */
export function problemOf(status: number, body: unknown, untitled: string): ApiError {
  if (typeof body !== 'object' || body === null)
    return new ApiError({ status, code: 'error', title: `The server answered ${status}` });
  const p: Partial<Record<keyof Problem, unknown>> = body;
  return new ApiError({
    status,
    code: typeof p.code === 'string' ? p.code : 'error',
    title: typeof p.title === 'string' ? p.title : untitled,
    ...(typeof p.detail === 'string' && p.detail ? { detail: p.detail } : {}),
  });
}

/** fetch's "Failed to fetch" becomes a plain sentence; a request the page aborted stays aborted. */
export const offlineErrors: Middleware = {
  onError: ({ request }) => (request.signal.aborted ? undefined : offline()),
};

/** Signed-out calls (login, sign-up, refresh, invitations): no bearer token, same origin. */
export const publicApi = createClient<paths>({ credentials: 'same-origin' });
publicApi.use(offlineErrors);

type Method = 'get' | 'put' | 'post' | 'patch' | 'delete';
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

/** The JSON answer of `M P` with status S (200 unless said). */
export type Answer<P extends keyof paths, M extends Method, S extends number = 200> =
  Operation<P, M> extends { responses: Record<S, { content: { 'application/json': infer B } }> } ? B : never;

/** The JSON body `M P` takes. */
export type Body<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;

/** The query parameters `M P` takes. */
export type Query<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

/** What openapi-fetch resolves with: the data of a 2xx answer, or the error body of another. */
type Outcome = { data?: unknown; error?: unknown; response: Response };
type Success<R> = R extends { data: infer D; error?: never } ? D : never;

/** The answer's data, or the ApiError of a refused answer. */
export async function unwrap<R extends Outcome>(call: Promise<R>): Promise<Success<R>> {
  const { data, error, response } = await call;
  if (!response.ok) throw problemOf(response.status, error, response.statusText);
  // A 2xx answer: openapi-fetch read it as the schema's success type (its union's data side).
  return data as Success<R>;
}
