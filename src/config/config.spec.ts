import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { StorageSettings } from './object-storage.js';
import type { KeyStoreSettings } from './key-store.js';
import {
  ConfigError,
  defaultMasterKeyFile,
  loadBootstrapConfig,
  loadConfig,
  type AsrConfig,
  type BootstrapConfig,
  type Config,
} from './config.js';

const key = () => randomBytes(32).toString('base64');
const dir = mkdtempSync(path.join(tmpdir(), 'sotto-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ SOTTO_DATA_DIR: dir, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({ SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY: key() });
    expect(c).toMatchObject({
      env: 'development',
      httpsPort: 8443,
      httpPort: 8080,
      host: '0.0.0.0',
      publicUrl: 'https://localhost:8443',
      migrateOnStart: true,
      trustProxy: undefined,
      tls: undefined,
      databaseUrl: undefined,
      redisUrl: undefined,
      masterKeySource: { kind: 'env' },
    });
    expect(c.masterKeys.active.version).toBe(1);
  });

  it('names every bad variable in one error, master key included', () => {
    const p = problems({
      SOTTO_HTTPS_PORT: '70000',
      SOTTO_HTTP_PORT: 'eighty',
      SOTTO_MASTER_KEY: 'c2hvcnQ=',
      DATABASE_URL: 'mysql://x',
      SOTTO_PUBLIC_URL: 'http://insecure.example',
      SOTTO_ENV: 'staging',
    });
    for (const name of [
      'SOTTO_HTTPS_PORT',
      'SOTTO_HTTP_PORT',
      'SOTTO_MASTER_KEY',
      'DATABASE_URL',
      'SOTTO_PUBLIC_URL',
      'SOTTO_ENV',
    ]) {
      expect(
        p.some((line) => line.startsWith(`${name}:`)),
        name,
      ).toBe(true);
    }
  });

  it('refuses a missing, short, non-base64 or duplicated master key', () => {
    expect(problems({})).toEqual([expect.stringMatching(/^SOTTO_MASTER_KEY: no master key configured/)]);
    expect(problems({ SOTTO_MASTER_KEY: randomBytes(31).toString('base64') })[0]).toMatch(/32 bytes, got 31/);
    expect(problems({ SOTTO_MASTER_KEY: 'not*base64!' })[0]).toMatch(/not valid base64/);
    expect(problems({ SOTTO_MASTER_KEY: `v1:${key()},v1:${key()}` })[0]).toMatch(/appears twice/);
  });

  it('reads a versioned keyring from a file and makes the highest version active', () => {
    const file = path.join(dir, 'ring.key');
    writeFileSync(file, `# comment\nv1:${key()}\nv3:${key()}\n`, { mode: 0o600 });
    const c = loadConfig({ SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY_FILE: file });
    expect(c.masterKeySource).toEqual({ kind: 'file', path: file });
    expect(c.masterKeys.active.version).toBe(3);
    expect([...c.masterKeys.byVersion.keys()].sort()).toEqual([1, 3]);
  });

  it('requires TLS cert and key together and existing', () => {
    const p = problems({ SOTTO_MASTER_KEY: key(), SOTTO_TLS_CERT: path.join(dir, 'missing.pem') });
    expect(p).toContain('SOTTO_TLS_CERT and SOTTO_TLS_KEY must be set together');
    expect(p.some((l) => l.startsWith('SOTTO_TLS_CERT:') && l.includes('does not exist'))).toBe(true);
  });

  it('turns on proxy mode with a trusted proxy list, and production does not migrate on start', () => {
    const c = loadConfig({
      SOTTO_DATA_DIR: dir,
      SOTTO_MASTER_KEY: key(),
      SOTTO_TRUST_PROXY: '10.0.0.1, 192.168.0.0/16',
      SOTTO_ENV: 'production',
      SOTTO_PUBLIC_URL: 'https://sotto.example',
    });
    expect(c.trustProxy).toEqual(['10.0.0.1', '192.168.0.0/16']);
    expect(c.migrateOnStart).toBe(false);
    expect(
      loadConfig({
        SOTTO_DATA_DIR: dir,
        SOTTO_MASTER_KEY: key(),
        SOTTO_ENV: 'production',
        SOTTO_PUBLIC_URL: 'https://sotto.example',
        SOTTO_MIGRATE_ON_START: 'true',
      }).migrateOnStart,
    ).toBe(true);
  });

  it('refuses production without an explicit public URL (nodes would each issue tokens for their own)', () => {
    expect(() =>
      loadConfig({ SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY: key(), SOTTO_ENV: 'production' }),
    ).toThrow(/SOTTO_PUBLIC_URL: required in production/);
    // Development keeps its default, so `npm start` needs no configuration.
    expect(loadConfig({ SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY: key() }).publicUrl).toBe(
      'https://localhost:8443',
    );
  });
});

