import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { AppError, errorCodes, type ErrorCode } from '../../domain/errors.js';
import { OUTAGE_RETRY_AFTER_SECONDS, outageOf } from '../../domain/outage.js';

/**
 * The one place errors become HTTP: RFC 9457 problem+json with a stable `code`. Client errors say
 * what was wrong; server errors say nothing beyond "internal error" and a request id to quote.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  instance?: string;
  requestId: string;
  errors?: { path: string; message: string }[];
  [extra: string]: unknown;
}

function send(reply: FastifyReply, req: FastifyRequest, code: ErrorCode, detail?: string, extra?: object) {
  const { status, title } = errorCodes[code];
  // A refused body that is still arriving will never be read: close the connection, or the next
  // request on it would wait behind the rest of this one for ever (`complete` is undefined under inject).
  if (req.raw.complete === false) reply.header('connection', 'close');
  const body: Problem = {
    type: `https://sotto.dev/problems/${code.replace(/_/g, '-')}`,
    title,
    status,
    code,
    ...(detail && status < 500 ? { detail } : {}),
    instance: req.url.split('?')[0],
    requestId: req.id,
    ...extra,
  };
  return reply.status(status).type('application/problem+json').send(body);
}

/** Fastify's own client errors (body parsing, limits) mapped onto our codes. */
function fromFastify(err: FastifyError): { code: ErrorCode; detail: string } | undefined {
  switch (err.code) {
    case 'FST_CSRF_MISSING_SECRET':
    case 'FST_CSRF_INVALID_TOKEN':
      // @fastify/csrf-protection on cookie-authenticated auth routes.
      return {
        code: 'csrf_failed',
        detail: 'Missing or invalid CSRF token (get one from GET /api/v1/auth/csrf)',
      };
    // @fastify/multipart's form limits: a malformed form, not a big one.
    case 'FST_FILES_LIMIT':
      return { code: 'bad_request', detail: 'Too many files in the form' };
    case 'FST_FIELDS_LIMIT':
      return { code: 'bad_request', detail: 'Too many fields in the form' };
    case 'FST_PARTS_LIMIT':
      return { code: 'bad_request', detail: 'Too many parts in the form' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'payload_too_large', detail: 'Request body is too large' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 'unsupported_media_type', detail: 'Unsupported content type' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: 'bad_request', detail: 'Content-Length does not match the body' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { code: 'bad_request', detail: 'Body is not valid JSON' };
  }
  if (err.statusCode === 413) return { code: 'payload_too_large', detail: 'Request body is too large' };
  if (err.statusCode === 415) return { code: 'unsupported_media_type', detail: 'Unsupported content type' };
  if (err.statusCode === 429) return { code: 'rate_limited', detail: 'Too many requests' };
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return {
      code: 'bad_request',
      detail: err instanceof SyntaxError ? 'Body is not valid JSON' : 'Bad request',
    };
  }
  return undefined;
}

function handle(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  // Anything can be thrown; only objects can carry our codes. A thrown string or number is a bug
  // and its text may be anything, so it is logged, never shown.
  if (typeof err !== 'object' || err === null) {
    req.log.error({ thrown: typeof err }, 'a non-error value was thrown');
    return send(reply, req, 'internal');
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const errors = err.validation.map((v) => ({
      path: [err.validationContext, ...String(v.instancePath).split('/').filter(Boolean)].join('.'),
      message: v.message ?? 'invalid',
    }));
    return send(reply, req, 'validation_failed', 'The request did not match the expected shape', {
      errors,
    });
  }
  if (err instanceof AppError) {
    // A refusal for load is logged once per spell by the saturation plugin, not per request.
    if (err.status >= 500 && err.code !== 'server_busy')
      req.log.error({ err, code: err.code }, 'request failed');
    const retryAfter =
      err.details?.retryAfterSeconds ??
      (err.code === 'unavailable' || err.code === 'insufficient_storage'
        ? OUTAGE_RETRY_AFTER_SECONDS[err.code]
        : undefined);
    if (typeof retryAfter === 'number')
      reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
    return send(reply, req, err.code, err.message, err.status < 500 ? err.details : undefined);
  }
  // The database or Redis unreachable, the disk full: the client may try again later (not a bug).
  const outage = outageOf(err);
  if (outage) {
    req.log.warn({ err, code: outage }, 'request failed: a dependency is unavailable or the disk is full');
    reply.header('retry-after', String(OUTAGE_RETRY_AFTER_SECONDS[outage]));
    return send(reply, req, outage);
  }
  if (isResponseSerializationError(err)) {
    req.log.error({ err }, 'response did not match its schema');
    return send(reply, req, 'internal');
  }
  const mapped = fromFastify(err);
  if (mapped) return send(reply, req, mapped.code, mapped.detail);
  req.log.error({ err }, 'unhandled error');
  return send(reply, req, 'internal');
}

/** Fastify's default error answer repeats the error message: never let it be reached. */
function safely(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  try {
    return handle(err, req, reply);
  } catch (failure) {
    req.log.error({ err: failure }, 'the error handler failed');
    return send(reply, req, 'internal');
  }
}

/**
 * Errors the router raises before any route or hook runs (a malformed percent-encoding, an
 * over-long path parameter). Without this Fastify answers them itself with plain JSON that echoes
 * the path. Pass as the `frameworkErrors` option of the Fastify factory.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  switch (err.code) {
    case 'FST_ERR_BAD_URL':
      void send(reply, req, 'bad_request', 'The path is not a valid URL');
      return;
    case 'FST_ERR_MAX_PARAM_LENGTH':
      void send(reply, req, 'bad_request', 'A path parameter is too long');
      return;
    default:
      void safely(err, req, reply);
  }
}

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler(safely);
  app.setNotFoundHandler((req, reply) => send(reply, req, 'not_found', 'No such route'));
}
