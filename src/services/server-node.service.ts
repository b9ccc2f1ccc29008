import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { withSystem } from '../db/tenant.js';
import type { Clock } from '../repositories/clock.repository.js';
import { serverNodeRepository, type OtherNodeUrl } from '../repositories/server-node.repository.js';

/**
 * Says when the `sotto serve` nodes of one deployment disagree on SOTTO_PUBLIC_URL (issue 17,
 * item 8). The public URL is every access token's issuer and audience, so two nodes with
 * different values reject each other's tokens (401) behind a load balancer — a failure that
 * looks like random log-outs. Each node records its URL at start and with a heartbeat; a node
 * that sees another value among the nodes seen recently logs a warning naming the values (once
 * per change) and /readyz reports `publicUrl: mismatch` (not the URLs: /readyz is public and
 * carries enums only). A database outage only delays the check.
 */
export interface ServerNodeOptions {
  publicUrl: string;
  /** Heartbeat period (default 30 s). */
  heartbeatMs?: number;
  /** A node not seen for this long no longer counts (default 3 heartbeats). */
  activeMs?: number;
}

export class ServerNodeService {
  readonly nodeId = randomUUID();
  private timer: NodeJS.Timeout | undefined;
  private others: OtherNodeUrl[] = [];
  private said = '';

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly logger: Pick<Logger, 'warn' | 'info'>,
    private readonly opts: ServerNodeOptions,
  ) {}

  private get heartbeatMs(): number {
    return this.opts.heartbeatMs ?? 30_000;
  }

  /** Other public URLs in use by nodes seen recently (empty: every node agrees). */
  get conflicts(): readonly OtherNodeUrl[] {
    return this.others;
  }

  async start(): Promise<void> {
    await this.beat().catch((err: unknown) => this.logger.warn({ err }, 'node heartbeat failed'));
    this.timer = setInterval(() => {
      this.beat().catch((err: unknown) => this.logger.warn({ err }, 'node heartbeat failed'));
    }, this.heartbeatMs);
    this.timer.unref();
  }

  /** Records this node and compares its public URL with the others'. */
  async beat(): Promise<readonly OtherNodeUrl[]> {
    const now = this.clock.now();
    const since = new Date(now.getTime() - (this.opts.activeMs ?? 3 * this.heartbeatMs));
    const others = await withSystem(this.db, async (tx) => {
      await serverNodeRepository.beat(tx, { nodeId: this.nodeId, publicUrl: this.opts.publicUrl, now });
      await serverNodeRepository.prune(tx, new Date(now.getTime() - 24 * 3600_000));
      return serverNodeRepository.otherUrls(tx, this.opts.publicUrl, since);
    });
    this.others = others;
    const key = others.map((o) => o.publicUrl).join(' ');
    if (key !== this.said) {
      this.said = key;
      if (others.length > 0)
        this.logger.warn(
          { publicUrl: this.opts.publicUrl, otherNodes: others },
          'nodes disagree on SOTTO_PUBLIC_URL: they reject each other’s tokens (401); give every node the same value',
        );
      else
        this.logger.info({ publicUrl: this.opts.publicUrl }, 'every node agrees on SOTTO_PUBLIC_URL again');
    }
    return others;
  }

  /** Stops the heartbeat and forgets this node (a clean stop is not a node to compare with). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await withSystem(this.db, (tx) => serverNodeRepository.remove(tx, this.nodeId)).catch(() => undefined);
  }
}
