/**
 * The webhook delivery loop (docs/webhooks.md): sends due outbox deliveries, signed like Stripe's
 * (`Sotto-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`), and retries
 * failures with exponential backoff up to a cap, jittered (domain/backoff.ts).
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { backoffMs, type RandomSource } from '../../domain/backoff.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { WebhookSender } from '../../adapters/network/webhook-delivery.adapter.js';
import { webhookRepository } from '../../repositories/webhooks/webhook.repository.js';
import type { KeyService } from '../keys/key.service.js';

export interface WebhookOptions {
  maxAttempts: number;
  backoffSeconds: number;
  maxBackoffSeconds: number;
  pollMs: number;
  timeoutMs: number;
  /** After a rotation the previous secret also signs (a second v1) for this long. */
  rotationGraceSeconds: number;
  /** The backoff's random source (tests pass a fixed one); Math.random by default. */
  random?: RandomSource;
}

const BATCH = 20;
/** Webhooks served at once by one pass (each by one request at a time). */
const CONCURRENCY = 4;

/** A short, content-free name for an error (for logs and the delivery log). */
const errorCode = (err: unknown): string =>
  err instanceof AppError
    ? err.code
    : ((err as NodeJS.ErrnoException | undefined)?.code ?? (err instanceof Error ? err.name : 'unknown'));

export const secretLocation = (orgId: string, id: string, field: 'secret' | 'previous_secret') => ({
  orgId,
  table: 'webhooks',
  rowId: id,
  field,
});

/** `t=<unix>,v1=<hex>[,v1=<hex>]`: one v1 per secret (current first). */
export function signatureHeader(secrets: readonly string[], unixSeconds: number, body: string): string {
  const sigs = secrets.map(
    (s) => `v1=${createHmac('sha256', s).update(`${unixSeconds}.${body}`).digest('hex')}`,
  );
  return [`t=${unixSeconds}`, ...sigs].join(',');
}

