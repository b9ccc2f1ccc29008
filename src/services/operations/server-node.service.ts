import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import {
  serverNodeRepository,
  type OtherNodeUrl,
} from '../../repositories/operations/server-node.repository.js';

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
  /**
   * The node id this process holds (`sotto serve`: SOTTO_NODE_ID or its derived default,
   * src/config/node-id.ts): a node restarted under it updates its own row rather than adding one
   * that lingers (counted as a node) until it is no longer seen. Absent (other commands, in-process
   * test servers): a random row per process, as nothing keeps a fixed id unique there.
   */
  nodeId?: string | undefined;
  /** Heartbeat period (default 30 s). */
  heartbeatMs?: number;
  /** A node not seen for this long no longer counts (default 3 heartbeats). */
  activeMs?: number;
}

/**
 * The server_nodes key of a node id. The column is a uuid (migration 0025) and a node id is text
 * (NODE_ID_PATTERN), so the key is a name-based UUID of it: the same id always gives the same row
 * (version 8, RFC 9562: a hash the application defines). SHA-256 keeps two ids apart as well as
 * the ids themselves are kept apart.
 */
export function serverNodeRowId(nodeId: string): string {
  const h = createHash('sha256').update(`sotto server node\0${nodeId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export class ServerNodeService {
  /** This process's row in server_nodes (serverNodeRowId of its node id, else random). */
  readonly rowId: string;
  /** When this process first recorded itself: a restarted node's row says when it came back. */
  private startedAt: Date | undefined;
  private timer: NodeJS.Timeout | undefined;
  private others: OtherNodeUrl[] = [];
  private said = '';

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly logger: Pick<Logger, 'warn' | 'info'>,
    private readonly opts: ServerNodeOptions,
  ) {
    this.rowId = opts.nodeId ? serverNodeRowId(opts.nodeId) : randomUUID();
  }

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
    const startedAt = (this.startedAt ??= now);
    const since = new Date(now.getTime() - (this.opts.activeMs ?? 3 * this.heartbeatMs));
    const others = await withSystem(this.db, async (tx) => {
      await serverNodeRepository.beat(tx, {
        rowId: this.rowId,
        publicUrl: this.opts.publicUrl,
        startedAt,
        now,
      });
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
    await withSystem(this.db, (tx) => serverNodeRepository.remove(tx, this.rowId)).catch(() => undefined);
  }
}
