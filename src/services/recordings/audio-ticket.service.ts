import { z } from 'zod';
import { randomToken, sha256Hex } from '../../crypto/random.js';
import type { Database } from '../../db/database.js';
import type { Actor } from '../../domain/auth-context.js';
import { notFound } from '../../domain/errors.js';
import type { TicketStore } from '../../adapters/redis/ticket.adapter.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { AudioStoreService, Playback } from './audio-store.service.js';
import { actorTicket, actorTicketSchema, readActorTicket } from '../auth/actor-ticket.js';
import type { AuditService } from '../operations/audit.service.js';
import { currentActor } from '../live/live-access.js';

/**
 * Playback tickets (docs/audio-storage.md): the panel's <audio> element streams kept audio with
 * HTTP ranges from a URL that carries a ticket instead of the bearer token. A ticket is 256
 * random bits, stored only as its SHA-256, valid for one recording and one user's session for
 * five minutes, reusable meanwhile (a player makes a request per seek). Every use re-checks the
 * session (logout or a revoked device ends it at once), the role and a support grant, then applies
 * exactly the bearer route's visibility rule. Anything wrong — unknown, expired, another
 * recording, a session gone — is 404, indistinguishable from audio that does not exist.
 * Tickets are filed under the org: the in-memory store's cap evicts an org's own oldest ticket
 * first, so one tenant requesting tickets in a loop cannot end another's playback.
 */
export const AUDIO_TICKET_TTL_SECONDS = 300;

const ticketBody = actorTicketSchema.extend({
  expiresAt: z.number(),
  /** Support access through this ticket is already in the audit log (once per ticket, not per seek). */
  audited: z.boolean().optional(),
});
type TicketBody = z.infer<typeof ticketBody>;

export class AudioTicketService {
  constructor(
    private readonly db: Database,
    private readonly audio: Pick<AudioStoreService, 'requirePlayable' | 'playback'>,
    private readonly tickets: Pick<TicketStore, 'put' | 'get'>,
    private readonly clock: Clock,
    private readonly audit: Pick<AuditService, 'recordStandalone'>,
  ) {}

  /** A ticket for audio the actor may play now (404 otherwise, as GET /audio would answer). */
  async issue(actor: Actor, recordingId: string): Promise<{ ticket: string; expiresIn: number }> {
    await this.audio.requirePlayable(actor, recordingId);
    const ticket = randomToken();
    const body: TicketBody = {
      ...actorTicket(actor, recordingId.toLowerCase()),
      // Checked against the service clock as well as the store's TTL, so expiry is testable
      // and a store with a laxer TTL can never extend it.
      expiresAt: this.clock.now().getTime() + AUDIO_TICKET_TTL_SECONDS * 1000,
    };
    await this.tickets.put(
      sha256Hex(ticket),
      JSON.stringify(body),
      AUDIO_TICKET_TTL_SECONDS * 1000,
      actor.orgId,
    );
    return { ticket, expiresIn: AUDIO_TICKET_TTL_SECONDS };
  }

  /** GET /audio/stream?ticket=: the actor behind the ticket as it is now, then the usual playback. */
  async playback(
    ticket: string,
    recordingId: string,
    rangeHeader: string | undefined,
    ip: string,
  ): Promise<Playback> {
    const body = await this.read(ticket);
    if (
      !body ||
      body.recordingId !== recordingId.toLowerCase() ||
      body.expiresAt <= this.clock.now().getTime()
    )
      throw notFound('Audio');
    const actor = await currentActor(this.db, this.clock, {
      userId: body.userId,
      orgId: body.orgId,
      sessionId: body.sessionId,
      role: body.role,
      viaSupportGrant: body.viaSupportGrant,
      apiToken: body.apiToken,
      ip,
    });
    if (!actor) throw notFound('Audio');
    // The stream route has no bearer token, so the HTTP plugin's support audit never sees it:
    // support staff listening is recorded here, before any audio is read, once per ticket (a
    // player makes a request per seek).
    if (actor.viaSupportGrant && !body.audited) {
      await this.audit.recordStandalone({
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'support',
        action: 'support.access',
        ip,
        details: { method: 'GET', route: '/api/v1/recordings/:id/audio/stream', recordingId },
      });
      const left = body.expiresAt - this.clock.now().getTime();
      if (left > 0)
        await this.tickets.put(
          sha256Hex(ticket),
          JSON.stringify({ ...body, audited: true }),
          left,
          body.orgId,
        );
    }
    return this.audio.playback(actor, recordingId, rangeHeader);
  }

  private async read(ticket: string): Promise<TicketBody | undefined> {
    return readActorTicket(ticketBody, await this.tickets.get(sha256Hex(ticket)));
  }
}
