import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import { SpoolIntegrityError } from '../../crypto/spool-cipher.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { AsrEngine } from '../../adapters/asr/engine.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { SpoolFencedError } from '../../adapters/redis/live-spool-replica.adapter.js';
import {
  LIVE_CLOSE,
  LiveProtocolError,
  LiveSession,
  type LivePartial,
  type LiveSegment,
  type LiveStream,
} from './live-session.js';
import type { LiveSpools, StreamSpool } from './live-spool.js';
import type { LiveEvent, LiveSocket } from './live-viewers.js';

/**
 * The live sessions of this node (docs/live.md): found in memory, or rebuilt from the spool (its
 * copy in Redis when there is one, else this node's disk) after a restart or another node's
 * crash; each stream's spool opened with the stream. LiveService owns the sockets, the stop and
 * the sweep; this holds the state they share.
 */
export type Session = LiveSession & {
  ingest: Set<LiveSocket>;
  ending?: Promise<void>;
  spools: Map<LiveStream, StreamSpool>;
  key?: Promise<Buffer>;
  /** Streams whose spool is being opened (frames wait for it). */
  opening: Map<LiveStream, Promise<StreamSpool>>;
  /** Taken when this node started holding the session: fences its stop (live-finalise.ts). */
  generation: number;
};

const MAX_STREAMS = 8;
const MAX_BACKLOG_SECONDS = 60;
/** Audio held in memory per stream: the backlog, the longest utterance, its lead-in, a margin. */
const KEEP_SECONDS = MAX_BACKLOG_SECONDS + 25 + 2 + 10;
/** WebSocket "service restart": the client should reconnect and resume (docs/live.md). */
export const CLOSE_RESTART = 1012;

export interface SessionDeps {
  spools: LiveSpools;
  engine: () => Promise<AsrEngine>;
  logger: Pick<Logger, 'info' | 'warn'>;
  limits: Config['live'];
  clock: Clock;
}

export interface SessionHooks {
  /** `slotKey`: the recording's spool key, which names a partial's slot (backlogRetention, live-publisher.ts). */
  publish(orgId: string, recordingId: string, event: LiveEvent, slotKey?: Buffer): Promise<void>;
  fail(orgId: string, recordingId: string, code: string): Promise<void>;
  /** Another node took the recording over, or its spool was removed: drop it here, untouched. */
  lost(session: Session): void;
}

export class LiveSessions {
  readonly all = new Map<string, Session>();
  /** Sessions being restored from their spool (concurrent starts share one restore). */
  readonly loading = new Map<string, Promise<Session>>();
  /** The node is shutting down: no session is created or restored any more. */
  closing = false;

  constructor(
    private readonly d: SessionDeps,
    private readonly hooks: SessionHooks,
  ) {}

  /** The recording's session on this node, or one in the middle of being set up. */
  busy(recordingId: string): boolean {
    return this.closing || this.all.has(recordingId) || this.loading.has(recordingId);
  }

  /** The recording's session on this node: in memory, or restored from its spool. */
  get(orgId: string, recordingId: string): Promise<Session> {
    const existing = this.all.get(recordingId);
    if (existing && existing.orgId !== orgId) return Promise.reject(notFound('Recording'));
    if (existing?.stopping) return Promise.reject(new AppError('conflict', 'The recording is stopping'));
    if (existing) return Promise.resolve(existing);
    if (this.closing) return Promise.reject(new LiveProtocolError(CLOSE_RESTART, 'server restarting'));
    let loading = this.loading.get(recordingId);
    if (!loading) {
      loading = this.restore(orgId, recordingId).finally(() => this.loading.delete(recordingId));
      this.loading.set(recordingId, loading);
    }
    return loading;
  }

  /**
   * A session from what this node's disk holds (nothing: a new session). The spooled frames go
   * through the VAD again; utterances after the last published segment are recognised again.
   * A spool that fails authentication before its last record was altered: the recording fails.
   */
  private async restore(orgId: string, recordingId: string): Promise<Session> {
    // Before anything is read or acknowledged: a node still holding an older generation (stalled
    // past its claim) can no longer commit the recording's stop.
    const generation = await this.d.spools.takeGeneration(orgId, recordingId);
    if (generation === undefined) throw new AppError('conflict', 'The recording is not live');
    let loaded: Awaited<ReturnType<LiveSpools['load']>>;
    try {
      loaded = await this.d.spools.load(orgId, recordingId, { rebuild: true });
    } catch (err) {
      if (!(err instanceof SpoolIntegrityError)) throw err;
      this.d.logger.warn(
        { recordingId, code: 'live_spool_tampered' },
        'live spool failed an integrity check',
      );
      await this.hooks.fail(orgId, recordingId, 'live_spool_tampered');
      throw new LiveProtocolError(1011, "the recording's spool failed an integrity check: recording failed");
    }
    const session = this.create(orgId, recordingId, generation);
    if (loaded) {
      const key = loaded.key;
      session.key = Promise.resolve(key);
      for (const st of loaded.streams) {
        const last = st.opened.batches.at(-1);
        session.segmentSeq = Math.max(session.segmentSeq, last?.segmentSeq ?? 0);
        const frames = st.opened.batches.flatMap((b) => b.frames);
        const stream = session.restore(st.opened.meta, last?.publishedTo ?? 0, frames);
        const spool = await this.d.spools.reopen(
          orgId,
          recordingId,
          key,
          st,
          this.progress(session, stream),
          (e) => this.spoolFailed(session, e),
        );
        session.spools.set(stream, spool);
      }
      const frames = loaded.streams.reduce((n, st) => n + st.opened.frames, 0);
      this.d.logger.info({ recordingId, streams: loaded.streams.length, frames }, 'live recording restored');
    }
    this.all.set(recordingId, session);
    return session;
  }

