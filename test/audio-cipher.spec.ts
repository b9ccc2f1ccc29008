import { randomBytes, randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  AudioIntegrityError,
  CHUNK_OVERHEAD,
  HEADER_BYTES,
  coveringSpan,
  createOpenStream,
  createSealStream,
  makeHeader,
  parseHeader,
  sealedSize,
} from '../src/crypto/chunked-cipher.js';
import { decideRange } from '../src/domain/byte-range.js';

/**
 * The chunked audio cipher on its own: round trips at the sizes where chunking goes wrong,
 * random ranges equal slices of the plaintext while only the covering chunks are read, and every
 * kind of tampering (flip, swap, truncate, append, move to another recording) fails loudly.
 */
const CHUNK = 4096; // small chunks: many boundaries with little data

async function collect(stream: Readable | NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _enc, done) {
        parts.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(parts);
}

/** Feeds `data` in awkward piece sizes (1 byte, odd sizes) to exercise the buffering. */
function pieces(data: Buffer, size = 1013): Readable {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return Readable.from(out);
}

async function seal(key: Buffer, id: string, plain: Buffer, chunk = CHUNK): Promise<Buffer> {
  return collect(pieces(plain).pipe(createSealStream(key, id, makeHeader(plain.length, chunk))));
}

async function open(key: Buffer, id: string, sealed: Buffer, range?: { start: number; end: number }) {
  const header = parseHeader(sealed);
  const r = range ?? { start: 0, end: Math.max(0, header.plainSize - 1) };
  const span = coveringSpan(header, r.start, r.end);
  const covering = sealed.subarray(span.fileStart, span.fileEnd + 1);
  return collect(pieces(covering, 777).pipe(createOpenStream(key, id, header, range)));
}

describe('chunked AES-256-GCM audio cipher', () => {
  const key = randomBytes(32);
  const id = randomUUID();

  it.each([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * 1024 * 1024 + 17])(
    'round-trips %i bytes with the exact sealed size',
    async (size) => {
      const plain = randomBytes(size);
      const sealed = await seal(key, id, plain);
      expect(sealed.length).toBe(sealedSize(size, CHUNK));
      expect(sealed.length).toBe(HEADER_BYTES + Math.max(1, Math.ceil(size / CHUNK)) * CHUNK_OVERHEAD + size);
      expect((await open(key, id, sealed)).equals(plain)).toBe(true);
    },
  );

  it('round-trips several MB with the default 64 KiB chunks', async () => {
    const plain = randomBytes(5 * 1024 * 1024 + 3);
    const header = makeHeader(plain.length);
    const sealed = await collect(pieces(plain, 65_536).pipe(createSealStream(key, id, header)));
    expect(header.chunkSize).toBe(65_536);
    expect((await open(key, id, sealed)).equals(plain)).toBe(true);
  });

  it('decrypts random ranges equal to the slice, reading only the covering chunks', async () => {
    const plain = randomBytes(10 * CHUNK + 123);
    const sealed = await seal(key, id, plain);
    const header = parseHeader(sealed);
    const ranges = [
      { start: 0, end: 0 },
      { start: CHUNK - 1, end: CHUNK },
      { start: CHUNK, end: 2 * CHUNK - 1 },
      { start: plain.length - 1, end: plain.length - 1 },
      { start: 5, end: plain.length - 1 },
    ];
    for (let i = 0; i < 40; i++) {
      const a = Math.floor(Math.random() * plain.length);
      const b = a + Math.floor(Math.random() * (plain.length - a));
      ranges.push({ start: a, end: b });
    }
    for (const r of ranges) {
      const got = await open(key, id, sealed, r);
      expect(got.equals(plain.subarray(r.start, r.end + 1)), `${r.start}-${r.end}`).toBe(true);
      const span = coveringSpan(header, r.start, r.end);
      const chunks = Math.floor(r.end / CHUNK) - Math.floor(r.start / CHUNK) + 1;
      // Only the chunks holding the range are read (the last one may be short).
      expect(span.fileEnd - span.fileStart + 1).toBeLessThanOrEqual(chunks * (CHUNK + CHUNK_OVERHEAD));
      expect(span.fileEnd - span.fileStart + 1).toBeGreaterThan((chunks - 1) * (CHUNK + CHUNK_OVERHEAD));
    }
  });

  it('fails when the stream is shorter or longer than the announced size', async () => {
    await expect(
      collect(pieces(randomBytes(10)).pipe(createSealStream(key, id, makeHeader(11, CHUNK)))),
    ).rejects.toThrow(AudioIntegrityError);
    await expect(
      collect(pieces(randomBytes(12)).pipe(createSealStream(key, id, makeHeader(11, CHUNK)))),
    ).rejects.toThrow(AudioIntegrityError);
  });

  describe('tampering fails loudly', () => {
    const plain = randomBytes(4 * CHUNK + 100); // chunks 0..4, the last one short
    const stride = CHUNK + CHUNK_OVERHEAD;
    const at = (i: number) => HEADER_BYTES + i * stride;
    let sealed: Buffer;
    const fails = async (blob: Buffer, recordingId = id, k = key) => {
      let header;
      try {
        header = parseHeader(blob);
      } catch (err) {
        expect(err).toBeInstanceOf(AudioIntegrityError);
        return;
      }
      // What the service does before streaming: the blob must have exactly the sealed size.
      const sizeOk = blob.length === sealedSize(header.plainSize, header.chunkSize);
      // And even without that check, decrypting everything must fail.
      const all = collect(
        Readable.from([blob.subarray(HEADER_BYTES)]).pipe(
          createOpenStream(k, recordingId, header, undefined),
        ),
      );
      await expect(all).rejects.toThrow(AudioIntegrityError);
      return sizeOk;
    };

    it('seals', async () => {
      sealed = await seal(key, id, plain);
      expect((await open(key, id, sealed)).equals(plain)).toBe(true);
    });

    it.each([0, 1, 2, 3, 4])('a flipped byte in chunk %i', async (i) => {
      for (const offset of i === 4 ? [0, 12, 50, 100 + CHUNK_OVERHEAD - 1] : [0, 12, 500, stride - 1]) {
        const bad = Buffer.from(sealed);
        bad[at(i) + offset]! ^= 0x01;
        await fails(bad);
        // The range reader fails too, when the range touches the chunk.
        const start = i * CHUNK;
        await expect(open(key, id, bad, { start, end: start })).rejects.toThrow(AudioIntegrityError);
      }
    });

    it('a flipped header byte (size, chunk size, file id)', async () => {
      for (const offset of [8, 11, 19, 20, 31]) {
        const bad = Buffer.from(sealed);
        bad[offset]! ^= 0x01;
        await fails(bad);
      }
    });

    it('two chunks swapped', async () => {
      const bad = Buffer.from(sealed);
      sealed.copy(bad, at(1), at(2), at(3));
      sealed.copy(bad, at(2), at(1), at(2));
      await fails(bad);
      await expect(open(key, id, bad, { start: CHUNK, end: CHUNK })).rejects.toThrow(AudioIntegrityError);
    });

    it('the last chunk cut off, or cut short', async () => {
      expect(await fails(sealed.subarray(0, at(4)))).toBe(false);
      expect(await fails(sealed.subarray(0, sealed.length - 1))).toBe(false);
    });

    it('a chunk appended (a copy of a full one)', async () => {
      const bad = Buffer.concat([sealed, sealed.subarray(at(1), at(2))]);
      expect(await fails(bad)).toBe(false);
    });

    it('the final chunk dropped and the header size rewritten to match', async () => {
      // A file of 4 full chunks + one: drop the short final chunk and claim a 4-chunk size —
      // the header no longer authenticates, and chunk 3 was not sealed as final.
      const bad = Buffer.from(sealed.subarray(0, at(4)));
      bad.writeBigUInt64BE(BigInt(4 * CHUNK), 12);
      expect(await fails(bad)).toBe(true);
    });

    it('a blob moved to another recording id (even with the same key)', async () => {
      await fails(sealed, randomUUID());
    });

    it('the wrong key', async () => {
      await fails(sealed, id, randomBytes(32));
    });

    it('a blob that is not ours', async () => {
      await fails(Buffer.from('RIFF....WAVEfmt not a sealed blob at all, just some bytes'));
    });
  });
});

