import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AppError } from '../../domain/errors.js';
import { LockedError, acquireProcessLock } from '../system/process-lock.adapter.js';

/**
 * Speech model files under `${dataDir}/models/`: the whisper.cpp ggml catalogue (where each file
 * is published and its SHA-256), resumable downloads, and a manifest of what was installed and
 * verified. The structural check of a model file lives in asr/ggml-header.ts.
 */
export type WhisperModelName = 'tiny.en' | 'base.en' | 'small.en' | 'medium.en' | 'large-v3-turbo';

export interface CatalogEntry {
  file: string;
  /**
   * Published SHA-256 (hex). Undefined means "not confirmed": the digest of the first complete
   * download is recorded in the manifest and later downloads must match it.
   */
  sha256: string | undefined;
  approxMiB: number;
}

export const WHISPER_MODEL_BASE_URL = 'https://huggingface.co/ggerganov/whisper.cpp/resolve/main';

/**
 * Digests of the files in the ggerganov/whisper.cpp Hugging Face repository, each confirmed by
 * several independent Nix `fetchurl` pins (Nix refuses a download whose hash differs).
 */
export const WHISPER_MODELS: Record<WhisperModelName, CatalogEntry> = {
  'tiny.en': {
    file: 'ggml-tiny.en.bin',
    sha256: '921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f',
    approxMiB: 75,
  },
  'base.en': {
    file: 'ggml-base.en.bin',
    sha256: 'a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002',
    approxMiB: 142,
  },
  'small.en': {
    file: 'ggml-small.en.bin',
    sha256: 'c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d',
    approxMiB: 466,
  },
  'medium.en': {
    file: 'ggml-medium.en.bin',
    sha256: 'cc37e93478338ec7700281a7ac30a10128929eb8f427dda2e865faa8f6da4356',
    approxMiB: 1463,
  },
  'large-v3-turbo': {
    file: 'ggml-large-v3-turbo.bin',
    sha256: '1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69',
    approxMiB: 1549,
  },
};

export interface ManifestEntry {
  file: string;
  sha256: string;
  bytes: number;
  /** Where it was downloaded from. */
  source: string;
  installedAt: string;
}
export type Manifest = Record<string, ManifestEntry>;

export interface DownloadProgress {
  /** Bytes on disk so far, including a resumed part. */
  received: number;
  total: number | undefined;
  /** Where this download resumed (0 for a fresh one). */
  resumedFrom: number;
}

export interface DownloadOptions {
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
}

const downloadFailed = (message: string, cause?: unknown) =>
  new AppError('model_download_failed', message, undefined, cause === undefined ? undefined : { cause });

function parseContentRange(value: string | null): { start?: number; total?: number } {
  const m = /^bytes (?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!m) return {};
  return {
    ...(m[1] !== undefined ? { start: Number(m[1]) } : {}),
    ...(m[2] !== '*' ? { total: Number(m[2]) } : {}),
  };
}

async function sha256OfFile(file: string): Promise<ReturnType<typeof createHash>> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash;
}

