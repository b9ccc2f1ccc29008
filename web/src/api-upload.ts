/** The recording upload (POST /api/v1/recordings): multipart, with progress. */
import { currentToken } from './api';
import { ApiError, problemOf, type Answer } from './api-client';

const isCreated = (body: unknown): body is Answer<'/api/v1/recordings', 'post', 202> =>
  typeof body === 'object' && body !== null && 'id' in body && typeof body.id === 'string';

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
      let body: unknown;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // not JSON: reported by status below
      }
      const created = xhr.status === 202 && isCreated(body) ? body : null;
      if (created) resolve(created.id);
      else reject(problemOf(xhr.status, body, `The server answered ${xhr.status}`));
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
