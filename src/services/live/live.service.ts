import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import { randomToken, sha256Hex } from '../../crypto/random.js';
import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import { actorTicket, actorTicketSchema, readActorTicket } from '../auth/actor-ticket.js';
import type { AsrEngine } from '../../adapters/asr/engine.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { LiveBus } from '../../adapters/redis/live-bus.types.js';
import { SpoolFencedError } from '../../adapters/redis/live-spool-replica.adapter.js';
import { liveRecordingRepository } from '../../repositories/live/live-recording.repository.js';
import type { TicketStore } from '../../adapters/redis/ticket.adapter.js';
import { recordingRepository } from '../../repositories/recordings/recording.repository.js';
import type { UploadFileStore } from '../../adapters/storage/upload-file.adapter.js';
import type { AudioStoreService } from '../recordings/audio-store.service.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import { LIVE_CLOSE } from './live-session.js';
import { currentActor, recheckSockets, visibility } from './live-access.js';
import { sealLiveRecording } from './live-finalise.js';
import { openIngestSocket, type IngestHandle } from './live-ingest.js';
import { LivePublisher } from './live-publisher.js';
import { liveClaimTtlMs, type LiveSpools } from './live-spool.js';
import { sweepLive, type SweepHooks } from './live-sweep.js';
import { CLOSE_RESTART, LiveSessions, type Session } from './live-session-registry.js';
import { LiveRechecks } from './live-recheck.js';
import { LiveViewers, type LiveSocket } from './live-viewers.js';
import { requirePermission } from '../orgs/org.service.js';
import { titleLocation } from '../recordings/recording.service.js';
import { indexRecording } from '../search/search-index.service.js';

/**
 * Live recordings (docs/live.md): create, browser tickets, the handshake checks, ingest (one
 * LiveSession per recording on the node that receives its audio, every frame spooled to disk,
 * encrypted, before it is acknowledged), the restore of a session from its spool after a restart,
 * and the stop that turns the spooled audio into an ordinary sealed recording with a queued job,
 * so the stored transcript is exactly what an upload of the same audio gives. Viewers and the
 * periodic re-check of every open socket live in LiveViewers; one ingest socket's frames in
 * live-ingest.ts; the sealing and publication of live events in live-publisher.ts.
 */
export type LivePurpose = 'ingest' | 'watch';

export interface LiveDeps {
  db: Database;
  keys: KeyService;
  audit: AuditService;
  audio: Pick<AudioStoreService, 'seal' | 'remove'>;
  uploads: Pick<UploadFileStore, 'save'>;
  bus: LiveBus;
  spools: LiveSpools;
  tickets: Pick<TicketStore, 'put' | 'take'>;
  engine: () => Promise<AsrEngine>;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
  limits: Config['live'];
  /** This node, for the ingest claim; the spool's Redis replica fences its appends with it. */
  nodeId?: string;
}

export type { IngestHandle } from './live-ingest.js';

const TICKET_TTL_SECONDS = 30;
/** How often the timer polls the clock-driven duties (tick). */
const TICK_MS = 1000;

export class LiveService {
  private readonly live: LiveSessions;
  private lastSweep = 0;
  readonly viewers: LiveViewers;
  private readonly rechecks: LiveRechecks;
  private readonly timer: NodeJS.Timeout;
  /** This node, for the ingest claim (LiveBus.claim). */
  private readonly nodeId: string;
  /** Sealed live events onto the bus, held in order through an outage (live-publisher.ts). */
  private readonly events: LivePublisher;
  private lastRenewal: number;

  constructor(private readonly d: LiveDeps) {
    this.nodeId = d.nodeId ?? crypto.randomUUID();
    this.lastRenewal = this.now();
    this.events = new LivePublisher(d);
    this.live = new LiveSessions(d, {
      publish: (orgId, id, event, slotKey) => this.events.publish(orgId, id, event, slotKey),
      fail: (orgId, id, code) => this.fail(orgId, id, code),
      lost: (session) => this.lost(session),
    });
    this.rechecks = new LiveRechecks(
      // Viewers in one batch; ingest sockets one by one, since their check also renews the claim.
      (items) => recheckSockets(d.db, d.clock, items, (actor, id) => this.authorize(actor, id, 'ingest')),
      d.logger,
      d.clock,
    );
    this.viewers = new LiveViewers(d.bus, d.keys, d.db, d.logger, this.rechecks);
    // One timer for idle stops, claim renewals, the sweep and socket re-checks; unref'd so it
    // never keeps a process alive. It only polls: each decides by the app's clock whether it is
    // due, so a test advances that clock instead of waiting (docs/live.md, "Time").
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
    void d.bus.beat(this.nodeId).catch(() => undefined);
  }

