import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Structured logs. Request logs carry method, path, status and ids only (Fastify's default
 * serializers never log bodies). Redaction is the second line of defence for anything that
 * reaches a log object by mistake: credentials, tokens, secrets and transcript text.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'sotto' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
