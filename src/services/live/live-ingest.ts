import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError } from '../../domain/errors.js';
import { outageOf } from '../../domain/outage.js';
import { LIVE_CLOSE, LiveProtocolError, type LiveStream } from './live-session.js';
import type { LiveSessions, Session } from './live-session-registry.js';
import type { StreamSpool } from './live-spool.js';
import type { LiveRechecks } from './live-recheck.js';
import type { LiveSocket } from './live-viewers.js';

/** What one ingest socket may do; the route feeds it parsed frames. */
export interface IngestHandle {
  start(participant: string | undefined, seq: number | undefined): void;
  audio(bytes: Buffer): void;
  stop(): Promise<void>;
  closed(): void;
}

/** What an ingest socket needs of LiveService. */
export interface IngestDeps {
  live: LiveSessions;
  rechecks: Pick<LiveRechecks, 'track'>;
  logger: Pick<Logger, 'warn'>;
  limits: Pick<Config['live'], 'maxFrameBytes'>;
  /** Ends the recording's session on this node (LiveService.stop). */
  stop(recordingId: string, reason: 'stopped' | 'max_duration'): Promise<void>;
}

/** Audio buffered on a socket while its `start` is set up (spool key, restore): ≈ 4 minutes. */
const MAX_EARLY_BYTES = 8 * 1024 * 1024;

/**
 * One ingest socket (after `authorize`). Its `start` finds the session (in memory, or restored
 * from the spool after a restart) and the stream's spool; frames that arrive meanwhile wait
 * (bounded). Acks are sent when a frame's spool record is durable.
 */
export function openIngestSocket(
  d: IngestDeps,
  actor: Actor,
  recordingId: string,
  socket: LiveSocket,
): IngestHandle {
  const unwatch = d.rechecks.track(actor, recordingId, 'ingest', socket);
  let session: Session | undefined;
  let stream: LiveStream | undefined;
  let spool: StreamSpool | undefined;
  let starting: Promise<void> | undefined;
  let early: Buffer[] = [];
  let earlyBytes = 0;
  let gone = false;
  const refuse = (err: unknown) => {
    if (err instanceof LiveProtocolError) {
      socket.close(err.code, err.reason);
      if (err.reason === 'maximum recording duration reached') void d.stop(recordingId, 'max_duration');
    } else if (err instanceof AppError) {
      socket.close(LIVE_CLOSE.conflict, err.message);
    } else {
      const outage = outageOf(err);
      d.logger.warn({ recordingId, err: (err as Error).name, outage }, 'live ingest failed');
      // The database or the disk failing us for now is not final: the client resumes later.
      if (outage) socket.close(LIVE_CLOSE.tryAgainLater, 'temporarily unavailable: reconnect and resume');
      else socket.close(1011, 'internal error');
    }
  };
  const frame = (bytes: Buffer) => {
    const before = stream!.nextSeq;
    session!.frame(stream!, bytes);
    // A new frame is acknowledged once its record is durable; a resent one at once.
    if (stream!.nextSeq > before) spool!.add(bytes);
    else socket.send({ type: 'ack', seq: spool!.durable - 1 });
  };
  const begin = async (participant: string | undefined, seq: number | undefined) => {
    session = await d.live.get(actor.orgId, recordingId);
    if (gone) return;
    session.ingest.add(socket);
    stream = session.attach(participant, seq);
    spool = await d.live.spoolOf(session, stream);
    if (gone) return;
    spool.onDurable = (acked) => socket.send({ type: 'ack', seq: acked });
    socket.send({ type: 'ack', seq: spool.durable - 1 });
    for (const bytes of early) frame(bytes);
    early = [];
  };
  return {
    start: (participant, seq) => {
      if (starting)
        return refuse(new LiveProtocolError(LIVE_CLOSE.malformed, 'the stream has already started'));
      starting = begin(participant, seq);
      starting.catch(refuse);
    },
    audio: (bytes) => {
      try {
        if (!starting)
          throw new LiveProtocolError(LIVE_CLOSE.malformed, 'send {"type":"start"} before audio');
        if (spool) return frame(bytes);
        if (bytes.length > d.limits.maxFrameBytes)
          throw new LiveProtocolError(
            LIVE_CLOSE.tooLarge,
            `frame larger than ${d.limits.maxFrameBytes} bytes`,
          );
        if (bytes.length % 2 !== 0)
          throw new LiveProtocolError(LIVE_CLOSE.malformed, 'PCM16 frames have an even byte length');
        earlyBytes += bytes.length;
        if (earlyBytes > MAX_EARLY_BYTES)
          throw new LiveProtocolError(LIVE_CLOSE.overloaded, 'too much audio before the stream started');
        early.push(Buffer.from(bytes));
      } catch (err) {
        refuse(err);
      }
    },
    stop: async () => {
      await starting?.catch(() => undefined);
      // A stop right after a restart, before any start: finalise from the spool.
      if (!d.live.all.has(recordingId)) await d.live.get(actor.orgId, recordingId).catch(() => undefined);
      return d.stop(recordingId, 'stopped');
    },
    closed: () => {
      gone = true;
      early = [];
      unwatch();
      session?.ingest.delete(socket);
      if (session && stream) session.detach(stream);
      if (spool) spool.onDurable = undefined;
    },
  };
}
