import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { rotationTimes } from '../../repositories/keys/master-key-age.repository.js';
import { keyFileModifiedAt } from '../../adapters/storage/master-key-file.adapter.js';

const DAY_MS = 24 * 3600 * 1000;

/** Where a key's creation time came from, best first. */
export type KeyAgeSource = 'key file' | 'rotation audit' | 'file time' | 'unknown';

export interface MasterKeyAge {
  version: number;
  active: boolean;
  createdAt: Date | undefined;
  source: KeyAgeSource;
  /** Whole days since createdAt (undefined when unknown). */
  ageDays: number | undefined;
}

export interface ActiveKeyAge extends MasterKeyAge {
  maxAgeDays: number;
  /** `rotate_due`: older than SOTTO_KEY_MAX_AGE_DAYS; `unknown`: no record of when it was made. */
  status: 'ok' | 'rotate_due' | 'unknown';
}

/**
 * Master key ages (issue 15): a key that is never rotated has had the longest time to leak from a
 * backup, a laptop or a former operator. Ages come from the `# vN created` comment Sotto writes
 * in the key file, else the platform audit chain's `keys.rotated` entry that activated the
 * version, else — for the active version of a key file only — the file's modification time
 * (rotation rewrites the file), else unknown. Unknown never warns: there is nothing to measure.
 */
export class KeyAgeService {
  constructor(
    private readonly db: Database,
    private readonly config: Pick<Config, 'masterKeys' | 'masterKeySource' | 'keyMaxAgeDays'>,
    private readonly clock: Clock,
  ) {}

  async ages(): Promise<MasterKeyAge[]> {
    const rotated = await withSystem(this.db, (tx) => rotationTimes(tx));
    const { masterKeys, masterKeySource } = this.config;
    const active = masterKeys.active.version;
    const now = this.clock.now().getTime();
    return [...masterKeys.byVersion.values()]
      .sort((a, b) => b.version - a.version)
      .map((k) => {
        let createdAt: Date | undefined = k.createdAt;
        let source: KeyAgeSource = createdAt ? 'key file' : 'unknown';
        if (!createdAt && rotated.has(k.version)) {
          createdAt = rotated.get(k.version);
          source = 'rotation audit';
        }
        if (!createdAt && k.version === active && masterKeySource.kind === 'file') {
          createdAt = keyFileModifiedAt(masterKeySource.path);
          if (createdAt) source = 'file time';
        }
        const ageDays = createdAt ? Math.max(0, Math.floor((now - createdAt.getTime()) / DAY_MS)) : undefined;
        return { version: k.version, active: k.version === active, createdAt, source, ageDays };
      });
  }

  async activeKey(): Promise<ActiveKeyAge> {
    const all = await this.ages();
    const a = all.find((k) => k.active)!;
    const maxAgeDays = this.config.keyMaxAgeDays;
    const status = a.ageDays === undefined ? 'unknown' : a.ageDays > maxAgeDays ? 'rotate_due' : 'ok';
    return { ...a, maxAgeDays, status };
  }

  /** The start-up warning (`sotto serve`); returns the age it judged. */
  async warnIfDue(logger: Pick<Logger, 'warn'>): Promise<ActiveKeyAge> {
    const a = await this.activeKey();
    if (a.status === 'rotate_due')
      logger.warn(
        { activeMasterKeyVersion: a.version, ageDays: a.ageDays, maxAgeDays: a.maxAgeDays, since: a.source },
        `the active master key v${a.version} is ${a.ageDays} days old, more than SOTTO_KEY_MAX_AGE_DAYS (${a.maxAgeDays}): rotate it with \`sotto keys rotate\``,
      );
    return a;
  }
}