describe('Range header decisions (RFC 9110 single ranges)', () => {
  const size = 1000;
  it.each([
    [undefined, { kind: 'full' }],
    ['bytes=0-99', { kind: 'partial', start: 0, end: 99 }],
    ['bytes=500-', { kind: 'partial', start: 500, end: 999 }],
    ['bytes=-100', { kind: 'partial', start: 900, end: 999 }],
    ['bytes=-5000', { kind: 'partial', start: 0, end: 999 }],
    ['bytes=990-5000', { kind: 'partial', start: 990, end: 999 }],
    ['BYTES = 1 - 2', { kind: 'partial', start: 1, end: 2 }],
    ['bytes=0-99999999999999999999999999', { kind: 'partial', start: 0, end: 999 }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=1000-2000', { kind: 'unsatisfiable' }],
    ['bytes=99999999999999999999999999-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=5-1', { kind: 'full' }],
    ['bytes=0-1,5-6', { kind: 'full' }],
    ['bytes=-', { kind: 'full' }],
    ['bytes=--5', { kind: 'full' }],
    ['bytes=-5-', { kind: 'full' }],
    ['bytes=1.5-2', { kind: 'full' }],
    ['bytes=0x10-', { kind: 'full' }],
    ['bytes=1e3-', { kind: 'full' }],
    ['items=0-1', { kind: 'full' }],
    ['garbage', { kind: 'full' }],
    ['', { kind: 'full' }],
    ['bytes=' + '9'.repeat(300) + '-', { kind: 'full' }],
  ])('%s', (header, expected) => {
    expect(decideRange(header, size)).toEqual(expected);
  });

  it('an empty representation satisfies no range', () => {
    expect(decideRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(decideRange('bytes=-1', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(decideRange(undefined, 0)).toEqual({ kind: 'full' });
  });
});
