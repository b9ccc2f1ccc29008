import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { encodeWav } from '../audio/wav.js';
import type { Config } from '../config/config.js';
import { randomToken, sha256Hex } from '../crypto/random.js';
import type { Database } from '../db/database.js';
import { withTenant } from '../db/tenant.js';
import type { Actor } from '../domain/auth-context.js';
import { AppError, notFound } from '../domain/errors.js';
import type { Role } from '../domain/roles.js';
import type { AsrEngine } from '../repositories/asr/engine.js';
import type { Clock } from '../repositories/clock.repository.js';
import type { LiveBus } from '../repositories/live-bus.repository.js';
import { liveRecordingRepository } from '../repositories/live-recording.repository.js';
import type { LiveTicketStore } from '../repositories/live-ticket.repository.js';
import { recordingJobRepository } from '../repositories/recording-job.repository.js';
import { recordingRepository } from '../repositories/recording.repository.js';
import type { UploadFileRepository } from '../repositories/upload-file.repository.js';
import type { AudioStoreService } from './audio-store.service.js';
import type { AuditService } from './audit.service.js';
import type { KeyService } from './key.service.js';
import {
  LIVE_CLOSE,
  LIVE_SAMPLE_RATE,
  LiveProtocolError,
  LiveSession,
  liveSegmentLocation,
  type LiveSegment,
  type LiveStream,
} from './live-session.js';
import { currentActor, visibility } from './live-access.js';
import { LiveViewers, type LiveEvent, type LiveSocket } from './live-viewers.js';
import { requirePermission } from './org.service.js';
import { titleLocation } from './recording.service.js';

/**
 * Live recordings (docs/live.md): create, browser tickets, the handshake checks, ingest (one
 * in-memory LiveSession per recording on the node that receives its audio), and the stop that
 * turns the streamed audio into an ordinary sealed recording with a queued job, so the stored
 * transcript is exactly what an upload of the same audio gives. Viewers and the periodic
 * re-check of every open socket live in LiveViewers.
 */
export type LivePurpose = 'ingest' | 'watch';

export interface LiveDeps {
  db: Database;
  keys: KeyService;
  audit: AuditService;
  audio: Pick<AudioStoreService, 'seal' | 'remove'>;
  uploads: Pick<UploadFileRepository, 'save'>;
  bus: LiveBus;
  tickets: LiveTicketStore;
  engine: () => Promise<AsrEngine>;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
  limits: Config['live'];
}

/** What one ingest socket may do; the route feeds it parsed frames. */
export interface IngestHandle {
  start(participant: string | undefined, seq: number | undefined): void;
  audio(bytes: Buffer): void;
  stop(): Promise<void>;
  closed(): void;
}

interface TicketBody {
  userId: string;
  orgId: string;
  sessionId: string;
  role: Role;
  viaSupportGrant: boolean;
  recordingId: string;
}

const TICKET_TTL_SECONDS = 30;
const MAX_STREAMS = 8;
const MAX_BACKLOG_SECONDS = 60;

export class LiveService {
  private readonly sessions = new Map<
    string,
    LiveSession & { ingest: Set<LiveSocket>; ending?: Promise<void> }
  >();
  readonly viewers: LiveViewers;
  private readonly timer: NodeJS.Timeout;
  /** This node, for the ingest claim (LiveBus.claim). */
  private readonly nodeId = crypto.randomUUID();
  private lastRenewal = Date.now();

  constructor(private readonly d: LiveDeps) {
    this.viewers = new LiveViewers(d.bus, d.keys, d.db, d.logger, (actor, id, purpose) =>
      this.recheck(actor, id, purpose),
    );
    // One timer for idle stops and socket re-checks; unref'd so it never keeps a process alive.
    this.timer = setInterval(() => void this.tick(), 1000);
    this.timer.unref();
  }

