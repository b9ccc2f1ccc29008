import type { Services } from '../../app.js';
import { loadConfig, type Config } from '../../config/config.js';
import { addKeyVersion } from '../../adapters/storage/master-key-file.adapter.js';
import type { ActiveKeyAge, MasterKeyAge } from '../../services/keys/key-age.service.js';
import { stdout, type Print } from '../output.js';

/**
 * `sotto keys status | rotate`. Rotation adds a master key version and re-wraps every org data
 * key and JWT signing key under it, online (small SKIP LOCKED batches). Old versions stay in the
 * keyring, so anything not yet re-wrapped — or read by a node that has not reloaded — still opens.
 */
export interface ServicesHandle {
  services: Services;
  close(): Promise<void>;
}

/** Opens services for a given config (the CLI passes openRuntime; tests pass their own). */
export type OpenServices = (config: Config) => Promise<ServicesHandle>;

export interface KeyStatus {
  source: Config['masterKeySource'];
  configuredVersions: number[];
  activeVersion: number;
  dataKeysByMasterVersion: Record<number, number>;
  /** Each configured version's age, newest first, and the active one judged against the limit. */
  ages: MasterKeyAge[];
  activeKeyAge: ActiveKeyAge;
}

function describeSource(source: Config['masterKeySource']): string {
  return source.kind === 'file' ? `key file ${source.path}` : 'environment (SOTTO_MASTER_KEY)';
}

export async function keysStatus(services: Services, print: Print = stdout): Promise<KeyStatus> {
  const { config } = services;
  const configuredVersions = [...config.masterKeys.byVersion.keys()].sort((a, b) => b - a);
  const s = await services.keys.status();
  print(`Master key source: ${describeSource(config.masterKeySource)}`);
  print(
    `Configured master key versions: ${configuredVersions.map((v) => `v${v}`).join(', ')} (active: v${s.activeMasterVersion})`,
  );
  const ages = await services.keyAge.ages();
  const activeKeyAge = await services.keyAge.activeKey();
  print(`Master key ages (warning after SOTTO_KEY_MAX_AGE_DAYS = ${activeKeyAge.maxAgeDays} days):`);
  for (const a of ages) {
    const age =
      a.createdAt && a.ageDays !== undefined
        ? `${a.ageDays} day${a.ageDays === 1 ? '' : 's'} old (since ${a.createdAt.toISOString()}, from the ${a.source})`
        : 'unknown (no creation record: the key predates Sotto recording it, or comes from the environment)';
    print(`  v${a.version} age: ${age}${a.active ? '  (active)' : ''}`);
  }
  if (activeKeyAge.status === 'rotate_due')
    print(
      `WARNING: the active master key v${activeKeyAge.version} is ${activeKeyAge.ageDays} days old, more than ${activeKeyAge.maxAgeDays}: rotate it with \`sotto keys rotate\`.`,
    );
  const entries = Object.entries(s.dataKeysByMasterVersion).map(([v, n]) => [Number(v), n] as const);
  print('Organization data keys by master key version:');
  if (entries.length === 0) print('  (none yet)');
  for (const [v, n] of entries) {
    const note = !config.masterKeys.byVersion.has(v)
      ? '  NOT CONFIGURED: these cannot be unwrapped'
      : v === s.activeMasterVersion
        ? '  (active)'
        : '  (older: `sotto keys rotate --rewrap-only` moves them to the active version)';
    print(`  v${v}: ${n}${note}`);
  }
  return {
    source: config.masterKeySource,
    configuredVersions,
    activeVersion: s.activeMasterVersion,
    dataKeysByMasterVersion: s.dataKeysByMasterVersion,
    ages,
    activeKeyAge,
  };
}

export interface RotateOptions {
  config: Config;
  open: OpenServices;
  /** Re-wrap to the highest configured version without adding one (keyrings managed outside Sotto). */
  rewrapOnly?: boolean;
  print?: Print;
}

export interface RotateResult {
  addedVersion: number | undefined;
  activeVersion: number;
  dataKeysRewrapped: number;
  signingKeysRewrapped: number;
}

export async function rotateKeys(opts: RotateOptions): Promise<RotateResult> {
  const print = opts.print ?? stdout;
  let config = opts.config;
  const previousVersion = config.masterKeys.active.version;
  let addedVersion: number | undefined;

  if (config.masterKeySource.kind === 'file' && !opts.rewrapOnly) {
    // Prove the database is reachable (and the embedded one free) before adding a key version.
    await (await opts.open(config)).close();
    const file = config.masterKeySource.path;
    const { keyring, added } = addKeyVersion(file);
    addedVersion = added.version;
    config = { ...config, masterKeys: keyring };
    print(`Added master key v${added.version} to ${file} (older versions kept; mode 0600).`);
  } else if (config.masterKeySource.kind === 'env') {
    print(
      'The master keyring comes from SOTTO_MASTER_KEY, which Sotto cannot change. To rotate, add a new ' +
        'version on every node first, newest first: SOTTO_MASTER_KEY="v2:<new base64 key>,v1:<current base64 key>" ' +
        '(a new key: `openssl rand -base64 32`), restart, then run this command to re-wrap under it.',
    );
  }

  const handle = await opts.open(config);
  try {
    const { services } = handle;
    const activeVersion = services.keys.activeMasterVersion;
    const dataKeysRewrapped = await services.keys.rewrapAll();
    const signingKeysRewrapped = await services.tokens.rewrapSigningKeys();
    await services.audit.recordStandalone({
      orgId: null,
      actorId: null,
      actorKind: 'system',
      action: 'keys.rotated',
      targetType: 'master_key',
      targetId: `v${activeVersion}`,
      details: {
        source: config.masterKeySource.kind,
        previousVersion,
        activeVersion,
        versionAdded: addedVersion !== undefined,
        dataKeysRewrapped,
        signingKeysRewrapped,
      },
    });
    print(
      `Re-wrapped ${dataKeysRewrapped} data key(s) and ${signingKeysRewrapped} signing key(s) under master key v${activeVersion}.`,
    );
    if (addedVersion !== undefined) {
      print(
        'Servers reading this key file pick up the new version by themselves; copy the file to every ' +
          'other node that keeps its own copy. Keep the old versions in it until no backup needs them.',
      );
    }
    return { addedVersion, activeVersion, dataKeysRewrapped, signingKeysRewrapped };
  } finally {
    await handle.close();
  }
}

/** `sotto keys status` (keys-command.ts): the configured services, opened for the report only. */
export async function runKeysStatus(open: OpenServices): Promise<void> {
  const handle = await open(loadConfig());
  try {
    await keysStatus(handle.services);
  } finally {
    await handle.close();
  }
}

/** `sotto keys rotate` (keys-command.ts) with the configuration of the environment. */
export async function runKeysRotate(open: OpenServices, rewrapOnly: boolean): Promise<void> {
  await rotateKeys({ config: loadConfig(), open, rewrapOnly });
}
