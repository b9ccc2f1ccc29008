import { AppError } from './errors.js';

const MAX_NAME = 100;
// C0/C1 control characters never belong in a name (log and terminal injection).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** The label a person gives a worker token or an API token: trimmed, 1–100 characters, no controls. */
export function checkTokenName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length < 1 || trimmed.length > MAX_NAME || CONTROL.test(trimmed))
    throw new AppError(
      'bad_request',
      `The name must be 1 to ${MAX_NAME} characters, without control characters`,
    );
  return trimmed;
}
