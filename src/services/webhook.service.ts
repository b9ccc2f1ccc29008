import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database, Queryable } from '../db/database.js';
import { withSystem, withTenant } from '../db/tenant.js';
import type { Actor } from '../domain/auth-context.js';
import { backoffMs, type RandomSource } from '../domain/backoff.js';
import { AppError, notFound } from '../domain/errors.js';
import type { Clock } from '../repositories/clock.repository.js';
import { WebhookUrlError, type WebhookSender } from '../repositories/webhook-delivery.repository.js';
import { webhookEvents, type WebhookEvent } from '../domain/webhook-events.js';
import { webhookRepository, type DeliveryRow, type WebhookRow } from '../repositories/webhook.repository.js';
import type { AuditService } from './audit.service.js';
import type { KeyService } from './key.service.js';
import { requirePermission } from './org.service.js';

/**
 * Webhooks (docs/webhooks.md): an org's HTTPS endpoints told about recording events.
 *
 * Events are written to an outbox (webhook_deliveries) in the same transaction as the event
 * itself (`enqueueWebhooks`), so a committed event is never lost and a rolled-back one never
 * sent. A delivery loop sends due deliveries, signed like Stripe's
 * (`Sotto-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`), and retries
 * failures with exponential backoff up to a cap, jittered (domain/backoff.ts). Payloads carry ids, statuses and timestamps only:
 * never transcript text, never titles; the receiver fetches content with an API token.
 */
export interface WebhookView {
  id: string;
  url: string;
  events: WebhookEvent[];
  enabled: boolean;
  createdAt: Date;
  rotatedAt: Date | null;
}

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

export const MAX_WEBHOOKS_PER_ORG = 10;
const BATCH = 20;
/** Webhooks served at once by one pass (each by one request at a time). */
const CONCURRENCY = 4;

/** A short, content-free name for an error (for logs and the delivery log). */
const errorCode = (err: unknown): string =>
  err instanceof AppError
    ? err.code
    : ((err as NodeJS.ErrnoException | undefined)?.code ?? (err instanceof Error ? err.name : 'unknown'));

const secretLocation = (orgId: string, id: string, field: 'secret' | 'previous_secret') => ({
  orgId,
  table: 'webhooks',
  rowId: id,
  field,
});

/** The outbox write: call inside the transaction that records the event. No content, ever. */
export function enqueueWebhooks(
  tx: Queryable,
  e: {
    orgId: string;
    event: WebhookEvent;
    recordingId: string;
    status: string;
    now: Date;
    at?: Record<string, Date | null | undefined>;
  },
): Promise<number> {
  const times: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.at ?? {})) if (v) times[k] = v.toISOString();
  return webhookRepository.enqueue(tx, {
    orgId: e.orgId,
    event: e.event,
    payload: { recordingId: e.recordingId, status: e.status, occurredAt: e.now.toISOString(), ...times },
    now: e.now,
  });
}

const statusOf = { 'recording.done': 'done', 'recording.failed': 'failed', 'recording.deleted': 'deleted' };

/** The event of a recording reaching a final state (ids, status and time only). */
export const recordingEvent = (orgId: string, recordingId: string, event: WebhookEvent, now: Date) => ({
  orgId,
  event,
  recordingId,
  status: statusOf[event],
  now,
});

/** `t=<unix>,v1=<hex>[,v1=<hex>]`: one v1 per secret (current first). */
export function signatureHeader(secrets: readonly string[], unixSeconds: number, body: string): string {
  const sigs = secrets.map(
    (s) => `v1=${createHmac('sha256', s).update(`${unixSeconds}.${body}`).digest('hex')}`,
  );
  return [`t=${unixSeconds}`, ...sigs].join(',');
}

const newSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

const view = (w: WebhookRow): WebhookView => ({
  id: w.id,
  url: w.url,
  events: w.events,
  enabled: !w.disabledAt,
  createdAt: w.createdAt,
  rotatedAt: w.rotatedAt,
});

function checkEvents(events: readonly string[]): WebhookEvent[] {
  const unique = [...new Set(events)];
  if (unique.length === 0 || unique.some((e) => !(webhookEvents as readonly string[]).includes(e)))
    throw new AppError('bad_request', `Events must be one or more of: ${webhookEvents.join(', ')}`);
  return unique as WebhookEvent[];
}

