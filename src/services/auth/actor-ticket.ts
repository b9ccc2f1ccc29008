import { z } from 'zod';
import { apiScopes } from '../../domain/api-scopes.js';
import type { Actor } from '../../domain/auth-context.js';
import { orgRoles } from '../../domain/roles.js';

/**
 * What a ticket (live handshake, audio playback) stands for: the actor who asked for it, for one
 * recording. Redeeming it re-checks that actor as they are now (`currentActor`), with the ip of
 * the request that redeems it, so a ticket never outlives the session, role or grant behind it.
 */
export const actorTicketSchema = z.object({
  userId: z.string(),
  orgId: z.string(),
  sessionId: z.string(),
  role: z.enum([...orgRoles, 'support']),
  viaSupportGrant: z.boolean(),
  recordingId: z.string(),
  /** An API token's id and scopes: the redeemed actor is narrowed (and re-checked) like the token. */
  apiToken: z.object({ id: z.string(), scopes: z.array(z.enum(apiScopes)) }).optional(),
});
export type ActorTicket = z.infer<typeof actorTicketSchema>;

export function actorTicket(actor: Actor, recordingId: string): ActorTicket {
  return {
    userId: actor.userId,
    orgId: actor.orgId,
    sessionId: actor.sessionId,
    role: actor.role,
    viaSupportGrant: actor.viaSupportGrant,
    recordingId,
    ...(actor.apiToken ? { apiToken: { id: actor.apiToken.id, scopes: [...actor.apiToken.scopes] } } : {}),
  };
}

/** A stored ticket value read back; undefined for anything not ours (a shared Redis, a forgery). */
export function readActorTicket<S extends z.ZodType>(
  schema: S,
  raw: string | undefined,
): z.infer<S> | undefined {
  if (raw === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}
