import path from 'node:path';
import { z } from 'zod';
import { loadAsrConfig, type AsrConfig } from './asr-config.js';
import { databaseTarget } from './backend-tls.js';
import { ConfigError, issuesAsProblems, optionalString, schema, type Env } from './env-schema.js';
import { defaultMasterKeyFile } from './paths.js';

// Each loader's result is its type (as Config is configFrom's in config.ts): one mapping, no
// hand-written copy; a property's comment on the returned object is what an editor shows.

/**
 * What `sotto init` and `sotto migrate` need, without loadConfig's master-key requirement: init
 * is what creates the key, and migrations never use it. Bad variables are still all named.
 */
export type BootstrapConfig = ReturnType<typeof loadBootstrapConfig>;

export function loadBootstrapConfig(env: Env = process.env) {
  const parsed = schema
    .pick({
      SOTTO_ENV: true,
      SOTTO_DATA_DIR: true,
      DATABASE_URL: true,
      SOTTO_DATABASE_CA_FILE: true,
      SOTTO_LOG_LEVEL: true,
      SOTTO_MASTER_KEY: true,
      SOTTO_MASTER_KEY_FILE: true,
    })
    .safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(issuesAsProblems(parsed.error));
  }
  const v = parsed.data;
  const problems: string[] = [];
  const database = databaseTarget(v, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const dataDir = path.resolve(v.SOTTO_DATA_DIR);
  return {
    env: v.SOTTO_ENV,
    dataDir,
    /** DATABASE_URL without ssl* parameters: TLS is `databaseTls`. */
    databaseUrl: database.url,
    databaseTls: database.tls,
    logLevel: v.SOTTO_LOG_LEVEL,
    /** Where the key file is (SOTTO_MASTER_KEY_FILE, or the data-dir default). */
    masterKeyFile: path.resolve(v.SOTTO_MASTER_KEY_FILE ?? defaultMasterKeyFile(dataDir)),
    /** Which variable the operator set explicitly for the master key, if any. */
    masterKeyVariable: (['SOTTO_MASTER_KEY', 'SOTTO_MASTER_KEY_FILE'] as const).find(
      (name) => v[name] !== undefined,
    ),
  };
}

/**
 * What `sotto worker` needs: the engine settings (SOTTO_ASR_*, SOTTO_DATA_DIR for whisper models),
 * the log level and the worker token. Never the master key or the database: a remote worker has
 * neither (docs/workers.md).
 */
export type WorkerConfig = ReturnType<typeof loadWorkerConfig>;

export function loadWorkerConfig(env: Env = process.env) {
  const { dataDir, ...engine } = loadAsrConfig(env);
  const asr: AsrConfig = engine;
  const parsed = z
    .object({
      SOTTO_LOG_LEVEL: schema.shape.SOTTO_LOG_LEVEL,
      SOTTO_WORKER_TOKEN: optionalString,
      SOTTO_TMP_DIR: optionalString,
      SOTTO_TMP_SWEEP_SECONDS: schema.shape.SOTTO_TMP_SWEEP_SECONDS,
    })
    .safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(issuesAsProblems(parsed.error));
  }
  return {
    asr,
    dataDir,
    logLevel: parsed.data.SOTTO_LOG_LEVEL,
    /** SOTTO_WORKER_TOKEN (preferred over --token: argv is visible to every local user in ps). */
    token: parsed.data.SOTTO_WORKER_TOKEN,
    /** Parent of the worker's private folders (SOTTO_TMP_DIR, default <dataDir>/tmp/worker). */
    workDir: path.join(path.resolve(parsed.data.SOTTO_TMP_DIR ?? path.join(dataDir, 'tmp')), 'worker'),
    /** How often leftovers of killed workers are swept (SOTTO_TMP_SWEEP_SECONDS). */
    tmpSweepMs: Math.round(parsed.data.SOTTO_TMP_SWEEP_SECONDS * 1000),
  };
}

/** What `sotto bot` reads from the environment: only its access token (never server settings). */
export type BotConfig = ReturnType<typeof loadBotConfig>;

export function loadBotConfig(env: Env = process.env) {
  const parsed = z.object({ SOTTO_TOKEN: optionalString, PATH: z.string().default('') }).safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(issuesAsProblems(parsed.error));
  }
  return {
    /** SOTTO_TOKEN (preferred over --token: argv is visible to every local user in ps). */
    token: parsed.data.SOTTO_TOKEN,
    /** PATH: where the microphone recorder (arecord or sox) is looked for. */
    searchPath: parsed.data.PATH,
  };
}
