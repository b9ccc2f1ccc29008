import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Streaming, chunked AES-256-GCM for audio at rest. One GCM message per fixed-size plaintext
 * chunk, so a file of any size is sealed and opened in constant memory, and a byte range is
 * served by opening only the chunks that cover it (range-capable playback).
 *
 *   header (32 bytes, authenticated as AAD of every chunk)
 *     bytes 0-7    magic "SOTTOAU\x01" (format version 1)
 *     bytes 8-11   plaintext chunk size, uint32 big-endian
 *     bytes 12-19  plaintext size, uint64 big-endian
 *     bytes 20-31  random file id (makes every file's AAD unique, even for one recording)
 *   chunk i (0 … n-1; n = max(1, ceil(size / chunkSize)))
 *     12-byte random nonce | ciphertext (chunkSize bytes, the last one 0 … chunkSize) | 16-byte tag
 *
 * AAD of chunk i = "sotto/audio/v1|" | header | recording id | i (uint64) | final flag (1 byte).
 * Hence: a flipped byte fails that chunk; swapped or moved chunks fail (index); a dropped last
 * chunk fails (the new last one was not sealed as final, and the size no longer matches); an
 * appended chunk fails (size, final flag); a blob copied under another recording fails (id in
 * the AAD — and a different content key anyway). A per-file random content key means nonces
 * never repeat under one key in practice even without counters.
 */
export const MAGIC = Buffer.from('SOTTOAU\x01', 'latin1');
export const HEADER_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const CHUNK_OVERHEAD = NONCE_BYTES + TAG_BYTES;
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
const MAX_CHUNK_SIZE = 16 * 1024 * 1024;

export class AudioIntegrityError extends Error {
  override name = 'AudioIntegrityError';
}

export interface ChunkedHeader {
  chunkSize: number;
  plainSize: number;
  fileId: Buffer;
  /** The raw 32 header bytes (part of every chunk's AAD). */
  raw: Buffer;
}

export function makeHeader(plainSize: number, chunkSize = DEFAULT_CHUNK_SIZE): ChunkedHeader {
  if (!Number.isSafeInteger(plainSize) || plainSize < 0) throw new RangeError('bad plaintext size');
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE)
    throw new RangeError('bad chunk size');
  const raw = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(raw, 0);
  raw.writeUInt32BE(chunkSize, 8);
  raw.writeBigUInt64BE(BigInt(plainSize), 12);
  const fileId = randomBytes(12);
  fileId.copy(raw, 20);
  return { chunkSize, plainSize, fileId, raw };
}

export function parseHeader(buf: Buffer): ChunkedHeader {
  if (buf.length < HEADER_BYTES || !buf.subarray(0, 8).equals(MAGIC))
    throw new AudioIntegrityError('not a Sotto audio blob');
  const chunkSize = buf.readUInt32BE(8);
  const size = buf.readBigUInt64BE(12);
  if (chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE || size > BigInt(Number.MAX_SAFE_INTEGER))
    throw new AudioIntegrityError('corrupt audio header');
  const raw = Buffer.from(buf.subarray(0, HEADER_BYTES));
  return { chunkSize, plainSize: Number(size), fileId: raw.subarray(20, 32), raw };
}

export function chunkCount(plainSize: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(plainSize / chunkSize));
}

/** Exact size of the sealed file: anything else is truncation or extension. */
export function sealedSize(plainSize: number, chunkSize: number): number {
  return HEADER_BYTES + chunkCount(plainSize, chunkSize) * CHUNK_OVERHEAD + plainSize;
}

function chunkAad(header: ChunkedHeader, recordingId: string, index: number, final: boolean): Buffer {
  const tail = Buffer.alloc(9);
  tail.writeBigUInt64BE(BigInt(index), 0);
  tail.writeUInt8(final ? 1 : 0, 8);
  return Buffer.concat([
    Buffer.from('sotto/audio/v1|', 'latin1'),
    header.raw,
    Buffer.from(recordingId, 'utf8'),
    tail,
  ]);
}

function checkKey(key: Buffer): void {
  if (key.length !== 32) throw new Error('AES-256 needs a 32-byte key');
}

/**
 * Encrypting transform: plaintext in (exactly `header.plainSize` bytes), sealed file out
 * (header first). A stream that is shorter or longer than announced fails — the header and the
 * final flag depend on the size, so it must be known up front (it always is: we seal files).
 */
