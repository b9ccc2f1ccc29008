import type { Database } from '../db/database.js';
import type { Redis } from 'ioredis';

export type CheckResult = 'ok' | 'failed' | 'not_configured';

/** Readiness: can this node reach what it needs to serve requests? */
export class HealthService {
  constructor(
    private readonly db: Database,
    private readonly redis: Redis | undefined,
  ) {}

  async readiness(): Promise<{ ready: boolean; database: 'ok' | 'failed'; redis: CheckResult }> {
    const [database, redis] = await Promise.all([this.checkDatabase(), this.checkRedis()]);
    return { ready: database === 'ok' && redis !== 'failed', database, redis };
  }

  private async checkDatabase(): Promise<'ok' | 'failed'> {
    try {
      await this.db.query('SELECT 1');
      return 'ok';
    } catch {
      return 'failed';
    }
  }

  private async checkRedis(): Promise<CheckResult> {
    if (!this.redis) return 'not_configured';
    try {
      return (await this.redis.ping()) === 'PONG' ? 'ok' : 'failed';
    } catch {
      return 'failed';
    }
  }
}
