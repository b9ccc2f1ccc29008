import type { Database } from '../../db/database.js';
import type { Redis } from 'ioredis';
import type { Actor } from '../../domain/auth-context.js';
import type { EngineId } from '../../adapters/asr/engine.js';
import type { DiskSpace } from '../../adapters/storage/disk-space.adapter.js';
import type { SealedObjectStore, StorageCheck } from '../../adapters/storage/sealed-file-store.adapter.js';
import {
  ENGINE_FIX,
  type EngineMissing,
  type EngineReadinessService,
} from '../transcription/engine-readiness.service.js';
import type { JobQueueService } from '../transcription/job-queue.service.js';
import { requirePermission } from '../orgs/org.service.js';
import type { ServerNodeService } from './server-node.service.js';

export type CheckResult = 'ok' | 'failed' | 'not_configured';

export interface Readiness {
  ready: boolean;
  database: 'ok' | 'failed';
  redis: CheckResult;
  /** The data disk: `low` below SOTTO_DISK_MIN_FREE_MB free, `failed` when it cannot be read. */
  disk: 'ok' | 'low' | 'failed';
  /** The audio/export store (SOTTO_STORAGE): an S3 bucket missing, refused, or unreachable. */
  storage: StorageCheck;
  engine: { status: 'ok'; id: EngineId; model: string | null } | { status: 'none'; missing: EngineMissing };
  remoteWorkers: 'active' | 'none' | 'unknown';
  /** `mismatch`: another node seen recently has another SOTTO_PUBLIC_URL (ServerNodeService; named in the log). */
  publicUrl: 'ok' | 'mismatch';
}

/** What an org's owners and admins are told about transcription on this server (the panel's banner). */
export interface TranscriptionStatus {
  engine: Readiness['engine'];
  /** Remote workers that can take this org's jobs (its own and platform ones) seen in the last minutes. */
  activeRemoteWorkers: number;
  /** True when nothing can transcribe this org's uploads: they wait queued. */
  waiting: boolean;
  /** What to do about it (set when `waiting`). */
  fix: string | null;
}

/** What HealthService works with (built by the composition root). */
export interface HealthServiceDeps {
  db: Database;
  redis: Redis | undefined;
  engines: Pick<EngineReadinessService, 'state'>;
  queue: Pick<JobQueueService, 'activeRemoteWorkers' | 'anyActiveRemoteWorker'>;
  disk: { space: Pick<DiskSpace, 'freeBytes'>; minFreeBytes: number };
  nodes?: Pick<ServerNodeService, 'conflicts'>;
  storage?: Pick<SealedObjectStore, 'check'>;
}

/**
 * Readiness: can this node reach what it needs to serve requests? The speech-recognition engine
 * is reported but does not decide readiness: without one the node still serves everything, its
 * uploads wait queued (remote workers may take them), and taking it out of a load balancer would
 * also hide the panel that tells the admins how to fix it (docs/deployment.md).
 */
export class HealthService {
  constructor(private readonly d: HealthServiceDeps) {}

  async readiness(): Promise<Readiness> {
    const [database, redis, engine, disk, storage] = await Promise.all([
      this.checkDatabase(),
      this.checkRedis(),
      this.engineSummary(),
      this.checkDisk(),
      this.d.storage ? this.d.storage.check().catch(() => 'failed' as const) : ('ok' as const),
    ]);
    const remoteWorkers =
      database === 'ok'
        ? await this.d.queue.anyActiveRemoteWorker().then(
            (any) => (any ? ('active' as const) : ('none' as const)),
            () => 'unknown' as const,
          )
        : 'unknown';
    // A (nearly) full disk: uploads are refused and live audio cannot be spooled, so this node
    // should get no new work until space is freed. Without its object store a node can neither
    // keep an upload nor play one back.
    const ready = database === 'ok' && redis !== 'failed' && disk === 'ok' && storage === 'ok';
    // Reported, not required: taking nodes out of service would not make them agree.
    const publicUrl = (this.d.nodes?.conflicts.length ?? 0) > 0 ? ('mismatch' as const) : ('ok' as const);
    return { ready, database, redis, disk, storage, engine, remoteWorkers, publicUrl };
  }

  /**
   * For owners and admins (workers.manage): whether this org's uploads can be transcribed now.
   * Operator details (engine description, paths, the selection's message) stay in the server log;
   * this carries enums, a count and the fixed fix text. The org is always the caller's own.
   */
  async transcriptionStatus(actor: Actor): Promise<TranscriptionStatus> {
    requirePermission(actor, 'workers.manage');
    const [engine, activeRemoteWorkers] = await Promise.all([
      this.engineSummary(),
      this.d.queue.activeRemoteWorkers(actor.orgId),
    ]);
    const waiting = engine.status === 'none' && activeRemoteWorkers === 0;
    return { engine, activeRemoteWorkers, waiting, fix: waiting ? ENGINE_FIX : null };
  }

  private async engineSummary(): Promise<Readiness['engine']> {
    const s = await this.d.engines.state();
    return s.status === 'ok'
      ? { status: 'ok', id: s.id, model: s.model }
      : { status: 'none', missing: s.missing };
  }

  private async checkDatabase(): Promise<'ok' | 'failed'> {
    try {
      await this.d.db.query('SELECT 1');
      return 'ok';
    } catch {
      return 'failed';
    }
  }

  private async checkDisk(): Promise<Readiness['disk']> {
    try {
      return (await this.d.disk.space.freeBytes()) < this.d.disk.minFreeBytes ? 'low' : 'ok';
    } catch {
      return 'failed';
    }
  }

  private async checkRedis(): Promise<CheckResult> {
    if (!this.d.redis) return 'not_configured';
    try {
      return (await this.d.redis.ping()) === 'PONG' ? 'ok' : 'failed';
    } catch {
      return 'failed';
    }
  }
}