  async create(actor: Actor, input: { title?: string | undefined }): Promise<{ id: string }> {
    requirePermission(actor, 'recordings.create');
    const id = crypto.randomUUID();
    const now = this.d.clock.now();
    const { maxPerOrg, maxMinutes, idleSeconds } = this.d.limits;
    await withTenant(this.d.db, actor, async (tx) => {
      const since = new Date(now.getTime() - (maxMinutes * 60 + idleSeconds) * 1000);
      if ((await liveRecordingRepository.countActive(tx, since)) >= maxPerOrg)
        throw new AppError('rate_limited', `At most ${maxPerOrg} live recordings may run at once`);
      await liveRecordingRepository.insert(tx, { id, orgId: actor.orgId, ownerId: actor.userId, now });
      if (input.title)
        await recordingRepository.setTitle(
          tx,
          id,
          await this.d.keys.encrypt(tx, titleLocation(actor.orgId, id), input.title),
        );
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
    requirePermission(actor, purpose === 'ingest' ? 'recordings.create' : 'recordings.read');
    const row = await withTenant(this.d.db, actor, (tx) =>
      recordingRepository.find(tx, recordingId, visibility(actor)),
    );
    if (!row) throw notFound('Recording');
    if (row.status !== 'live') throw new AppError('conflict', 'The recording is not live');
    if (purpose === 'ingest' && !(await this.d.bus.claim(recordingId, this.nodeId, this.claimTtlMs())))
      throw new AppError('conflict', 'The recording is being streamed to another server');
  }

  /** A node holds its claim on a session's recording this long past its last renewal. */
  private claimTtlMs(): number {
    return (this.d.limits.recheckSeconds * 3 + 10) * 1000;
  }

  /** A single-use ticket for a browser's WebSocket handshake (which cannot send a header). */
  async ticket(actor: Actor, recordingId: string): Promise<{ ticket: string; expiresIn: number }> {
    requirePermission(actor, 'recordings.read');
    const row = await withTenant(this.d.db, actor, (tx) =>
      recordingRepository.find(tx, recordingId, visibility(actor)),
    );
    if (!row) throw notFound('Recording');
    const ticket = randomToken();
    const body: TicketBody = {
      userId: actor.userId,
      orgId: actor.orgId,
      sessionId: actor.sessionId,
      role: actor.role,
      viaSupportGrant: actor.viaSupportGrant,
      recordingId,
    };
    await this.d.tickets.put(sha256Hex(ticket), JSON.stringify(body), TICKET_TTL_SECONDS * 1000);
    return { ticket, expiresIn: TICKET_TTL_SECONDS };
  }

  /** The actor behind a ticket (used up by this call), re-checked against the live session. */
  async redeem(ticket: string, recordingId: string, ip: string): Promise<Actor> {
    const raw = await this.d.tickets.take(sha256Hex(ticket));
    const body = raw ? (JSON.parse(raw) as TicketBody) : undefined;
    if (!body || body.recordingId !== recordingId)
      throw new AppError('unauthenticated', 'The live ticket is invalid, used or expired');
    const actor = await currentActor(this.d.db, this.d.clock, { ...body, ip });
    if (actor === null) throw notFound('Recording');
    if (!actor) throw new AppError('unauthenticated', 'Session has ended');
    return actor;
  }

  /** Opens an ingest socket (after `authorize`). The session is created on its first socket. */
  openIngest(actor: Actor, recordingId: string, socket: LiveSocket): IngestHandle {
    const session = this.session(actor.orgId, recordingId);
    session.ingest.add(socket);
    const unwatch = this.viewers.track(actor, recordingId, 'ingest', socket);
    let stream: LiveStream | undefined;
    const refuse = (err: unknown) => {
      if (!(err instanceof LiveProtocolError)) throw err;
      socket.close(err.code, err.reason);
      if (err.reason === 'maximum recording duration reached') void this.stop(recordingId, 'max_duration');
    };
    return {
      start: (participant, seq) => {
        try {
          if (stream) throw new LiveProtocolError(LIVE_CLOSE.malformed, 'the stream has already started');
          stream = session.attach(participant, seq);
          socket.send({ type: 'ack', seq: stream.acked });
        } catch (err) {
          refuse(err);
        }
      },
      audio: (bytes) => {
        try {
          if (!stream)
            throw new LiveProtocolError(LIVE_CLOSE.malformed, 'send {"type":"start"} before audio');
          socket.send({ type: 'ack', seq: session.frame(stream, bytes) });
        } catch (err) {
          refuse(err);
        }
      },
      stop: () => this.stop(recordingId, 'stopped'),
      closed: () => {
        unwatch();
        session.ingest.delete(socket);
        if (stream) session.detach(stream);
      },
    };
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
  stop(recordingId: string, reason: 'stopped' | 'idle' | 'max_duration' | 'shutdown'): Promise<void> {
    const session = this.sessions.get(recordingId);
    if (!session) return Promise.resolve();
    session.ending ??= this.finalise(session, reason).finally(() => {
      this.sessions.delete(recordingId);
      return this.d.bus.release(recordingId, this.nodeId).catch(() => undefined);
    });
    return session.ending;
  }

  /** Stops every session of this node (graceful shutdown) and closes the viewers. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.sessions.keys()].map((id) => this.stop(id, 'shutdown')));
    await this.viewers.close();
    await this.d.bus.close();
  }

  private session(orgId: string, recordingId: string) {
    const existing = this.sessions.get(recordingId);
    if (existing && existing.orgId !== orgId) throw notFound('Recording');
    if (existing?.stopping) throw new AppError('conflict', 'The recording is stopping');
    if (existing) return existing;
    const { maxFrameBytes, maxMinutes } = this.d.limits;
    const limits = {
      maxFrameBytes,
      maxSeconds: maxMinutes * 60,
      maxStreams: MAX_STREAMS,
      maxBacklogSeconds: MAX_BACKLOG_SECONDS,
    };
    const created = new LiveSession(
      recordingId,
      orgId,
      limits,
      async (pcm, offsetSeconds) => (await this.d.engine()).transcribe(pcm, { offsetSeconds }),
      {
        segment: (segment: LiveSegment) => this.publish(orgId, recordingId, { type: 'segment', ...segment }),
        lagging: () => void this.publish(orgId, recordingId, { type: 'error', code: 'live_lagging' }),
        failed: (err) => {
          const code = err instanceof AppError ? err.code : 'engine_failed';
          this.d.logger.warn({ recordingId, code }, 'live recognition failed');
          void this.publish(orgId, recordingId, { type: 'error', code });
        },
      },
    );
    const s = Object.assign(created, { ingest: new Set<LiveSocket>() });
    this.sessions.set(recordingId, s);
    return s;
  }

  private async publish(orgId: string, recordingId: string, event: LiveEvent): Promise<void> {
    try {
      const payload = await withTenant(this.d.db, { orgId, userId: null }, (tx) =>
        this.d.keys.encryptJson(tx, liveSegmentLocation(orgId, recordingId), event),
      );
      await this.d.bus.publish(recordingId, payload);
    } catch (err) {
      // Live text is a convenience: the stored transcript does not depend on it.
      this.d.logger.warn({ recordingId, err: (err as Error).name }, 'live event not published');
    }
  }

  private async finalise(session: LiveSession & { ingest: Set<LiveSocket> }, reason: string): Promise<void> {
    const { orgId, recordingId } = session;
    let status: 'queued' | 'failed' = 'failed';
    try {
      await session.finish();
      const channels = session.audio();
      const now = () => this.d.clock.now();
      if (channels.length === 0) {
        await withTenant(this.d.db, { orgId, userId: null }, (tx) =>
          liveRecordingRepository.markFailed(tx, recordingId, 'no_audio', now()),
        );
      } else {
        const wav = encodeWav(channels.length === 1 ? channels[0]! : channels, LIVE_SAMPLE_RATE);
        const staged = await this.d.uploads.save(Readable.from([wav]), wav.length);
        // Sealed before the job exists: queued audio never waits in plaintext (as uploads).
        await this.d.audio.seal(orgId, recordingId, staged.path, 'audio/wav');
        const queued = await withTenant(this.d.db, { orgId, userId: null }, async (tx) => {
          if (!(await liveRecordingRepository.markQueued(tx, recordingId, now()))) return false;
          await recordingJobRepository.enqueue(tx, { recordingId, orgId, now: now() });
          await this.d.audit.record(tx, {
            orgId,
            actorId: null,
            actorKind: 'system',
            action: 'recording.live_stopped',
            targetType: 'recording',
            targetId: recordingId,
            details: { reason, seconds: Math.round(session.receivedSeconds), streams: session.streams.size },
          });
          return true;
        });
        // Deleted while it streamed: the sealed audio goes too.
        if (!queued) await this.d.audio.remove(orgId, recordingId);
        else status = 'queued';
      }
    } catch (err) {
      this.d.logger.warn({ recordingId, err: (err as Error).name }, 'live recording could not be finalised');
      await withTenant(this.d.db, { orgId, userId: null }, (tx) =>
        liveRecordingRepository.markFailed(tx, recordingId, 'internal', this.d.clock.now()),
      ).catch(() => undefined);
    }
    this.d.logger.info({ recordingId, reason, status }, 'live recording stopped');
    await this.publish(orgId, recordingId, { type: 'stopped', status });
    for (const socket of session.ingest) {
      socket.send({ type: 'stopped', status });
      socket.close(LIVE_CLOSE.normal, reason);
    }
  }

  /** The periodic re-check of an open socket: undefined while allowed, else the close code. */
  private async recheck(
    actor: Actor,
    recordingId: string,
    purpose: LivePurpose,
  ): Promise<number | undefined> {
    const current = await currentActor(this.d.db, this.d.clock, actor);
    if (current === null) return LIVE_CLOSE.notFound;
    if (!current) return LIVE_CLOSE.unauthenticated;
    try {
      await this.authorize(current, recordingId, purpose);
      return undefined;
    } catch (err) {
      // Not live any more is the normal end (the stop closes the sockets itself).
      if (err instanceof AppError && err.code === 'conflict') return undefined;
      return LIVE_CLOSE.notFound;
    }
  }

  private async tick(): Promise<void> {
    const idleMs = this.d.limits.idleSeconds * 1000;
    for (const [id, s] of this.sessions)
      if (!s.stopping && Date.now() - s.lastFrameAt > idleMs) void this.stop(id, 'idle');
    const period = this.d.limits.recheckSeconds * 1000;
    if (Date.now() - this.lastRenewal >= period) {
      this.lastRenewal = Date.now();
      for (const id of this.sessions.keys())
        await this.d.bus.claim(id, this.nodeId, this.claimTtlMs()).catch(() => undefined);
    }
    await this.viewers.recheckDue(period);
  }
}