export class ModelStore {
  constructor(
    readonly dir: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  /** A file inside the models folder; names are ours or the catalogue's, never paths. */
  filePath(file: string): string {
    if (file !== path.basename(file) || file.startsWith('.'))
      throw new Error(`not a model file name: ${file}`);
    return path.join(this.dir, file);
  }

  private partialPath(file: string): string {
    return `${this.filePath(file)}.part`;
  }

  private manifestPath(): string {
    return path.join(this.dir, 'manifest.json');
  }

  async readManifest(): Promise<Manifest> {
    try {
      return JSON.parse(await readFile(this.manifestPath(), 'utf8')) as Manifest;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
  }

  async recordInstalled(name: string, entry: ManifestEntry): Promise<void> {
    const manifest = { ...(await this.readManifest()), [name]: entry };
    const tmp = `${this.manifestPath()}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
    await rename(tmp, this.manifestPath());
  }

  async sizeOf(file: string): Promise<number | undefined> {
    try {
      return (await stat(this.filePath(file))).size;
    } catch {
      return undefined;
    }
  }

  async partialSize(file: string): Promise<number> {
    return (await stat(this.partialPath(file)).catch(() => undefined))?.size ?? 0;
  }

  async listFiles(): Promise<{ file: string; bytes: number }[]> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    const out: { file: string; bytes: number }[] = [];
    for (const file of entries.filter((f) => f.endsWith('.bin')).sort()) {
      const bytes = await this.sizeOf(file);
      if (bytes !== undefined) out.push({ file, bytes });
    }
    return out;
  }

  /**
   * Downloads `url` into `<file>.part`, continuing a partial file with an HTTP Range request, and
   * returns the SHA-256 of the complete part. The part is kept when the transfer breaks off (so
   * the next call resumes) and only a caller that has checked the digest installs it.
   */
  async download(
    url: string,
    file: string,
    opts: DownloadOptions = {},
  ): Promise<{ sha256: string; bytes: number }> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    let lock;
    try {
      lock = acquireProcessLock(`${this.partialPath(file)}.lock`);
    } catch (err) {
      if (err instanceof LockedError) {
        throw downloadFailed(`${file} is already being downloaded by process ${err.pid}`);
      }
      throw err;
    }
    try {
      return await this.transfer(url, file, opts, true);
    } finally {
      lock.release();
    }
  }

  private async transfer(
    url: string,
    file: string,
    opts: DownloadOptions,
    mayRestart: boolean,
  ): Promise<{ sha256: string; bytes: number }> {
    const part = this.partialPath(file);
    let offset = await this.partialSize(file);
    const host = new URL(url).host;
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        redirect: 'follow',
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw downloadFailed(`cannot reach ${host}: ${(err as Error).message}`, err);
    }

    if (res.status === 416 && offset > 0) {
      await res.body?.cancel();
      // Range past the end: the part may already be the whole file.
      const { total } = parseContentRange(res.headers.get('content-range'));
      if (total === offset) return { sha256: (await sha256OfFile(part)).digest('hex'), bytes: offset };
      if (!mayRestart) throw downloadFailed(`${host} refused to resume the download (HTTP 416)`);
      await rm(part, { force: true });
      return this.transfer(url, file, opts, false);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw downloadFailed(`${host} answered HTTP ${res.status} for ${path.basename(new URL(url).pathname)}`);
    }

    let total: number | undefined;
    if (res.status === 206) {
      const range = parseContentRange(res.headers.get('content-range'));
      if (range.start !== offset) {
        await res.body.cancel();
        throw downloadFailed(`${host} resumed at the wrong place (asked for byte ${offset})`);
      }
      total = range.total;
    } else {
      // 200: a fresh download, or a server that ignores Range — either way, from the start.
      offset = 0;
      const length = Number(res.headers.get('content-length'));
      total = Number.isFinite(length) && length > 0 ? length : undefined;
    }

    const hash = offset > 0 ? await sha256OfFile(part) : createHash('sha256');
    let received = offset;
    opts.onProgress?.({ received, total, resumedFrom: offset });
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        received += chunk.length;
        opts.onProgress?.({ received, total, resumedFrom: offset });
        done(null, chunk);
      },
    });
    try {
      await pipeline(
        Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
        tap,
        createWriteStream(part, { flags: offset > 0 ? 'a' : 'w', mode: 0o644 }),
      );
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw downloadFailed(
        `the download of ${file} broke off at ${received}${total ? ` of ${total}` : ''} bytes (${(err as Error).message}); run the same command again to resume`,
        err,
      );
    }
    if (total !== undefined && received !== total) {
      throw downloadFailed(
        `the download of ${file} ended at ${received} of ${total} bytes; run the same command again to resume`,
      );
    }
    return { sha256: hash.digest('hex'), bytes: received };
  }

  async discardPartial(file: string): Promise<void> {
    await rm(this.partialPath(file), { force: true });
  }

  /** Moves a verified part into place atomically (a reader never sees half a model). */
  async installPartial(file: string): Promise<string> {
    const final = this.filePath(file);
    const fd = await open(this.partialPath(file), 'r');
    try {
      await fd.sync();
    } finally {
      await fd.close();
    }
    await rename(this.partialPath(file), final);
    return final;
  }
}

export interface ResolvedModel {
  /** Catalogue name ('base.en') or the file name of a custom model. */
  name: string;
  path: string;
  catalog: CatalogEntry | undefined;
}

export function isWhisperModelName(value: string): value is WhisperModelName {
  return Object.hasOwn(WHISPER_MODELS, value);
}

/**
 * SOTTO_WHISPER_MODEL: a catalogue name (stored under the models folder), a `.bin` file name in
 * that folder, or an absolute path to a ggml `.bin` file.
 */
export function resolveWhisperModel(modelsDir: string, nameOrPath: string): ResolvedModel {
  if (isWhisperModelName(nameOrPath)) {
    const catalog = WHISPER_MODELS[nameOrPath];
    return { name: nameOrPath, path: path.join(modelsDir, catalog.file), catalog };
  }
  if (path.isAbsolute(nameOrPath) && nameOrPath.endsWith('.bin')) {
    return { name: path.basename(nameOrPath), path: nameOrPath, catalog: undefined };
  }
  if (/^[\w][\w.-]*\.bin$/.test(nameOrPath)) {
    return { name: nameOrPath, path: path.join(modelsDir, nameOrPath), catalog: undefined };
  }
  throw new AppError(
    'bad_request',
    `unknown whisper model "${nameOrPath}": use one of ${Object.keys(WHISPER_MODELS).join(', ')}, or an absolute path to a ggml .bin file`,
  );
}
