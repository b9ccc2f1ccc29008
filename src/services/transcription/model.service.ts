import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import {
  WHISPER_MODELS,
  WHISPER_MODEL_BASE_URL,
  type CatalogEntry,
  type DownloadProgress,
  type ModelStore,
} from '../../adapters/storage/model.adapter.js';

/**
 * `sotto models pull|list`: the rules around model files. A download is only installed when its
 * SHA-256 matches the published digest (or, for a catalogue entry without one, the digest
 * recorded at its first download); a mismatch deletes the partial file so the next attempt
 * starts clean instead of resuming onto bad bytes.
 */
export interface PullOptions {
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Download again even when a verified copy is installed. */
  force?: boolean;
}

export interface PullResult {
  name: string;
  path: string;
  sha256: string;
  bytes: number;
  alreadyInstalled: boolean;
  /** True when the digest came from the catalogue; false when it was recorded on first download. */
  publishedDigest: boolean;
}

export interface ModelListing {
  name: string;
  file: string;
  approxMiB: number | undefined;
  installed: boolean;
  bytes: number | undefined;
  /** Installed by `pull` with a checked digest, and the file still has the size it had then. */
  verified: boolean;
  /** A partial download is waiting to be resumed. */
  partialBytes: number;
}

export interface ModelServiceOptions {
  /** Mirror or test server holding the same file names (default: the whisper.cpp repository). */
  baseUrl?: string;
  catalog?: Record<string, CatalogEntry>;
}

export class ModelService {
  private readonly baseUrl: string;
  private readonly catalog: Record<string, CatalogEntry>;

  constructor(
    private readonly repo: ModelStore,
    /** Stamps the manifest's installedAt. */
    private readonly clock: Clock,
    opts: ModelServiceOptions = {},
  ) {
    this.baseUrl = (opts.baseUrl ?? WHISPER_MODEL_BASE_URL).replace(/\/+$/, '');
    this.catalog = opts.catalog ?? WHISPER_MODELS;
  }

  get dir(): string {
    return this.repo.dir;
  }

  names(): string[] {
    return Object.keys(this.catalog);
  }

  private entry(name: string): CatalogEntry {
    const entry = Object.hasOwn(this.catalog, name) ? this.catalog[name] : undefined;
    if (!entry) {
      throw new AppError('bad_request', `unknown model "${name}": choose one of ${this.names().join(', ')}`);
    }
    return entry;
  }

  async pull(name: string, opts: PullOptions = {}): Promise<PullResult> {
    const entry = this.entry(name);
    const manifest = await this.repo.readManifest();
    const recorded = manifest[name];
    const expected = entry.sha256 ?? recorded?.sha256;
    const size = await this.repo.sizeOf(entry.file);
    if (!opts.force && recorded && size === recorded.bytes && recorded.sha256 === expected) {
      return {
        name,
        path: this.repo.filePath(entry.file),
        sha256: recorded.sha256,
        bytes: recorded.bytes,
        alreadyInstalled: true,
        publishedDigest: entry.sha256 !== undefined,
      };
    }

    const url = `${this.baseUrl}/${entry.file}`;
    const got = await this.repo.download(url, entry.file, {
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (expected !== undefined && got.sha256 !== expected) {
      await this.repo.discardPartial(entry.file);
      throw new AppError(
        'model_download_failed',
        `${entry.file} failed its integrity check: SHA-256 ${got.sha256}, expected ${expected}. ` +
          'The download was deleted; run the command again (if it keeps failing, the source is serving a different file).',
      );
    }
    const file = await this.repo.installPartial(entry.file);
    await this.repo.recordInstalled(name, {
      file: entry.file,
      sha256: got.sha256,
      bytes: got.bytes,
      source: url,
      installedAt: this.clock.now().toISOString(),
    });
    return {
      name,
      path: file,
      sha256: got.sha256,
      bytes: got.bytes,
      alreadyInstalled: false,
      publishedDigest: entry.sha256 !== undefined,
    };
  }

  async list(): Promise<ModelListing[]> {
    const manifest = await this.repo.readManifest();
    const rows: ModelListing[] = [];
    for (const [name, entry] of Object.entries(this.catalog)) {
      const bytes = await this.repo.sizeOf(entry.file);
      const recorded = manifest[name];
      rows.push({
        name,
        file: entry.file,
        approxMiB: entry.approxMiB,
        installed: bytes !== undefined,
        bytes,
        verified:
          bytes !== undefined &&
          recorded !== undefined &&
          recorded.bytes === bytes &&
          (entry.sha256 === undefined || recorded.sha256 === entry.sha256),
        partialBytes: await this.repo.partialSize(entry.file),
      });
    }
    // Files an operator put there by hand (usable through SOTTO_WHISPER_MODEL=<file>.bin).
    const known = new Set(Object.values(this.catalog).map((e) => e.file));
    for (const { file, bytes } of await this.repo.listFiles()) {
      if (known.has(file)) continue;
      rows.push({
        name: file,
        file,
        approxMiB: undefined,
        installed: true,
        bytes,
        verified: false,
        partialBytes: 0,
      });
    }
    return rows;
  }
}
