import type { Database, Queryable } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { FieldLocation } from '../../crypto/envelope.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import { actorCan } from '../../domain/api-scopes.js';
import type { Permission } from '../../domain/roles.js';
import { orgRepository, type OrgRow } from '../../repositories/orgs/org.repository.js';
import { deletionRepository, type DepartedPolicy } from '../../repositories/orgs/deletion.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';

export interface OrgView {
  id: string;
  name: string;
  slug: string;
  createdAt: Date;
  retentionDays: number;
  storeAudio: boolean;
}

export interface OrgSettings {
  retentionDays: number;
  storeAudio: boolean;
  /** Custom words for recognition. They reveal what conversations are about: stored encrypted. */
  vocabulary: string[];
  /** Account deletion: a departed member's recordings go to an owner/admin, or are deleted. */
  departedUserRecordings: DepartedPolicy;
}

/** The encrypted part of the settings (orgs.settings_enc). */
interface SealedSettings {
  vocabulary?: string[];
}

const view = (o: OrgRow): OrgView => ({
  id: o.id,
  name: o.name,
  slug: o.slug,
  createdAt: o.createdAt,
  retentionDays: o.retentionDays,
  storeAudio: o.storeAudio,
});

const sealedAt = (orgId: string): FieldLocation => ({
  orgId,
  table: 'orgs',
  rowId: orgId,
  field: 'settings_enc',
});

/** The organization itself and its settings. */
export class OrgService {
  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly audit: AuditService,
  ) {}

  async get(actor: Actor): Promise<OrgView> {
    requirePermission(actor, 'org.read');
    return withTenant(this.db, actor, async (tx) => {
      const org = await orgRepository.find(tx, actor.orgId);
      if (!org) throw notFound('Organization');
      return view(org);
    });
  }

  async getSettings(actor: Actor): Promise<OrgSettings> {
    requirePermission(actor, 'org.manage');
    return withTenant(this.db, actor, async (tx) => {
      const org = await orgRepository.find(tx, actor.orgId);
      if (!org) throw notFound('Organization');
      return this.settingsOf(tx, org);
    });
  }

  async updateSettings(actor: Actor, patch: Partial<OrgSettings>): Promise<OrgSettings> {
    requirePermission(actor, 'org.manage');
    return withTenant(this.db, actor, async (tx) => {
      const org = await orgRepository.lock(tx, actor.orgId);
      if (!org) throw notFound('Organization');
      const before = await this.settingsOf(tx, org);
      const after: OrgSettings = {
        retentionDays: patch.retentionDays ?? before.retentionDays,
        storeAudio: patch.storeAudio ?? before.storeAudio,
        vocabulary: patch.vocabulary ?? before.vocabulary,
        departedUserRecordings: patch.departedUserRecordings ?? before.departedUserRecordings,
      };
      const changed: Record<string, unknown> = {};
      if (after.retentionDays !== before.retentionDays)
        changed.retentionDays = { from: before.retentionDays, to: after.retentionDays };
      if (after.storeAudio !== before.storeAudio)
        changed.storeAudio = { from: before.storeAudio, to: after.storeAudio };
      if (after.departedUserRecordings !== before.departedUserRecordings) {
        changed.departedUserRecordings = {
          from: before.departedUserRecordings,
          to: after.departedUserRecordings,
        };
        await deletionRepository.setDepartedPolicy(tx, actor.orgId, after.departedUserRecordings);
      }
      // Encrypted settings: the log says that they changed, never what they contain.
      const vocabularyChanged = JSON.stringify(after.vocabulary) !== JSON.stringify(before.vocabulary);
      if (!vocabularyChanged && Object.keys(changed).length === 0) return before;

      const sealed: SealedSettings = { vocabulary: after.vocabulary };
      await orgRepository.updateSettings(tx, actor.orgId, {
        retentionDays: after.retentionDays,
        storeAudio: after.storeAudio,
        settingsEnc: vocabularyChanged
          ? await this.keys.encryptJson(tx, sealedAt(actor.orgId), sealed)
          : org.settingsEnc,
      });
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'org.settings_changed',
        targetType: 'org',
        targetId: actor.orgId,
        ip: actor.ip,
        details: {
          changed: [...Object.keys(changed), ...(vocabularyChanged ? ['vocabulary'] : [])],
          ...changed,
        },
      });
      return after;
    });
  }

  /** Settings inside the caller's tenant transaction (other services: retention, transcription). */
  async settingsOf(tx: Queryable, org: OrgRow): Promise<OrgSettings> {
    const sealed = org.settingsEnc
      ? await this.keys.decryptJson<SealedSettings>(tx, sealedAt(org.id), org.settingsEnc)
      : {};
    return {
      retentionDays: org.retentionDays,
      storeAudio: org.storeAudio,
      vocabulary: sealed.vocabulary ?? [],
      departedUserRecordings: await deletionRepository.departedPolicy(tx, org.id),
    };
  }
}

/** Services re-check the permission the route already checked: they are called from the CLI too. */
export function requirePermission(actor: Actor, permission: Permission): void {
  if (!actorCan(actor, permission)) throw new AppError('forbidden', 'Your role does not allow this');
}
