import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database, Queryable } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { WebhookUrlError, type WebhookSender } from '../../adapters/network/webhook-delivery.adapter.js';
import { webhookEvents, type WebhookEvent } from '../../domain/webhook-events.js';
import {
  webhookRepository,
  type DeliveryRow,
  type WebhookRow,
} from '../../repositories/webhooks/webhook.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import { requirePermission } from '../orgs/org.service.js';
import { secretLocation, WebhookDeliveryLoop, type WebhookOptions } from './webhook-delivery-loop.js';

/**
 * Webhooks (docs/webhooks.md): an org's HTTPS endpoints told about recording events.
 *
 * Events are written to an outbox (webhook_deliveries) in the same transaction as the event
 * itself (`enqueueWebhooks`, webhook-outbox.ts), so a committed event is never lost and a
 * rolled-back one never sent. A delivery loop (webhook-delivery-loop.ts) sends due deliveries,
 * signed, and retries failures. Payloads carry ids, statuses and timestamps only:
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

export const MAX_WEBHOOKS_PER_ORG = 10;

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

export interface WebhookServiceDeps {
  db: Database;
  keys: KeyService;
  audit: AuditService;
  clock: Clock;
  sender: WebhookSender;
  logger: Pick<Logger, 'warn' | 'error'>;
  opts: WebhookOptions;
}

export class WebhookService {
  private readonly delivery: WebhookDeliveryLoop;

  constructor(private readonly deps: WebhookServiceDeps) {
    this.delivery = new WebhookDeliveryLoop(
      deps.db,
      deps.keys,
      deps.clock,
      deps.sender,
      deps.logger,
      deps.opts,
    );
  }

  /** The URL rules and the SSRF guard, host name resolved (the same guard runs again at send). */
  private async checkUrl(url: string): Promise<string> {
    try {
      return (await this.deps.sender.checkBeforeSave(url)).toString();
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
    await this.deps.audit.record(tx, {
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
    const row = await withTenant(this.deps.db, actor, async (tx) => {
      if ((await webhookRepository.countForOrg(tx)) >= MAX_WEBHOOKS_PER_ORG)
        throw new AppError('conflict', `At most ${MAX_WEBHOOKS_PER_ORG} webhooks per organization`);
      const created = await webhookRepository.insert(tx, {
        id,
        orgId: actor.orgId,
        url,
        events,
        secretEnc: await this.deps.keys.encrypt(tx, secretLocation(actor.orgId, id, 'secret'), secret),
        createdBy: actor.userId,
        now: this.deps.clock.now(),
      });
      await this.auditEvent(tx, actor, 'webhook.created', id, { events, host: new URL(url).host });
      return created;
    });
    return { webhook: view(row), secret };
  }

  async list(actor: Actor): Promise<WebhookView[]> {
    requirePermission(actor, 'webhooks.manage');
    return (await withTenant(this.deps.db, actor, (tx) => webhookRepository.list(tx))).map(view);
  }

  async update(
    actor: Actor,
    id: string,
    p: { url?: string | undefined; events?: readonly string[] | undefined; enabled?: boolean | undefined },
  ): Promise<WebhookView> {
    requirePermission(actor, 'webhooks.manage');
    const url = p.url !== undefined ? await this.checkUrl(p.url) : undefined;
    const events = p.events !== undefined ? checkEvents(p.events) : undefined;
    const now = this.deps.clock.now();
    return withTenant(this.deps.db, actor, async (tx) => {
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
    await withTenant(this.deps.db, actor, async (tx) => {
      if (!(await webhookRepository.delete(tx, id))) throw notFound('Webhook');
      await this.auditEvent(tx, actor, 'webhook.deleted', id);
    });
  }

  /** A new secret (shown once); the old one keeps signing for the grace period. */
  async rotate(actor: Actor, id: string): Promise<{ secret: string; previousValidUntil: Date }> {
    requirePermission(actor, 'webhooks.manage');
    const secret = newSecret();
    const now = this.deps.clock.now();
    await withTenant(this.deps.db, actor, async (tx) => {
      const row = await webhookRepository.find(tx, id);
      if (!row) throw notFound('Webhook');
      const current = await this.deps.keys.decrypt(
        tx,
        secretLocation(row.orgId, id, 'secret'),
        row.secretEnc,
      );
      await webhookRepository.rotate(
        tx,
        id,
        await this.deps.keys.encrypt(tx, secretLocation(row.orgId, id, 'secret'), secret),
        await this.deps.keys.encrypt(tx, secretLocation(row.orgId, id, 'previous_secret'), current),
        now,
      );
      await this.auditEvent(tx, actor, 'webhook.secret_rotated', id);
    });
    return {
      secret,
      previousValidUntil: new Date(now.getTime() + this.deps.opts.rotationGraceSeconds * 1000),
    };
  }

  async deliveries(actor: Actor, id: string, limit = 50): Promise<DeliveryRow[]> {
    requirePermission(actor, 'webhooks.manage');
    return withTenant(this.deps.db, actor, async (tx) => {
      if (!(await webhookRepository.find(tx, id))) throw notFound('Webhook');
      return webhookRepository.deliveries(tx, id, limit);
    });
  }

  /** Sends a delivery's payload again (a new delivery, due now). */
  async redeliver(actor: Actor, id: string, deliveryId: string): Promise<DeliveryRow> {
    requirePermission(actor, 'webhooks.manage');
    return withTenant(this.deps.db, actor, async (tx) => {
      const d = await webhookRepository.findDelivery(tx, deliveryId);
      if (!d || d.webhookId !== id) throw notFound('Delivery');
      const copy = await webhookRepository.requeueCopy(tx, d, this.deps.clock.now());
      await this.auditEvent(tx, actor, 'webhook.redelivered', id, { deliveryId, newDeliveryId: copy.id });
      return copy;
    });
  }

  /** One pass of the delivery loop: sends every due delivery; returns how many were attempted. */
  deliverDue(): Promise<number> {
    return this.delivery.deliverDue();
  }

  /** `sotto serve`: a pass every pollMs (claims make several nodes safe; each delivery is claimed once). */
  start(): void {
    this.delivery.start();
  }

  stop(): Promise<void> {
    return this.delivery.stop();
  }
}
