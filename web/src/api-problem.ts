import { ApiError } from './api';

/**
 * The ApiError of a refused answer whose body may be a problem document: its code, title and
 * detail when it is JSON, else only the status. For the few calls that do not go through
 * getJson/sendJson (a signed-out POST, a DELETE that answers JSON).
 */
export async function refusedAnswer(res: Response): Promise<ApiError> {
  let body: { code?: string; title?: string; detail?: string } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON: reported by status
  }
  return new ApiError({
    status: res.status,
    code: body.code ?? 'error',
    title: body.title ?? `The server answered ${res.status}`,
    ...(body.detail ? { detail: body.detail } : {}),
  });
}
