import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * The record format of a live spool (docs/live.md): an append-only file per participant stream,
 * written while audio streams in, so a crash leaves at worst a torn last record.
 *
 *   record i (0, 1, 2 …)
 *     bytes 0-3   body length, uint32 big-endian (nonce + ciphertext + tag)
 *     bytes 4-7   first sequence number of the record's frames, uint32 big-endian
 *     body        12-byte random nonce | AES-256-GCM ciphertext | 16-byte tag
 *
 *   AAD = "sotto/live-spool/v1|" | recording id | "|" | stream hash | first seq (u32) | i (u32)
 *
 * Record 0 is the stream's metadata (label, timeline offset), encrypted like audio. Every later
 * record is a batch of frames plus the live-recognition progress at the time it was written. The
 * index in the AAD makes dropped, swapped or replayed records fail; the recording id and stream
 * hash make a spool copied elsewhere fail; the first seq (checked against the frames before it as
 * well) makes frames impossible to shift. The stream hash is an HMAC of the label under the
 * spool's key: a person's name never appears on disk, and cannot be guessed from a dictionary.
 */
export const RECORD_PREFIX_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const RECORD_OVERHEAD = RECORD_PREFIX_BYTES + NONCE_BYTES + TAG_BYTES;
/** Larger length prefixes are corruption (a batch is ~32 KiB plus at most one frame). */
export const MAX_RECORD_BODY = 4 * 1024 * 1024;

export class SpoolIntegrityError extends Error {
  override name = 'SpoolIntegrityError';
}

export interface FrameBatch {
  /** Samples of this stream whose live segments were published before this record was written. */
  publishedTo: number;
  /** The recording's last published segment number at that time. */
  segmentSeq: number;
  frames: Buffer[];
}

export interface StreamMeta {
  label: string;
  offsetSamples: number;
  /** Creation order within the recording (channel order of the final WAV). */
  n?: number;
}

export function newSpoolKey(): Buffer {
  return randomBytes(32);
}

/** The file name of a stream's spool: an HMAC of the label, never the label itself. */
export function streamHash(key: Buffer, label: string): string {
  return createHmac('sha256', key).update(`sotto/live-stream|${label}`).digest('hex').slice(0, 32);
}

/**
 * Where a speaker's latest live partial is kept beside the bus (a Redis hash field): an HMAC of
 * the label under the same key, in its own domain, so it is neither the name nor the file name.
 */
export function partialSlot(key: Buffer, label: string): string {
  return createHmac('sha256', key).update(`sotto/live-partial-slot|${label}`).digest('hex').slice(0, 32);
}

function aad(recordingId: string, hash: string, firstSeq: number, index: number): Buffer {
  const tail = Buffer.alloc(8);
  tail.writeUInt32BE(firstSeq, 0);
  tail.writeUInt32BE(index, 4);
  return Buffer.concat([Buffer.from(`sotto/live-spool/v1|${recordingId}|${hash}`, 'latin1'), tail]);
}

export interface SpoolContext {
  key: Buffer;
  recordingId: string;
  hash: string;
}

export function sealRecord(ctx: SpoolContext, index: number, firstSeq: number, plain: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', ctx.key, nonce);
  cipher.setAAD(aad(ctx.recordingId, ctx.hash, firstSeq, index));
  const body = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  const prefix = Buffer.alloc(RECORD_PREFIX_BYTES);
  prefix.writeUInt32BE(body.length, 0);
  prefix.writeUInt32BE(firstSeq, 4);
  return Buffer.concat([prefix, body]);
}

/** The plaintext of one record body, or undefined when it fails authentication. */
function openBody(ctx: SpoolContext, index: number, firstSeq: number, body: Buffer): Buffer | undefined {
  if (body.length < NONCE_BYTES + TAG_BYTES) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', ctx.key, body.subarray(0, NONCE_BYTES));
  decipher.setAAD(aad(ctx.recordingId, ctx.hash, firstSeq, index));
  decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    return undefined;
  }
}