export class WebhookService {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly sender: WebhookSender,
    private readonly logger: Pick<Logger, 'warn' | 'error'>,
    private readonly opts: WebhookOptions,
  ) {}

  /** The URL rules and the SSRF guard, host name resolved (the same guard runs again at send). */
  private async checkUrl(url: string): Promise<string> {
    try {
      return (await this.sender.checkBeforeSave(url)).toString();
    } catch (err) {
      throw new AppError(
        'bad_request',
        err instanceof WebhookUrlError ? `url: ${err.message}` : 'url: invalid',
      );
    }
  }

  private async auditEvent(
    tx: Queryable,
    actor: Actor,
    action: string,
    id: string,
    details?: Record<string, unknown>,
  ) {
    await this.audit.record(tx, {
      orgId: actor.orgId,
      actorId: actor.userId,
      actorKind: actor.viaSupportGrant ? 'support' : 'user',
      action,
      targetType: 'webhook',
      targetId: id,
      ip: actor.ip,
      ...(details ? { details } : {}),
    });
  }

  async create(
    actor: Actor,
    input: { url: string; events: readonly string[] },
  ): Promise<{ webhook: WebhookView; secret: string }> {
    requirePermission(actor, 'webhooks.manage');
    const url = await this.checkUrl(input.url);
    const events = checkEvents(input.events);
    const id = randomUUID();
    const secret = newSecret();
    const row = await withTenant(this.db, actor, async (tx) => {
      if ((await webhookRepository.countForOrg(tx)) >= MAX_WEBHOOKS_PER_ORG)
        throw new AppError('conflict', `At most ${MAX_WEBHOOKS_PER_ORG} webhooks per organization`);
      const created = await webhookRepository.insert(tx, {
        id,
        orgId: actor.orgId,
        url,
        events,
        secretEnc: await this.keys.encrypt(tx, secretLocation(actor.orgId, id, 'secret'), secret),
        createdBy: actor.userId,
        now: this.clock.now(),
      });
      await this.auditEvent(tx, actor, 'webhook.created', id, { events, host: new URL(url).host });
      return created;
    });
    return { webhook: view(row), secret };
  }

  async list(actor: Actor): Promise<WebhookView[]> {
    requirePermission(actor, 'webhooks.manage');
    return (await withTenant(this.db, actor, (tx) => webhookRepository.list(tx))).map(view);
  }

  async update(
    actor: Actor,
    id: string,
    p: { url?: string | undefined; events?: readonly string[] | undefined; enabled?: boolean | undefined },
  ): Promise<WebhookView> {
    requirePermission(actor, 'webhooks.manage');
    const url = p.url !== undefined ? await this.checkUrl(p.url) : undefined;
    const events = p.events !== undefined ? checkEvents(p.events) : undefined;
    const now = this.clock.now();
    return withTenant(this.db, actor, async (tx) => {
      const row = await webhookRepository.update(tx, id, {
        url,
        events,
        disabledAt: p.enabled === undefined ? undefined : p.enabled ? null : now,
      });
      if (!row) throw notFound('Webhook');
      await this.auditEvent(tx, actor, 'webhook.updated', id, {
        fields: Object.keys(p).filter((k) => p[k as keyof typeof p] !== undefined),
      });
      return view(row);
    });
  }

  async remove(actor: Actor, id: string): Promise<void> {
    requirePermission(actor, 'webhooks.manage');
    await withTenant(this.db, actor, async (tx) => {
      if (!(await webhookRepository.delete(tx, id))) throw notFound('Webhook');
      await this.auditEvent(tx, actor, 'webhook.deleted', id);
    });
  }

  /** A new secret (shown once); the old one keeps signing for the grace period. */
  async rotate(actor: Actor, id: string): Promise<{ secret: string; previousValidUntil: Date }> {
    requirePermission(actor, 'webhooks.manage');
    const secret = newSecret();
    const now = this.clock.now();
    await withTenant(this.db, actor, async (tx) => {
      const row = await webhookRepository.find(tx, id);
      if (!row) throw notFound('Webhook');
      const current = await this.keys.decrypt(tx, secretLocation(row.orgId, id, 'secret'), row.secretEnc);
      await webhookRepository.rotate(
        tx,
        id,
        await this.keys.encrypt(tx, secretLocation(row.orgId, id, 'secret'), secret),
        await this.keys.encrypt(tx, secretLocation(row.orgId, id, 'previous_secret'), current),
        now,
      );
      await this.auditEvent(tx, actor, 'webhook.secret_rotated', id);
    });
    return { secret, previousValidUntil: new Date(now.getTime() + this.opts.rotationGraceSeconds * 1000) };
  }

  async deliveries(actor: Actor, id: string, limit = 50): Promise<DeliveryRow[]> {
    requirePermission(actor, 'webhooks.manage');
    return withTenant(this.db, actor, async (tx) => {
      if (!(await webhookRepository.find(tx, id))) throw notFound('Webhook');
      return webhookRepository.deliveries(tx, id, limit);
    });
  }

  /** Sends a delivery's payload again (a new delivery, due now). */
  async redeliver(actor: Actor, id: string, deliveryId: string): Promise<DeliveryRow> {
    requirePermission(actor, 'webhooks.manage');
    return withTenant(this.db, actor, async (tx) => {
      const d = await webhookRepository.findDelivery(tx, deliveryId);
      if (!d || d.webhookId !== id) throw notFound('Delivery');
      const copy = await webhookRepository.requeueCopy(tx, d, this.clock.now());
      await this.auditEvent(tx, actor, 'webhook.redelivered', id, { deliveryId, newDeliveryId: copy.id });
      return copy;
    });
  }

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