describe('SOTTO_NODE_ID', () => {
  it('is taken as given, and unset by default (`sotto serve` then derives one)', () => {
    expect(loadConfig({ SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY: key() }).nodeId).toBeUndefined();
    const id = `a.Node_1-${'x'.repeat(55)}`;
    expect(id).toHaveLength(64);
    expect(loadConfig({ SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY: key(), SOTTO_NODE_ID: id }).nodeId).toBe(id);
  });

  it('is refused at boot, by name, when empty of allowed characters, too long or with others', () => {
    for (const bad of ['node 1', 'node/1', 'nœud', 'x'.repeat(65), 'a:b', 'a\nb']) {
      const p = problems({ SOTTO_MASTER_KEY: key(), SOTTO_NODE_ID: bad });
      expect(p, bad).toEqual([expect.stringMatching(/^SOTTO_NODE_ID: 1 to 64 characters of A-Z/)]);
    }
    // Named beside every other bad variable, in the one error.
    const p = problems({ SOTTO_NODE_ID: 'no spaces', SOTTO_HTTPS_PORT: 'x' });
    expect(p.some((l) => l.startsWith('SOTTO_NODE_ID:'))).toBe(true);
    expect(p.some((l) => l.startsWith('SOTTO_HTTPS_PORT:'))).toBe(true);
    expect(p.some((l) => l.startsWith('SOTTO_MASTER_KEY:'))).toBe(true);
  });
});

describe('loadBootstrapConfig (init, migrate)', () => {
  it('needs no master key and says where the key file goes', () => {
    const b = loadBootstrapConfig({ SOTTO_DATA_DIR: dir });
    expect(b.masterKeyFile).toBe(defaultMasterKeyFile(dir));
    expect(b.masterKeyVariable).toBeUndefined();
    expect(path.relative(path.join(dir, 'db'), b.masterKeyFile).startsWith('..')).toBe(true);
  });

  it('reports which master key variable is set', () => {
    expect(loadBootstrapConfig({ SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY: 'anything' }).masterKeyVariable).toBe(
      'SOTTO_MASTER_KEY',
    );
    const b = loadBootstrapConfig({ SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY_FILE: 'rel/k.key' });
    expect(b.masterKeyVariable).toBe('SOTTO_MASTER_KEY_FILE');
    expect(path.isAbsolute(b.masterKeyFile)).toBe(true);
    const blank = { SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY: ' ', SOTTO_MASTER_KEY_FILE: 'k.key' };
    expect(loadBootstrapConfig(blank).masterKeyVariable).toBe('SOTTO_MASTER_KEY_FILE');
  });

  it('still names bad variables it reads', () => {
    expect(() => loadBootstrapConfig({ DATABASE_URL: 'nope', SOTTO_ENV: 'x' })).toThrow(ConfigError);
    try {
      loadBootstrapConfig({ DATABASE_URL: 'nope', SOTTO_ENV: 'x' });
    } catch (err) {
      const p = (err as ConfigError).problems;
      expect(p.some((l) => l.startsWith('DATABASE_URL:'))).toBe(true);
      expect(p.some((l) => l.startsWith('SOTTO_ENV:'))).toBe(true);
    }
  });
});

// Config and the tool configs are inferred from their mappings (no hand-written copy), so a literal
// that widens to string would go unnoticed by the code that narrows on it. Checked by `tsc`.
describe('the inferred config types', () => {
  it('keep the literal unions and the named sub-shapes code relies on', () => {
    expectTypeOf<Config['env']>().toEqualTypeOf<'development' | 'production' | 'test'>();
    expectTypeOf<Config['archive']>().toEqualTypeOf<{ store: 'dir' | 'database' | 's3'; dir: string }>();
    expectTypeOf<Config['masterKeySource']>().toEqualTypeOf<
      { kind: 'env' } | { kind: 'file'; path: string }
    >();
    expectTypeOf<Config['logLevel']>().toEqualTypeOf<
      'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
    >();
    expectTypeOf<Config['storage']>().toEqualTypeOf<StorageSettings>();
    expectTypeOf<Config['keyStore']>().toEqualTypeOf<KeyStoreSettings>();
    expectTypeOf<Config['asr']>().toEqualTypeOf<AsrConfig>();
    expectTypeOf<AsrConfig['engine']>().toEqualTypeOf<'auto' | 'whisper' | 'sphinx' | 'openai'>();
    expectTypeOf<AsrConfig['whisperLiveContext']>().toEqualTypeOf<'auto' | 'on' | 'off'>();
    expectTypeOf<BootstrapConfig['env']>().toEqualTypeOf<Config['env']>();
    expectTypeOf<BootstrapConfig['masterKeyVariable']>().toEqualTypeOf<
      'SOTTO_MASTER_KEY' | 'SOTTO_MASTER_KEY_FILE' | undefined
    >();
  });
});
