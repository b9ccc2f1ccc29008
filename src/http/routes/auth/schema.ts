import { z } from 'zod';

/**
 * Request and response shapes of /api/v1/auth. Password length and strength are checked by the
 * service (422 weak_password with the reason); the bounds here only cap the input size.
 */
const email = z.string().trim().toLowerCase().max(320).email();
const password = z.string().min(1).max(1024);
const code = z.string().trim().min(1).max(64);
const clientFlag = z.enum(['browser', 'api']).optional();

export const signupBody = z.object({
  email,
  password,
  name: z.string().trim().min(1).max(200),
  organization: z.string().trim().min(1).max(200),
});

/** The same for every address, new or already registered (no account enumeration). */
export const signupAccepted = z.object({
  /** A link to finish went to the address (or, if it has an account, a note saying so). */
  status: z.literal('check_email'),
});

/** The token from the emailed link (`/verify-email#token=…`). */
export const signupVerifyBody = z.object({ token: z.string().min(20).max(200) });

/** The org and its owner, created by a verified signup. */
export const signupResponse = z.object({
  user: z.object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    role: z.enum(['owner', 'admin', 'member']),
  }),
  organization: z.object({ id: z.string(), name: z.string(), slug: z.string() }),
});

export const loginBody = z.object({
  email,
  password,
  /** A current TOTP code or an unused recovery code. */
  code: code.optional(),
  /** `browser`: the refresh token goes into an HttpOnly cookie instead of the body. */
  client: clientFlag,
});

export const tokenResponse = z.object({
  accessToken: z.string(),
  /** Absent for browser clients, which receive it as the __Host-sotto_refresh cookie. */
  refreshToken: z.string().optional(),
  expiresIn: z.number().int(),
  tokenType: z.literal('Bearer'),
});

export const refreshBody = z
  .object({
    /** Omit to use the __Host-sotto_refresh cookie (then an X-CSRF-Token header is required). */
    refreshToken: z.string().min(1).max(200).optional(),
    client: clientFlag,
  })
  .nullish(); // a browser's cookie refresh may come without any body

export const logoutBody = z.object({ refreshToken: z.string().min(1).max(200).optional() }).nullish();

export const csrfResponse = z.object({ token: z.string() });

export const deviceList = z.array(
  z.object({
    id: z.string(),
    userAgent: z.string(),
    ip: z.string(),
    createdAt: z.string(),
    lastSeenAt: z.string(),
    expiresAt: z.string(),
    current: z.boolean(),
  }),
);

export const deviceParams = z.object({ id: z.uuid() });

export const revokeAllResponse = z.object({ revoked: z.number().int() });

export const passwordBody = z.object({
  currentPassword: password,
  newPassword: password,
});

export const totpStartResponse = z.object({ secret: z.string(), otpauthUri: z.string() });

export const codeBody = z.object({ code });

export const recoveryCodesResponse = z.object({ recoveryCodes: z.array(z.string()) });

export const noContent = z.undefined();
