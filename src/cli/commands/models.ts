import { loadAsrConfig } from '../../config/config.js';
import { AppError } from '../../domain/errors.js';
import { modelsDir } from '../../adapters/asr/select-engine.js';
import { systemClock } from '../../adapters/system/clock.adapter.js';
import { ModelStore, type DownloadProgress } from '../../adapters/storage/model.adapter.js';
import { ModelService } from '../../services/transcription/model.service.js';
import { stdout, type Print } from '../output.js';
import { CliError } from '../cli-error.js';
import type { ModelServiceFactory } from './models-command.js';

/**
 * `sotto models pull <name> | list`: whisper models under `${SOTTO_DATA_DIR}/models/`. Needs
 * neither the database nor the master key, so it also works while `sotto serve` is running.
 */
const MiB = 1024 * 1024;

export function defaultModelService(opts: { mirror?: string } = {}): ModelService {
  const { dataDir } = loadAsrConfig();
  return new ModelService(
    new ModelStore(modelsDir(dataDir)),
    systemClock,
    opts.mirror ? { baseUrl: opts.mirror } : {},
  );
}

/** A progress bar on a terminal; a line per 10% otherwise (logs, CI). */
export function progressReporter(
  name: string,
  out: { isTTY?: boolean; write(s: string): unknown } = process.stderr,
): { update(p: DownloadProgress): void; done(): void } {
  let lastDraw = 0;
  let lastDecile = -1;
  const started = Date.now();
  let startBytes: number | undefined;
  const line = (p: DownloadProgress) => {
    startBytes ??= p.received;
    const pct = p.total ? Math.floor((p.received / p.total) * 100) : undefined;
    const seconds = Math.max(0.001, (Date.now() - started) / 1000);
    const rate = (p.received - startBytes) / MiB / seconds;
    const bar =
      pct === undefined
        ? ''
        : `[${'#'.repeat(Math.floor(pct / 5)).padEnd(20, '.')}] ${String(pct).padStart(3)}% `;
    const size = `${(p.received / MiB).toFixed(1)}${p.total ? `/${(p.total / MiB).toFixed(1)}` : ''} MiB`;
    const resumed = p.resumedFrom > 0 ? ` (resumed at ${(p.resumedFrom / MiB).toFixed(1)} MiB)` : '';
    return `${name} ${bar}${size} ${rate.toFixed(1)} MiB/s${resumed}`;
  };
  let last: DownloadProgress | undefined;
  return {
    update(p) {
      last = p;
      if (out.isTTY) {
        if (Date.now() - lastDraw < 100 && p.received !== p.total) return;
        lastDraw = Date.now();
        out.write(`\r${line(p)}\u001b[K`);
        return;
      }
      const decile = p.total ? Math.floor((p.received / p.total) * 10) : -1;
      if (decile > lastDecile) {
        lastDecile = decile;
        out.write(`${line(p)}\n`);
      }
    },
    done() {
      if (out.isTTY && last) out.write(`\r${line(last)}\u001b[K\n`);
    },
  };
}

export async function pullModel(
  models: ModelService,
  name: string,
  opts: {
    force?: boolean;
    signal?: AbortSignal;
    print?: Print;
    progress?: ReturnType<typeof progressReporter>;
  } = {},
): Promise<void> {
  const print = opts.print ?? stdout;
  const progress = opts.progress ?? progressReporter(name);
  try {
    const r = await models.pull(name, {
      onProgress: (p) => progress.update(p),
      ...(opts.force ? { force: true } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    progress.done();
    if (r.alreadyInstalled) {
      print(`${name} is already installed and verified: ${r.path} (use --force to download it again)`);
      return;
    }
    print(`Installed ${name}: ${r.path} (${(r.bytes / MiB).toFixed(1)} MiB)`);
    print(
      r.publishedDigest
        ? `SHA-256 ${r.sha256} matches the published digest.`
        : `SHA-256 ${r.sha256} recorded (no published digest to compare; later downloads must match it).`,
    );
  } catch (err) {
    progress.done();
    if (opts.signal?.aborted)
      throw new CliError('download interrupted; run the same command again to resume');
    // Our errors are written for the operator (unknown name, HTTP failure, digest mismatch).
    if (err instanceof AppError) throw new CliError(err.message);
    throw err;
  }
}

export async function listModels(
  models: ModelService,
  configured: string,
  print: Print = stdout,
): Promise<void> {
  const rows = await models.list();
  print(`Models in ${models.dir} (SOTTO_WHISPER_MODEL=${configured}):`);
  for (const r of rows) {
    const mark = r.name === configured || r.file === configured ? '*' : ' ';
    const state = !r.installed
      ? r.partialBytes > 0
        ? `partial download (${(r.partialBytes / MiB).toFixed(1)} MiB; \`sotto models pull ${r.name}\` resumes it)`
        : `not installed (~${r.approxMiB} MiB)`
      : r.verified
        ? `installed, verified (${((r.bytes ?? 0) / MiB).toFixed(1)} MiB)`
        : `installed, NOT verified (${((r.bytes ?? 0) / MiB).toFixed(1)} MiB${r.approxMiB ? `; \`sotto models pull ${r.name} --force\` replaces it` : ''})`;
    print(`${mark} ${r.name.padEnd(16)} ${state}`);
  }
}

/** `sotto models pull` (models-command.ts): Ctrl-C stops the download, which a re-run resumes. */
export async function runModelPull(
  name: string,
  opts: { force?: boolean; mirror?: string },
  models: ModelServiceFactory = defaultModelService,
): Promise<void> {
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    await pullModel(models(opts.mirror ? { mirror: opts.mirror } : {}), name, {
      ...(opts.force ? { force: true } : {}),
      signal: ac.signal,
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** `sotto models list` (models-command.ts), marking the model the configuration names. */
export async function runModelList(models: ModelServiceFactory = defaultModelService): Promise<void> {
  await listModels(models({}), loadAsrConfig().whisperModel);
}