  async create(actor: Actor, input: { title?: string | undefined }): Promise<{ id: string }> {
    requirePermission(actor, 'live.ingest');
    const id = crypto.randomUUID();
    const now = this.d.clock.now();
    const { maxPerOrg, maxMinutes, idleSeconds } = this.d.limits;
    await withTenant(this.d.db, actor, async (tx) => {
      const since = new Date(now.getTime() - (maxMinutes * 60 + idleSeconds) * 1000);
      if ((await liveRecordingRepository.countActive(tx, since)) >= maxPerOrg)
        throw new AppError('rate_limited', `At most ${maxPerOrg} live recordings may run at once`);
      await liveRecordingRepository.insert(tx, { id, orgId: actor.orgId, ownerId: actor.userId, now });
      if (input.title) {
        await recordingRepository.setTitle(
          tx,
          id,
          await this.d.keys.encrypt(tx, titleLocation(actor.orgId, id), input.title),
        );
        // Searchable by title while it streams (docs/search.md).
        await indexRecording(tx, this.d.keys, actor.orgId, id);
      }
      await this.d.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: actor.viaSupportGrant ? 'support' : 'user',
        action: 'recording.created',
        targetType: 'recording',
        targetId: id,
        ip: actor.ip,
        details: { mode: 'live' },
      });
    });
    return { id };
  }

  /**
   * The handshake check: 404 when the caller may not see the recording (another org's, or a
   * colleague's for a member), 409 when it is not live. Ingest also needs recordings.create
   * (support staff watch through a grant but never feed audio).
   */
  async authorize(actor: Actor, recordingId: string, purpose: LivePurpose): Promise<void> {
    requirePermission(actor, purpose === 'ingest' ? 'live.ingest' : 'recordings.read');
    const row = await withTenant(this.d.db, actor, (tx) =>
      recordingRepository.find(tx, recordingId, visibility(actor)),
    );
    if (!row) throw notFound('Recording');
    if (row.status !== 'live') throw new AppError('conflict', 'The recording is not live');
    if (purpose === 'ingest' && !(await this.d.bus.claim(recordingId, this.nodeId, this.claimTtlMs())))
      throw new AppError('conflict', 'The recording is being streamed to another server');
  }

  private claimTtlMs(): number {
    return liveClaimTtlMs(this.d.limits.recheckSeconds);
  }

  /** A single-use ticket for a browser's WebSocket handshake (which cannot send a header). */
  async ticket(actor: Actor, recordingId: string): Promise<{ ticket: string; expiresIn: number }> {
    requirePermission(actor, 'recordings.read');
    const row = await withTenant(this.d.db, actor, (tx) =>
      recordingRepository.find(tx, recordingId, visibility(actor)),
    );
    if (!row) throw notFound('Recording');
    const ticket = randomToken();
    await this.d.tickets.put(
      sha256Hex(ticket),
      JSON.stringify(actorTicket(actor, recordingId)),
      TICKET_TTL_SECONDS * 1000,
    );
    return { ticket, expiresIn: TICKET_TTL_SECONDS };
  }

  /** The actor behind a ticket (used up by this call), re-checked against the live session. */
  async redeem(ticket: string, recordingId: string, ip: string): Promise<Actor> {
    const body = readActorTicket(actorTicketSchema, await this.d.tickets.take(sha256Hex(ticket)));
    if (!body || body.recordingId !== recordingId)
      throw new AppError('unauthenticated', 'The live ticket is invalid, used or expired');
    const actor = await currentActor(this.d.db, this.d.clock, { ...body, ip });
    if (actor === null) throw notFound('Recording');
    if (!actor) throw new AppError('unauthenticated', 'Session has ended');
    return actor;
  }

  /** Opens an ingest socket (after `authorize`): live-ingest.ts. */
  openIngest(actor: Actor, recordingId: string, socket: LiveSocket): IngestHandle {
    const { live, rechecks } = this;
    const stop = (id: string, reason: 'stopped' | 'max_duration') => this.stop(id, reason);
    return openIngestSocket(
      { live, rechecks, logger: this.d.logger, limits: this.d.limits, stop },
      actor,
      recordingId,
      socket,
    );
  }

  /** Sends the recording's live events to a viewer socket (after `authorize`); returns the stop. */
  async watch(actor: Actor, recordingId: string, socket: LiveSocket): Promise<() => void> {
    // An upgraded request never reaches the HTTP plugin's onResponse audit: support access is recorded here.
    if (actor.viaSupportGrant)
      await this.d.audit.recordStandalone({
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'support',
        action: 'support.access',
        ip: actor.ip,
        details: { method: 'GET', route: '/api/v1/recordings/:id/watch', status: 101, recordingId },
      });
    return this.viewers.watch(actor, recordingId, socket);
  }

  /** Ends a session on this node: recognises what is left, seals the audio, queues the job. */
  stop(recordingId: string, reason: 'stopped' | 'idle' | 'max_duration' | 'abandoned'): Promise<void> {
    const session = this.live.all.get(recordingId);
    if (!session) return Promise.resolve();
    session.ending ??= this.finalise(session, reason).finally(() => {
      this.live.all.delete(recordingId);
      return this.d.bus.release(recordingId, this.nodeId).catch(() => undefined);
    });
    return session.ending;
  }

  /**
   * Graceful shutdown: every session is suspended, not stopped. Its spools are flushed (all that
   * was acknowledged is on disk), ingest sockets are closed with 1012 so clients reconnect and
   * resume — on this node after its restart — and the resume window starts now.
   */
  async close(): Promise<void> {
    this.live.closing = true;
    clearInterval(this.timer);
    await Promise.all([...this.live.loading.values()].map((p) => p.catch(() => undefined)));
    await Promise.all([...this.live.all.values()].map((s) => this.suspend(s)));
    await this.viewers.close();
    this.rechecks.close();
    this.events.close();
    await this.d.bus.close();
  }

  private async suspend(session: Session): Promise<void> {
    if (session.ending) return session.ending.catch(() => undefined);
    const { orgId, recordingId } = session;
    session.dispose();
    try {
      await Promise.all([...session.opening.values()].map((p) => p.catch(() => undefined)));
      await Promise.all([...session.spools.values()].map((sp) => sp.close()));
      await withTenant(this.d.db, { orgId, userId: null }, (tx) =>
        liveRecordingRepository.touchSpool(tx, recordingId, this.d.clock.now()),
      );
    } catch (err) {
      this.d.logger.warn({ recordingId, err: (err as Error).name }, 'live spool not flushed at shutdown');
    }
    for (const socket of session.ingest)
      socket.close(CLOSE_RESTART, 'server restarting: reconnect and resume');
    this.live.all.delete(recordingId);
    await this.d.bus.release(recordingId, this.nodeId).catch(() => undefined);
    this.d.logger.info({ recordingId }, 'live recording suspended');
  }

  /**
   * Another node took the recording over (this node's claim lapsed: it was presumed dead, and its
   * replica appends are now refused), or the recording was deleted meanwhile. Let go without
   * stopping, failing or releasing anything: the clients reconnect, through the load balancer, to
   * the node that holds the recording now.
   */
  private lost(session: Session): void {
    const { recordingId } = session;
    if (this.live.all.get(recordingId) !== session) return;
    this.live.all.delete(recordingId);
    session.dispose();
    for (const sp of session.spools.values()) void sp.close().catch(() => undefined);
    for (const socket of session.ingest)
      socket.close(CLOSE_RESTART, 'the recording moved to another server: reconnect and resume');
    this.d.logger.warn({ recordingId }, 'live recording taken over by another node, or deleted');
  }

  /** 'live' → 'failed' with `code`; the spool (row and files) goes. */
  private async fail(orgId: string, recordingId: string, code: string): Promise<void> {
    await withTenant(this.d.db, { orgId, userId: null }, async (tx) => {
      await liveRecordingRepository.markFailed(tx, recordingId, code, this.d.clock.now());
      await liveRecordingRepository.deleteSpool(tx, recordingId);
    });
    await this.d.spools.remove(orgId, recordingId);
    this.d.logger.info({ recordingId, code }, 'live recording failed');
    await this.events.publish(orgId, recordingId, { type: 'stopped', status: 'failed' });
    await this.events.forget(recordingId);
  }

  private async finalise(session: Session, reason: string): Promise<void> {
    const { orgId, recordingId } = session;
    let status: 'queued' | 'failed' = 'failed';
    // Only the node holding the recording ends it (another may have taken it over meanwhile).
    if (!(await this.d.bus.claim(recordingId, this.nodeId, this.claimTtlMs()).catch(() => true)))
      return this.lost(session);
    try {
      await this.events.publish(orgId, recordingId, { type: 'stopping', stage: 'recognising' });
      await session.finish();
      // Recognising the last utterance can take seconds: if this process stalled meanwhile long
      // enough for another node to take the recording over, that node ends it; sealing here would
      // overwrite its audio with this shorter copy.
      if (!(await this.d.bus.claim(recordingId, this.nodeId, this.claimTtlMs()).catch(() => true)))
        return this.lost(session);
      await this.events.publish(orgId, recordingId, { type: 'stopping', stage: 'saving' });
      status = await sealLiveRecording(
        this.d,
        {
          orgId,
          recordingId,
          spools: session.spools.values(),
          opening: session.opening.values(),
          generation: session.generation,
        },
        reason,
      );
    } catch (err) {
      if (err instanceof SpoolFencedError) return this.lost(session);
      this.d.logger.warn({ recordingId, err: (err as Error).name }, 'live recording could not be finalised');
    }
    this.d.logger.info({ recordingId, reason, status }, 'live recording stopped');
    await this.events.publish(orgId, recordingId, { type: 'stopped', status });
    await this.events.forget(recordingId);
    for (const socket of session.ingest) {
      socket.send({ type: 'stopped', status });
      socket.close(LIVE_CLOSE.normal, reason);
    }
  }

  private now(): number {
    return this.d.clock.now().getTime();
  }

  private async tick(): Promise<void> {
    // Every tick, whatever the app's clock says: liveness is about this process running. A node
    // that misses it for liveAliveTtlMs loses its claims to the next node asked for one. Not
    // awaited (Redis down must not hold up the idle stops); sent before this tick's renewals.
    void this.d.bus.beat(this.nodeId).catch(() => undefined);
    const idleMs = this.d.limits.idleSeconds * 1000;
    const resumeMs = this.d.limits.resumeSeconds * 1000;
    for (const [id, s] of this.live.all) {
      if (s.stopping) continue;
      // A connected client that sends nothing is idle; a session without one waits for it to resume.
      const connected = s.ingest.size > 0 || [...s.streams.values()].some((st) => st.attached);
      if (this.now() - s.lastFrameAt > (connected ? idleMs : resumeMs))
        void this.stop(id, connected ? 'idle' : 'abandoned');
    }
    const period = this.d.limits.recheckSeconds * 1000;
    if (this.now() - this.lastRenewal >= period) {
      this.lastRenewal = this.now();
      for (const [id, s] of this.live.all) {
        // A claim another node holds now: that node took the recording over (see `lost`).
        if (!(await this.d.bus.claim(id, this.nodeId, this.claimTtlMs()).catch(() => true))) {
          if (!s.ending) this.lost(s);
          continue;
        }
        if (s.key)
          await withTenant(this.d.db, { orgId: s.orgId, userId: null }, (tx) =>
            liveRecordingRepository.touchSpool(tx, id, this.d.clock.now()),
          ).catch(() => undefined);
      }
    }
    if (this.now() - this.lastSweep >= Math.min(60, this.d.limits.resumeSeconds / 2) * 1000) {
      this.lastSweep = this.now();
      await sweepLive({ ...this.d, resumeSeconds: this.d.limits.resumeSeconds }, this.sweepHooks).catch(
        (err: Error) => this.d.logger.warn({ err: err.name }, 'live sweep failed'),
      );
    }
    await this.rechecks.recheckDue(period);
  }

  private readonly sweepHooks: SweepHooks = {
    busy: (id) => this.live.busy(id),
    finalise: async (orgId, id) => {
      if (!(await this.d.bus.claim(id, this.nodeId, this.claimTtlMs()))) return;
      // A tampered spool fails the recording inside the restore.
      if (await this.live.get(orgId, id).catch(() => undefined)) await this.stop(id, 'abandoned');
    },
    fail: (orgId, id, code) => this.fail(orgId, id, code),
  };
}
