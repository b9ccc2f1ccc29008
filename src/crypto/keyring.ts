/**
 * The master keyring: one or more versioned 32-byte keys that live outside the database and wrap
 * the per-organization data keys. The highest version is active for new wraps; older versions
 * stay readable so rotation can re-wrap online.
 *
 * Text form (env SOTTO_MASTER_KEY or the key file): either one base64 key (version 1), or
 * entries `v<N>:<base64>` separated by commas or newlines. Lines starting with # are comments;
 * Sotto writes `# v<N> created <ISO date>` above each key it creates, so the key's age is known
 * without the database (SOTTO_KEY_MAX_AGE_DAYS warnings, `sotto keys status`).
 */
export interface MasterKey {
  version: number;
  key: Buffer;
  /** When Sotto created this version (from its `# vN created` comment), if known. */
  createdAt?: Date;
}

const CREATED = /^#\s*v(\d{1,6})\s+created\s+(\S+)\s*$/;

export interface MasterKeyring {
  active: MasterKey;
  byVersion: ReadonlyMap<number, MasterKey>;
}

export class KeyringError extends Error {
  override name = 'KeyringError';
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeKey(text: string, label: string): Buffer {
  if (!BASE64.test(text)) throw new KeyringError(`${label} is not valid base64`);
  const key = Buffer.from(text, 'base64');
  if (key.length !== 32) throw new KeyringError(`${label} must decode to 32 bytes, got ${key.length}`);
  return key;
}

export function parseKeyring(text: string): MasterKeyring {
  const lines = text.split(/[\n,]/).map((line) => line.trim());
  const created = new Map<number, Date>();
  for (const line of lines) {
    const m = CREATED.exec(line);
    const at = m ? new Date(m[2]!) : undefined;
    if (m && at && !Number.isNaN(at.getTime())) created.set(Number(m[1]), at);
  }
  const entries = lines.filter((line) => line !== '' && !line.startsWith('#'));
  if (entries.length === 0) throw new KeyringError('no key found');
  const byVersion = new Map<number, MasterKey>();
  for (const entry of entries) {
    const match = /^v(\d{1,6}):(.*)$/.exec(entry);
    if (!match && entries.length > 1)
      throw new KeyringError('several keys must each be written v<N>:<base64>');
    const version = match ? Number(match[1]) : 1;
    if (version < 1) throw new KeyringError('key versions start at 1');
    if (byVersion.has(version)) throw new KeyringError(`key version ${version} appears twice`);
    const key = decodeKey(match ? match[2]! : entry, `key v${version}`);
    const createdAt = created.get(version);
    byVersion.set(version, { version, key, ...(createdAt ? { createdAt } : {}) });
  }
  const active = [...byVersion.values()].reduce((a, b) => (b.version > a.version ? b : a));
  return { active, byVersion };
}

export function formatKeyring(keys: readonly MasterKey[]): string {
  return (
    [...keys]
      .sort((a, b) => b.version - a.version)
      .map(
        (k) =>
          (k.createdAt ? `# v${k.version} created ${k.createdAt.toISOString()}\n` : '') +
          `v${k.version}:${k.key.toString('base64')}`,
      )
      .join('\n') + '\n'
  );
}
