import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { loadBootstrapConfig } from '../../config/config.js';
import { createKeyFile, ensurePrivateDir } from '../../adapters/storage/master-key-file.adapter.js';
import { stdout, type Print } from '../output.js';
import { CliError } from '../cli-error.js';
import { pgliteDir } from '../runtime.js';

/**
 * `sotto init`: creates the data directory and a master key file for the embedded default. The
 * key is written once, never overwritten (losing it makes every encrypted field unreadable).
 */
export interface InitOptions {
  ifMissing: boolean;
  env?: Record<string, string | undefined>;
  print?: Print;
}

export interface InitResult {
  keyFile: string | undefined;
}

export async function runInit(opts: InitOptions): Promise<InitResult> {
  const print = opts.print ?? stdout;
  const boot = loadBootstrapConfig(opts.env);
  if (boot.masterKeyVariable === 'SOTTO_MASTER_KEY') {
    if (opts.ifMissing) return { keyFile: undefined };
    throw new CliError(
      'SOTTO_MASTER_KEY is set: the master key comes from the environment, nothing to write',
    );
  }
  // An operator who points SOTTO_MASTER_KEY_FILE somewhere manages that file themselves.
  if (opts.ifMissing && (boot.masterKeyVariable !== undefined || existsSync(boot.masterKeyFile))) {
    return { keyFile: undefined };
  }
  if (existsSync(boot.masterKeyFile)) {
    throw new CliError(
      `a master key already exists at ${boot.masterKeyFile}; refusing to overwrite it (without it, encrypted data cannot be read)`,
    );
  }
  ensurePrivateDir(boot.dataDir);
  try {
    createKeyFile(boot.masterKeyFile, [{ version: 1, key: randomBytes(32), createdAt: new Date() }]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      if (opts.ifMissing) return { keyFile: undefined };
      throw new CliError(
        `a master key appeared at ${boot.masterKeyFile} meanwhile; refusing to overwrite it`,
      );
    }
    throw err;
  }
  const where = boot.databaseUrl
    ? 'the PostgreSQL database'
    : `the database files in ${pgliteDir(boot.dataDir)}`;
  print(`Wrote a new master key to ${boot.masterKeyFile} (mode 0600).`);
  print(
    `Back it up now, and keep the backup apart from backups of ${where}: ` +
      'without the key the encrypted data cannot be read, and a copy stored next to the data protects nothing.',
  );
  return { keyFile: boot.masterKeyFile };
}
