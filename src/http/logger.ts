import pino, { type DestinationStream, type Logger } from 'pino';
import { SafeLogDestination } from '../adapters/system/log-destination.adapter.js';

/**
 * Structured logs. Request logs carry method, path, status and ids only (Fastify's default
 * serializers never log bodies). Redaction is the second line of defence for anything that
 * reaches a log object by mistake: credentials, tokens, secrets and transcript text.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  // Browsers offer their live-recording ticket as a WebSocket subprotocol (docs/live.md).
  'req.headers["sec-websocket-protocol"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.secret',
  '*.totpSecret',
  '*.otpauthUri',
  '*.code',
  '*.recoveryCodes',
  '*.text',
  '*.transcript',
  '*.masterKey',
  'password',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  'text',
];

/**
 * `destination` defaults to stdout through SafeLogDestination: a full or failing log disk drops
 * (and counts) lines instead of freezing or crashing the server.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Fastify's own request serializer logs the full URL; query strings carry user content
      // (a search `q`), so only the path is logged. Fastify prefers the logger's serializers.
      serializers: { req: requestForLog },
      base: { service: 'sotto' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? new SafeLogDestination(1),
  );
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number } | undefined;
}

/** Fastify's request log fields, with the query string cut off the URL. */
export function requestForLog(req: LoggedRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? req.url.split('?')[0] : undefined,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}