export function encodeMeta(meta: StreamMeta): Buffer {
  return Buffer.concat([Buffer.from([0]), Buffer.from(JSON.stringify(meta), 'utf8')]);
}

export function encodeBatch(batch: FrameBatch): Buffer {
  const head = Buffer.alloc(1 + 4 + 4 + 4);
  head.writeUInt8(1, 0);
  head.writeUInt32BE(batch.publishedTo, 1);
  head.writeUInt32BE(batch.segmentSeq, 5);
  head.writeUInt32BE(batch.frames.length, 9);
  const parts: Buffer[] = [head];
  for (const f of batch.frames) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(f.length, 0);
    parts.push(len, f);
  }
  return Buffer.concat(parts);
}

function decodeMeta(plain: Buffer): StreamMeta {
  if (plain[0] !== 0) throw new SpoolIntegrityError('spool record 0 is not stream metadata');
  const meta = JSON.parse(plain.subarray(1).toString('utf8')) as StreamMeta;
  if (typeof meta.label !== 'string' || !Number.isSafeInteger(meta.offsetSamples))
    throw new SpoolIntegrityError('bad spool metadata');
  return meta;
}

function decodeBatch(plain: Buffer): FrameBatch {
  if (plain[0] !== 1 || plain.length < 13) throw new SpoolIntegrityError('bad spool record');
  const count = plain.readUInt32BE(9);
  const frames: Buffer[] = [];
  let at = 13;
  for (let i = 0; i < count; i++) {
    if (at + 4 > plain.length) throw new SpoolIntegrityError('bad spool record');
    const len = plain.readUInt32BE(at);
    at += 4;
    if (at + len > plain.length) throw new SpoolIntegrityError('bad spool record');
    frames.push(plain.subarray(at, at + len));
    at += len;
  }
  if (at !== plain.length) throw new SpoolIntegrityError('bad spool record');
  return { publishedTo: plain.readUInt32BE(1), segmentSeq: plain.readUInt32BE(5), frames };
}

export interface OpenedSpool {
  /** Undefined only when even record 0 was torn (a crash as the stream began: no frame acked). */
  meta: StreamMeta | undefined;
  batches: FrameBatch[];
  /** Number of records that authenticated (the index of the next one to append). */
  records: number;
  /** Frames in those records (the stream's next expected sequence number). */
  frames: number;
  /** Bytes of the file that are good; anything beyond is a torn tail to cut off. */
  goodBytes: number;
}

/**
 * Opens a whole spool file. A record that is cut short or fails authentication AT THE END of the
 * file is the crash point (a write torn by a crash or power loss): it and anything after it are
 * dropped. One that fails anywhere before the last record means the file was altered: refused.
 */
export function openSpool(ctx: SpoolContext, file: Buffer): OpenedSpool {
  let at = 0;
  let index = 0;
  let frames = 0;
  let meta: StreamMeta | undefined;
  const batches: FrameBatch[] = [];
  while (at < file.length) {
    if (at + RECORD_PREFIX_BYTES > file.length) break; // torn prefix: the tail
    const len = file.readUInt32BE(at);
    const firstSeq = file.readUInt32BE(at + 4);
    const end = at + RECORD_PREFIX_BYTES + len;
    if (len > MAX_RECORD_BODY) throw new SpoolIntegrityError(`spool record ${index} has a corrupt length`);
    if (end > file.length) break; // torn body: the tail
    const plain = openBody(ctx, index, firstSeq, file.subarray(at + RECORD_PREFIX_BYTES, end));
    if (!plain) {
      if (end === file.length) break; // the last record: the crash point
      throw new SpoolIntegrityError(`spool record ${index} failed authentication`);
    }
    if (index === 0) meta = decodeMeta(plain);
    else {
      if (firstSeq !== frames) throw new SpoolIntegrityError(`spool record ${index} is out of sequence`);
      const batch = decodeBatch(plain);
      batches.push(batch);
      frames += batch.frames.length;
    }
    index++;
    at = end;
  }
  return { meta, batches, records: index, frames, goodBytes: at };
}