  /** The stream's spool; created (with the recording's key, on its first stream) when new. */
  spoolOf(session: Session, stream: LiveStream): Promise<StreamSpool> {
    const have = session.spools.get(stream);
    if (have) return Promise.resolve(have);
    let opening = session.opening.get(stream);
    if (!opening) {
      const { orgId, recordingId } = session;
      opening = (async () => {
        session.key ??= this.d.spools.key(orgId, recordingId);
        const key = await session.key.catch((err: unknown) => {
          session.key = undefined;
          throw err;
        });
        const n = [...session.streams.values()].indexOf(stream);
        const meta = { label: stream.label, offsetSamples: stream.offsetSamples, n };
        const spool = await this.d.spools.create(
          orgId,
          recordingId,
          key,
          meta,
          this.progress(session, stream),
          (e) => this.spoolFailed(session, e),
        );
        session.spools.set(stream, spool);
        return spool;
      })().finally(() => session.opening.delete(stream));
      session.opening.set(stream, opening);
    }
    return opening;
  }

  private progress(session: Session, stream: LiveStream) {
    return () => ({ publishedTo: stream.publishedTo, segmentSeq: session.segmentSeq });
  }

  /** A spool write failed (disk full, I/O error): nothing more is acknowledged; clients retry. */
  private spoolFailed(session: Session, err: Error): void {
    if (err instanceof SpoolFencedError) return this.hooks.lost(session);
    this.d.logger.warn({ recordingId: session.recordingId, err: err.name }, 'live spool write failed');
    for (const socket of session.ingest) socket.close(LIVE_CLOSE.tryAgainLater, 'audio could not be stored');
  }

  private create(orgId: string, recordingId: string, generation: number): Session {
    const { maxFrameBytes, maxMinutes } = this.d.limits;
    const limits = {
      maxFrameBytes,
      maxSeconds: maxMinutes * 60,
      maxStreams: MAX_STREAMS,
      maxBacklogSeconds: MAX_BACKLOG_SECONDS,
      keepSeconds: KEEP_SECONDS,
      partialSeconds: this.d.limits.partialSeconds,
    };
    // Resolved once (normally at once: the engine is chosen at start-up); until then, and for
    // engines that cannot stream, utterances are recognised whole when they end.
    let engine: AsrEngine | undefined;
    this.d.engine().then(
      (e) => (engine = e),
      () => undefined,
    );
    // The recording's spool key, once its first stream opened a spool (spoolOf sets it).
    let keyOf: () => Promise<Buffer> | undefined = () => undefined;
    const created = new LiveSession({
      recordingId,
      orgId,
      limits,
      recognise: async (pcm, offsetSeconds) =>
        (await this.d.engine()).transcribe(pcm, { offsetSeconds, priority: 'live', group: recordingId }),
      events: {
        segment: (segment: LiveSegment) =>
          this.hooks.publish(orgId, recordingId, { type: 'segment', ...segment }),
        // Sealed on the bus like a segment; never spooled nor stored (the final replaces it).
        // A partial follows recognised audio, which was spooled first: the key is there.
        partial: async (partial: LivePartial) =>
          this.hooks.publish(
            orgId,
            recordingId,
            { type: 'partial', ...partial },
            await keyOf()?.catch(() => undefined),
          ),
        lagging: () => void this.hooks.publish(orgId, recordingId, { type: 'error', code: 'live_lagging' }),
        failed: (err) => {
          const code = err instanceof AppError ? err.code : 'engine_failed';
          this.d.logger.warn({ recordingId, code }, 'live recognition failed');
          void this.hooks.publish(orgId, recordingId, { type: 'error', code });
        },
      },
      openRecognizer: () => engine?.session?.({ priority: 'live', group: recordingId }),
      clock: this.d.clock,
    });
    const session: Session = Object.assign(created, {
      ingest: new Set<LiveSocket>(),
      spools: new Map<LiveStream, StreamSpool>(),
      opening: new Map<LiveStream, Promise<StreamSpool>>(),
      generation,
    });
    keyOf = () => session.key;
    return session;
  }
}
