import type { Queryable } from '../../db/database.js';
import type { WebhookEvent } from '../../domain/webhook-events.js';
import { claimLease, releaseLease, type LeaseTable } from '../lease.repository.js';

/**
 * Webhooks and their delivery outbox (tables webhooks, webhook_deliveries). Everything runs under
 * the org's RLS context except `due`, which the delivery loop runs in the system context to find
 * work across orgs (ids only) before acting per org.
 */
export interface WebhookRow {
  id: string;
  orgId: string;
  url: string;
  events: WebhookEvent[];
  secretEnc: Buffer;
  previousSecretEnc: Buffer | null;
  rotatedAt: Date | null;
  createdBy: string | null;
  createdAt: Date;
  disabledAt: Date | null;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryRow {
  id: string;
  orgId: string;
  webhookId: string;
  event: WebhookEvent;
  payload: Record<string, unknown>;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

const HOOK_COLUMNS =
  'id, org_id, url, events, secret_enc, previous_secret_enc, rotated_at, created_by, created_at, disabled_at';
const DELIVERY_COLUMNS =
  'id, org_id, webhook_id, event, payload, status, attempts, next_attempt_at, last_status_code, last_error, created_at, delivered_at';

/**
 * A delivery's claim is the shared lease (lease.repository.ts) on next_attempt_at, which is also
 * its due time: claiming pushes it past the attempt's timeout, settling sets the next due time.
 * Each claim counts an attempt, which is the fence.
 */
const DELIVERY_LEASE: LeaseTable = {
  table: 'webhook_deliveries',
  key: 'id',
  until: 'next_attempt_at',
  fence: 'attempts',
};

/* eslint-disable @typescript-eslint/no-explicit-any -- row shapes are mapped field by field below */
const mapHook = (r: any): WebhookRow => ({
  id: r.id,
  orgId: r.org_id,
  url: r.url,
  events: r.events,
  secretEnc: Buffer.from(r.secret_enc),
  previousSecretEnc: r.previous_secret_enc ? Buffer.from(r.previous_secret_enc) : null,
  rotatedAt: r.rotated_at,
  createdBy: r.created_by,
  createdAt: r.created_at,
  disabledAt: r.disabled_at,
});

const mapDelivery = (r: any): DeliveryRow => ({
  id: r.id,
  orgId: r.org_id,
  webhookId: r.webhook_id,
  event: r.event,
  payload: typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastStatusCode: r.last_status_code,
  lastError: r.last_error,
  createdAt: r.created_at,
  deliveredAt: r.delivered_at,
});
/* eslint-enable @typescript-eslint/no-explicit-any */

export const webhookRepository = {
  async insert(
    tx: Queryable,
    w: {
      id: string;
      orgId: string;
      url: string;
      events: readonly WebhookEvent[];
      secretEnc: Buffer;
      createdBy: string;
      now: Date;
    },
  ): Promise<WebhookRow> {
    const { rows } = await tx.query(
      `INSERT INTO webhooks (id, org_id, url, events, secret_enc, created_by, created_at)
       VALUES ($1, $2, $3, $4::text[], $5, $6, $7) RETURNING ${HOOK_COLUMNS}`,
      [w.id, w.orgId, w.url, [...w.events], w.secretEnc, w.createdBy, w.now],
    );
    return mapHook(rows[0]);
  },

  async list(tx: Queryable): Promise<WebhookRow[]> {
    const { rows } = await tx.query(`SELECT ${HOOK_COLUMNS} FROM webhooks ORDER BY created_at, id`);
    return rows.map(mapHook);
  },

  async countForOrg(tx: Queryable): Promise<number> {
    const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM webhooks');
    return rows[0]!.n;
  },

  async find(tx: Queryable, id: string): Promise<WebhookRow | undefined> {
    const { rows } = await tx.query(`SELECT ${HOOK_COLUMNS} FROM webhooks WHERE id = $1`, [id]);
    return rows[0] && mapHook(rows[0]);
  },

  async update(
    tx: Queryable,
    id: string,
    p: {
      url?: string | undefined;
      events?: readonly WebhookEvent[] | undefined;
      disabledAt?: Date | null | undefined;
    },
  ): Promise<WebhookRow | undefined> {
    const { rows } = await tx.query(
      `UPDATE webhooks SET url = coalesce($2, url), events = coalesce($3::text[], events),
              disabled_at = CASE WHEN $4::boolean THEN $5::timestamptz ELSE disabled_at END
        WHERE id = $1 RETURNING ${HOOK_COLUMNS}`,
      [id, p.url ?? null, p.events ? [...p.events] : null, p.disabledAt !== undefined, p.disabledAt ?? null],
    );
    return rows[0] && mapHook(rows[0]);
  },

  async rotate(tx: Queryable, id: string, secretEnc: Buffer, previousEnc: Buffer, now: Date): Promise<void> {
    await tx.query(
      'UPDATE webhooks SET secret_enc = $2, previous_secret_enc = $3, rotated_at = $4 WHERE id = $1',
      [id, secretEnc, previousEnc, now],
    );
  },

  async delete(tx: Queryable, id: string): Promise<boolean> {
    return (await tx.query('DELETE FROM webhooks WHERE id = $1', [id])).rowCount > 0;
  },

  /**
   * The outbox write, in the transaction of the event itself: one pending delivery per enabled
   * webhook of the org (in context) that subscribes to the event. Returns how many.
   */
  async enqueue(
    tx: Queryable,
    e: { orgId: string; event: WebhookEvent; payload: Record<string, unknown>; now: Date },
  ): Promise<number> {
    const res = await tx.query(
      `INSERT INTO webhook_deliveries (org_id, webhook_id, event, payload, next_attempt_at, created_at)
       SELECT org_id, id, $2, $3::jsonb, $4, $4 FROM webhooks
        WHERE org_id = $1 AND disabled_at IS NULL AND $2 = ANY (events)`,
      [e.orgId, e.event, JSON.stringify(e.payload), e.now],
    );
    return res.rowCount;
  },

  /** Due deliveries of every org (system context): ids only, oldest first. */
  async due(
    tx: Queryable,
    now: Date,
    limit: number,
  ): Promise<{ id: string; orgId: string; webhookId: string }[]> {
    const { rows } = await tx.query<{ id: string; org_id: string; webhook_id: string }>(
      `SELECT id, org_id, webhook_id FROM webhook_deliveries
        WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => ({ id: r.id, orgId: r.org_id, webhookId: r.webhook_id }));
  },

  /**
   * Claims a due delivery for one attempt: pushes next_attempt_at past the attempt's timeout so
   * no other node (or loop pass) sends it meanwhile. Undefined when someone else got it first.
   */
  async claim(tx: Queryable, id: string, now: Date, holdUntil: Date): Promise<DeliveryRow | undefined> {
    const row = await claimLease<unknown>(tx, DELIVERY_LEASE, {
      now,
      until: holdUntil,
      where: `q.id = $3 AND q.status = 'pending'`,
      set: 'attempts = j.attempts + 1',
      returning: DELIVERY_COLUMNS,
      params: [id],
    });
    return row === undefined ? undefined : mapDelivery(row);
  },

  /**
   * Records an attempt's outcome, only while `claim` (the row as claimed) still holds: if the hold
   * ran out and another node re-claimed the delivery, that node's attempt is the one that counts.
   * False when the claim was lost.
   */
  settle(
    tx: Queryable,
    claim: Pick<DeliveryRow, 'id' | 'attempts' | 'nextAttemptAt'>,
    r: {
      status: DeliveryStatus;
      nextAttemptAt: Date;
      statusCode: number | null;
      error: string | null;
      deliveredAt: Date | null;
    },
  ): Promise<boolean> {
    return releaseLease(
      tx,
      DELIVERY_LEASE,
      { key: claim.id, fence: claim.attempts },
      {
        until: r.nextAttemptAt,
        set: 'status = $4, last_status_code = $5, last_error = $6, delivered_at = $7',
        where: `status = 'pending' AND next_attempt_at = $8`,
        params: [r.status, r.statusCode, r.error, r.deliveredAt, claim.nextAttemptAt],
      },
    );
  },

  async deliveries(tx: Queryable, webhookId: string, limit: number): Promise<DeliveryRow[]> {
    const { rows } = await tx.query(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1
        ORDER BY created_at DESC, id DESC LIMIT $2`,
      [webhookId, limit],
    );
    return rows.map(mapDelivery);
  },

  async findDelivery(tx: Queryable, id: string): Promise<DeliveryRow | undefined> {
    const { rows } = await tx.query(`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1`, [id]);
    return rows[0] && mapDelivery(rows[0]);
  },

  /** Redeliver: a fresh pending delivery of the same payload, due now. */
  async requeueCopy(tx: Queryable, d: DeliveryRow, now: Date): Promise<DeliveryRow> {
    const { rows } = await tx.query(
      `INSERT INTO webhook_deliveries (org_id, webhook_id, event, payload, next_attempt_at, created_at)
       VALUES ($1, $2, $3, $4::jsonb, $5, $5) RETURNING ${DELIVERY_COLUMNS}`,
      [d.orgId, d.webhookId, d.event, JSON.stringify(d.payload), now],
    );
    return mapDelivery(rows[0]);
  },
};
