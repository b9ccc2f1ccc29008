/**
 * Typed application errors. Services throw these; the HTTP layer maps `code` to a status and an
 * RFC 9457 problem document in one place (http/plugins/error-handler.ts). Messages of codes with
 * `expose: true` are written for the user; every other error becomes a generic 500.
 */
export const errorCodes = {
  bad_request: { status: 400, title: 'Bad request' },
  validation_failed: { status: 400, title: 'Validation failed' },
  invalid_credentials: { status: 401, title: 'Invalid credentials' },
  mfa_required: { status: 401, title: 'A one-time code is required' },
  unauthenticated: { status: 401, title: 'Authentication required' },
  token_expired: { status: 401, title: 'Token expired' },
  csrf_failed: { status: 403, title: 'CSRF check failed' },
  forbidden: { status: 403, title: 'Forbidden' },
  /** Password login refused: the account's organization signs in through its IdP (docs/sso.md). */
  sso_required: { status: 403, title: 'Single sign-on required' },
  not_found: { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  weak_password: { status: 422, title: 'Password not accepted' },
  invalid_code: { status: 422, title: 'Invalid code' },
  /** The request (headers or body) did not arrive in time (SOTTO_HTTP_*_TIMEOUT_SECONDS); the connection is closed. */
  request_timeout: { status: 408, title: 'Request timeout' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  undecodable_audio: { status: 422, title: 'Audio could not be decoded' },
  // A Range outside the audio; the answer carries Content-Range: bytes */size.
  range_not_satisfiable: { status: 416, title: 'Range not satisfiable' },
  rate_limited: { status: 429, title: 'Too many requests' },
  /** The org has SOTTO_QUEUE_MAX_PER_ORG recordings waiting or running: uploads wait until some finish. */
  queue_full: { status: 429, title: 'Too many recordings waiting' },
  decryption_failed: { status: 500, title: 'Internal error' },
  internal: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'Service unavailable' },
  /** This node is saturated (SOTTO_SATURATION_*) and refuses new work for a moment; Retry-After says when to try again. */
  server_busy: { status: 503, title: 'Server busy' },
  /** The data disk is (nearly) full: nothing more can be stored until space is freed (domain/outage.ts). */
  insufficient_storage: { status: 507, title: 'Insufficient storage' },
  /** No usable speech-recognition engine (binary or model missing, model corrupt, GPU asked for but absent). */
  engine_unavailable: { status: 503, title: 'Transcription engine unavailable' },
  /** The engine was there but a transcription run failed (crash, bad answer, remote HTTP error). */
  engine_failed: { status: 502, title: 'Transcription engine failed' },
  /** A model download failed or did not match its published SHA-256. */
  model_download_failed: { status: 502, title: 'Model download failed' },
  decoder_unavailable: { status: 503, title: 'Audio decoder unavailable' },
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class AppError extends Error {
  readonly code: ErrorCode;
  /** Extra fields safe to show the client (e.g. retryAfter), never internals. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(message ?? errorCodes[code].title, options);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return errorCodes[this.code].status;
  }
}

export const notFound = (what = 'Resource'): AppError => new AppError('not_found', `${what} not found`);
export const forbidden = (message = 'You do not have permission to do this'): AppError =>
  new AppError('forbidden', message);

/** Failure codes a remote transcription worker may report for a job (anything else: 'internal'). */
export const workerFailureCodes = [
  'undecodable_audio',
  'unsupported_media_type',
  'payload_too_large',
  'engine_unavailable',
  'engine_failed',
  'decoder_unavailable',
  'internal',
] as const satisfies readonly ErrorCode[];
