import { randomBytes } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import {
  AudioIntegrityError,
  HEADER_BYTES,
  coveringSpan,
  createOpenStream,
  createSealStream,
  makeHeader,
  parseHeader,
  sealedSize,
} from '../../crypto/chunked-cipher.js';
import { createScratchCipher } from '../../crypto/scratch-cipher.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { ExportFileStore } from '../../adapters/storage/export-file.adapter.js';
import { HashTap } from './org-export-builder.js';

/**
 * An export zip at rest: the chunked AES-256-GCM format of kept audio (src/crypto/chunked-cipher.ts)
 * under a random per-file content key. That format needs the plaintext size in its header, which
 * a streamed zip only knows at the end, so the zip first goes to a scratch file encrypted under a
 * throw-away in-memory key (AES-CTR), then is re-sealed; the plaintext's SHA-256 is checked on
 * both passes (the scratch file cannot be altered unnoticed). Plaintext never touches the disk.
 */
export interface SealedZip {
  size: number;
  sha256: string;
  /** The caller wraps it with the org's data key, then zeroes it. */
  contentKey: Buffer;
}

export async function sealZip(
  files: ExportFileStore,
  orgId: string,
  exportId: string,
  zip: Readable,
  /** Called once the zip is fully written (only the short re-seal remains). */
  onZipWritten: () => void,
): Promise<SealedZip> {
  const scratchCipher = createScratchCipher();
  const plain = new HashTap();
  const scratch = await files.writeScratch(orgId, exportId, zip, [plain, scratchCipher.encrypt()]);
  try {
    onZipWritten();
    const size = plain.bytes;
    const sha256 = plain.hex();
    const contentKey = randomBytes(32);
    const check = new HashTap();
    await files.write(orgId, exportId, files.readScratch(scratch), [
      scratchCipher.decrypt(),
      check,
      createSealStream(contentKey, exportId, makeHeader(size)),
    ]);
    if (check.hex() !== sha256) {
      contentKey.fill(0);
      throw new AppError('decryption_failed', 'export scratch file changed');
    }
    return { size, sha256, contentKey };
  } finally {
    scratchCipher.destroy();
    await files.removeScratch(scratch);
  }
}

/**
 * The decrypting stream of a sealed export, after checking the file against its record (header,
 * exact size). Integrity failures are `decryption_failed` (a 500 before the first byte, a cut
 * connection after it): a tampered export is never served. Zeroes `key` when done.
 */
export async function openSealed(
  files: ExportFileStore,
  row: { orgId: string; id: string; size: number },
  key: Buffer,
  logger: Pick<Logger, 'warn'>,
): Promise<Readable> {
  const integrity = (err: unknown): Error => {
    if (!(err instanceof AudioIntegrityError)) return err as Error;
    logger.warn({ exportId: row.id, code: 'decryption_failed' }, 'export integrity check failed');
    return new AppError('decryption_failed', undefined, undefined, { cause: err });
  };
  const head = await files.head(row.orgId, row.id, HEADER_BYTES);
  if (!head) {
    key.fill(0);
    logger.warn({ exportId: row.id }, 'export file missing');
    throw notFound('Export');
  }
  let header;
  try {
    header = parseHeader(head.bytes);
    if (header.plainSize !== row.size || head.size !== sealedSize(header.plainSize, header.chunkSize))
      throw new AudioIntegrityError('export file does not match its record');
  } catch (err) {
    key.fill(0);
    throw integrity(err);
  }
  const span = coveringSpan(header, 0, Math.max(0, row.size - 1));
  const source = files.readRange(row.orgId, row.id, span.fileStart, span.fileEnd);
  const open = createOpenStream(key, row.id, header, undefined, integrity);
  return pipeline(source, open, () => key.fill(0));
}