export function createSealStream(key: Buffer, recordingId: string, header: ChunkedHeader): Transform {
  checkKey(key);
  const { chunkSize, plainSize } = header;
  const last = chunkCount(plainSize, chunkSize) - 1;
  let index = 0;
  let seen = 0;
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  const sealChunk = (plain: Buffer): Buffer => {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(chunkAad(header, recordingId, index, index === last));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    index++;
    return Buffer.concat([nonce, body, cipher.getAuthTag()]);
  };
  let headerSent = false;
  return new Transform({
    transform(data: Buffer, _enc, done: TransformCallback) {
      seen += data.length;
      if (seen > plainSize) return done(new AudioIntegrityError('more plaintext than announced'));
      if (!headerSent) {
        this.push(header.raw);
        headerSent = true;
      }
      pending.push(data);
      pendingBytes += data.length;
      // Emit full chunks; hold back the rest until more arrives or the stream ends.
      while (pendingBytes >= chunkSize && index < last) {
        const all = Buffer.concat(pending);
        this.push(sealChunk(all.subarray(0, chunkSize)));
        pending.length = 0;
        const rest = all.subarray(chunkSize);
        if (rest.length > 0) pending.push(rest);
        pendingBytes = rest.length;
      }
      done();
    },
    flush(done: TransformCallback) {
      if (seen !== plainSize) return done(new AudioIntegrityError('less plaintext than announced'));
      if (!headerSent) this.push(header.raw);
      this.push(sealChunk(Buffer.concat(pending)));
      done();
    },
  });
}

/** Where in the sealed file the chunks covering plaintext bytes [start, end] (inclusive) live. */
export function coveringSpan(
  header: ChunkedHeader,
  start: number,
  end: number,
): { firstChunk: number; fileStart: number; fileEnd: number } {
  const { chunkSize, plainSize } = header;
  if (plainSize === 0)
    return { firstChunk: 0, fileStart: HEADER_BYTES, fileEnd: HEADER_BYTES + CHUNK_OVERHEAD - 1 };
  if (!(start >= 0 && start <= end && end < plainSize)) throw new RangeError('range outside the plaintext');
  const firstChunk = Math.floor(start / chunkSize);
  const lastChunk = Math.floor(end / chunkSize);
  const stride = chunkSize + CHUNK_OVERHEAD;
  const fileStart = HEADER_BYTES + firstChunk * stride;
  const fileEnd = Math.min(HEADER_BYTES + (lastChunk + 1) * stride, sealedSize(plainSize, chunkSize)) - 1;
  return { firstChunk, fileStart, fileEnd };
}

/**
 * Decrypting transform for plaintext bytes [start, end] (inclusive; ignored for an empty file):
 * fed exactly the sealed bytes `coveringSpan` names, it opens chunk by chunk and emits only the
 * asked-for slice. Any authentication failure, or input that ends early, errors the stream —
 * callers never see unauthenticated bytes (each chunk is verified before any of it is emitted).
 */
export function createOpenStream(
  key: Buffer,
  recordingId: string,
  header: ChunkedHeader,
  range?: { start: number; end: number },
  /** Lets the caller turn integrity failures into its own error type (the HTTP layer's code). */
  mapError: (err: Error) => Error = (err) => err,
): Transform {
  checkKey(key);
  const { chunkSize, plainSize } = header;
  const start = range?.start ?? 0;
  const end = range?.end ?? plainSize - 1;
  const span = coveringSpan(header, start, Math.max(start, end));
  const last = chunkCount(plainSize, chunkSize) - 1;
  const stride = chunkSize + CHUNK_OVERHEAD;
  let index = span.firstChunk;
  let buffered: Buffer = Buffer.alloc(0);
  let remaining = span.fileEnd - span.fileStart + 1;
  const openChunk = (sealed: Buffer): Buffer => {
    if (sealed.length < CHUNK_OVERHEAD) throw new AudioIntegrityError('truncated audio chunk');
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES));
    decipher.setAAD(chunkAad(header, recordingId, index, index === last));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([
        decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new AudioIntegrityError(`audio chunk ${index} failed authentication`);
    }
    const chunkStart = index * chunkSize;
    index++;
    if (plainSize === 0) return Buffer.alloc(0);
    const from = Math.max(0, start - chunkStart);
    const to = Math.min(plain.length, end - chunkStart + 1);
    return from < to ? plain.subarray(from, to) : Buffer.alloc(0);
  };
  return new Transform({
    transform(data: Buffer, _enc, done: TransformCallback) {
      remaining -= data.length;
      if (remaining < 0)
        return done(mapError(new AudioIntegrityError('audio blob longer than its header says')));
      buffered = buffered.length === 0 ? data : Buffer.concat([buffered, data]);
      try {
        // Every chunk but the file's last is exactly `stride` bytes.
        while (buffered.length >= stride && index < last) {
          const out = openChunk(buffered.subarray(0, stride));
          buffered = buffered.subarray(stride);
          if (out.length > 0) this.push(out);
        }
      } catch (err) {
        return done(mapError(err as Error));
      }
      done();
    },
    flush(done: TransformCallback) {
      try {
        if (remaining !== 0) throw new AudioIntegrityError('audio blob shorter than its header says');
        if (buffered.length > 0) {
          if (index !== last) throw new AudioIntegrityError('audio blob ends mid-chunk');
          const out = openChunk(buffered);
          if (out.length > 0) this.push(out);
        }
      } catch (err) {
        return done(mapError(err as Error));
      }
      done();
    },
  });
}