export class WebhookDeliveryLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly clock: Clock,
    private readonly sender: WebhookSender,
    private readonly logger: Pick<Logger, 'warn' | 'error'>,
    private readonly opts: WebhookOptions,
  ) {}

  /** One pass of the delivery loop: sends every due delivery; returns how many were attempted. */
  deliverDue(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const now = this.clock.now();
    const due = await withSystem(this.db, (tx) => webhookRepository.due(tx, now, BATCH));
    // One queue per webhook (oldest first): a slow receiver delays only its own deliveries, and
    // never gets two requests at once. Up to CONCURRENCY webhooks are served in parallel.
    const queues = new Map<string, { id: string; orgId: string }[]>();
    for (const d of due) {
      const q = queues.get(d.webhookId);
      if (q) q.push(d);
      else queues.set(d.webhookId, [d]);
    }
    const waiting = [...queues.values()];
    let attempted = 0;
    const worker = async () => {
      for (let q = waiting.shift(); q; q = waiting.shift())
        for (const d of q) if (await this.attemptSafely(d.orgId, d.id)) attempted++;
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, waiting.length) }, worker));
    return attempted;
  }

  /**
   * One delivery, never throwing: an attempt that fails before it is sent (a secret that cannot be
   * decrypted: the org is being shredded, or this node lacks its key) is counted and backed off
   * in a transaction of its own, so it cannot stall the queue of every other org.
   */
  private async attemptSafely(orgId: string, deliveryId: string): Promise<boolean> {
    try {
      return await this.attempt(orgId, deliveryId);
    } catch (err) {
      const code = errorCode(err);
      // The code only: messages may quote content.
      this.logger.warn({ deliveryId, orgId, error: code }, 'webhook delivery could not be attempted');
      try {
        // Claimed and settled in one transaction: only while still due (no other node holds it).
        return await withTenant(this.db, { orgId, userId: null }, async (tx) => {
          const now = this.clock.now();
          const d = await webhookRepository.claim(tx, deliveryId, now, now);
          if (!d) return false;
          const exhausted = d.attempts >= this.opts.maxAttempts;
          return webhookRepository.settle(tx, d, {
            status: exhausted ? 'failed' : 'pending',
            nextAttemptAt: exhausted ? now : new Date(now.getTime() + this.retryDelayMs(d.attempts)),
            statusCode: null,
            error: `not sent: ${code}`.slice(0, 200),
            deliveredAt: null,
          });
        });
      } catch (settleErr) {
        this.logger.error({ deliveryId, orgId, error: errorCode(settleErr) }, 'webhook delivery not settled');
        return false;
      }
    }
  }

  private async attempt(orgId: string, deliveryId: string): Promise<boolean> {
    const tenant = { orgId, userId: null };
    const now = this.clock.now();
    // Claim and read the secrets in one short transaction; send outside it (slow network I/O).
    const claimed = await withTenant(this.db, tenant, async (tx) => {
      const d = await webhookRepository.claim(
        tx,
        deliveryId,
        now,
        new Date(now.getTime() + this.opts.timeoutMs * 2),
      );
      if (!d) return undefined;
      const hook = await webhookRepository.find(tx, d.webhookId);
      if (!hook) return undefined;
      const secrets = [
        (await this.keys.decrypt(tx, secretLocation(orgId, hook.id, 'secret'), hook.secretEnc)).toString(),
      ];
      const graceEnds = hook.rotatedAt ? hook.rotatedAt.getTime() + this.opts.rotationGraceSeconds * 1000 : 0;
      if (hook.previousSecretEnc && now.getTime() < graceEnds)
        secrets.push(
          (
            await this.keys.decrypt(
              tx,
              secretLocation(orgId, hook.id, 'previous_secret'),
              hook.previousSecretEnc,
            )
          ).toString(),
        );
      return { d, hook, secrets };
    });
    if (!claimed) return false;
    const { d, hook, secrets } = claimed;
    const body = JSON.stringify({
      id: d.id,
      event: d.event,
      createdAt: d.createdAt.toISOString(),
      data: d.payload,
    });
    const unix = Math.floor(now.getTime() / 1000);
    const result = hook.disabledAt
      ? { ok: false, statusCode: null, error: 'webhook disabled' }
      : await this.sender.send(hook.url, body, {
          'user-agent': 'Sotto-Webhooks/1',
          'sotto-event': d.event,
          'sotto-delivery': d.id,
          'sotto-signature': signatureHeader(secrets, unix, body),
        });
    const after = this.clock.now();
    const exhausted = d.attempts >= this.opts.maxAttempts || Boolean(hook.disabledAt);
    const delay = this.retryDelayMs(d.attempts);
    if (!result.ok)
      this.logger.warn(
        {
          webhookId: hook.id,
          deliveryId: d.id,
          attempt: d.attempts,
          statusCode: result.statusCode,
          error: result.error,
        },
        'webhook delivery failed',
      );
    const kept = await withTenant(this.db, tenant, (tx) =>
      webhookRepository.settle(tx, d, {
        status: result.ok ? 'delivered' : exhausted ? 'failed' : 'pending',
        nextAttemptAt: result.ok || exhausted ? after : new Date(after.getTime() + delay),
        statusCode: result.statusCode,
        error: result.error,
        deliveredAt: result.ok ? after : null,
      }),
    );
    // The hold ran out before this attempt ended and another node re-claimed the delivery: its
    // attempt is the one recorded (the receiver dedupes on Sotto-Delivery).
    if (!kept) this.logger.warn({ webhookId: hook.id, deliveryId: d.id }, 'webhook delivery claim lost');
    return true;
  }

  /** The wait before the retry that follows attempt number `attempt`. */
  private retryDelayMs(attempt: number): number {
    return backoffMs(
      { baseMs: this.opts.backoffSeconds * 1000, capMs: this.opts.maxBackoffSeconds * 1000 },
      attempt,
      this.opts.random,
    );
  }

  /** `sotto serve`: a pass every pollMs (claims make several nodes safe; each delivery is claimed once). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.deliverDue().catch((err: unknown) => this.logger.error({ err }, 'webhook delivery pass failed'));
    }, this.opts.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}
