import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  SpoolIntegrityError,
  encodeBatch,
  encodeMeta,
  newSpoolKey,
  openSpool,
  sealRecord,
  streamHash,
  type SpoolContext,
} from '../src/crypto/spool-cipher.js';
import { LiveSession, type LiveSegment } from '../src/services/live/live-session.js';

/**
 * The live spool's record format (src/crypto/spool-cipher.ts): what a crash leaves is dropped
 * cleanly at the tail; anything else that does not authenticate is refused.
 */
const frame = (n: number, fill: number) => Buffer.alloc(n, fill);

function spool(ctx: SpoolContext, batches: Buffer[][]): { file: Buffer; offsets: number[] } {
  const parts = [sealRecord(ctx, 0, 0, encodeMeta({ label: 'Ann Example', offsetSamples: 0, n: 0 }))];
  let seq = 0;
  batches.forEach((frames, i) => {
    parts.push(sealRecord(ctx, i + 1, seq, encodeBatch({ publishedTo: seq * 10, segmentSeq: i, frames })));
    seq += frames.length;
  });
  const offsets: number[] = [];
  let at = 0;
  for (const p of parts) {
    offsets.push(at);
    at += p.length;
  }
  return { file: Buffer.concat(parts), offsets };
}

describe('live spool records', () => {
  const key = newSpoolKey();
  const recordingId = randomUUID();
  const ctx: SpoolContext = { key, recordingId, hash: streamHash(key, 'Ann Example') };
  const batches = [[frame(3200, 1), frame(3200, 2)], [frame(3200, 3)], [frame(1600, 4), frame(3200, 5)]];

  it('reads back every frame in order; the stream hash depends on the key, never shows the label', () => {
    const { file } = spool(ctx, batches);
    const opened = openSpool(ctx, file);
    expect(opened.meta).toEqual({ label: 'Ann Example', offsetSamples: 0, n: 0 });
    expect(opened.frames).toBe(5);
    expect(opened.records).toBe(4);
    expect(opened.goodBytes).toBe(file.length);
    expect(opened.batches.flatMap((b) => b.frames)).toEqual(batches.flat());
    expect(opened.batches.at(-1)).toMatchObject({ publishedTo: 30, segmentSeq: 2 });
    expect(file.includes(Buffer.from('Ann Example'))).toBe(false);
    expect(file.includes(frame(64, 3))).toBe(false);
    expect(streamHash(newSpoolKey(), 'Ann Example')).not.toBe(ctx.hash);
  });

  it('a torn or unauthenticated LAST record is the crash point: dropped, the rest kept', () => {
    const { file, offsets } = spool(ctx, batches);
    const last = offsets.at(-1)!;
    for (const cut of [last + 3, last + 8, last + 40, file.length - 1]) {
      const opened = openSpool(ctx, file.subarray(0, cut));
      expect(opened.frames, `cut at ${cut}`).toBe(3);
      expect(opened.goodBytes).toBe(last);
    }
    const flipped = Buffer.from(file);
    flipped.writeUInt8(flipped.readUInt8(file.length - 5) ^ 1, file.length - 5);
    expect(openSpool(ctx, flipped).frames).toBe(3);
    // Torn inside record 0: nothing was ever acknowledged on this stream.
    expect(openSpool(ctx, file.subarray(0, 20)).meta).toBeUndefined();
  });

  it('refuses a record altered, dropped, swapped or replayed before the last one, and a foreign spool', () => {
    const { file, offsets } = spool(ctx, batches);
    const flipped = Buffer.from(file);
    flipped.writeUInt8(flipped.readUInt8(offsets[1]! + 30) ^ 1, offsets[1]! + 30);
    expect(() => openSpool(ctx, flipped)).toThrow(SpoolIntegrityError);
    const rec = (i: number) => file.subarray(offsets[i]!, offsets[i + 1] ?? file.length);
    const dropped = Buffer.concat([rec(0), rec(2), rec(3)]);
    expect(() => openSpool(ctx, dropped)).toThrow(/failed authentication/);
    const swapped = Buffer.concat([rec(0), rec(2), rec(1), rec(3)]);
    expect(() => openSpool(ctx, swapped)).toThrow(SpoolIntegrityError);
    const replayed = Buffer.concat([rec(0), rec(1), rec(1), rec(3)]);
    expect(() => openSpool(ctx, replayed)).toThrow(SpoolIntegrityError);
    const corruptLength = Buffer.from(file);
    corruptLength.writeUInt32BE(0xffffff00, offsets[1]!);
    expect(() => openSpool(ctx, corruptLength)).toThrow(/corrupt length/);
    expect(() => openSpool({ ...ctx, recordingId: randomUUID() }, file)).toThrow(SpoolIntegrityError);
    expect(() => openSpool({ ...ctx, hash: streamHash(key, 'Bob') }, file)).toThrow(SpoolIntegrityError);
  });
});

describe('live segment ids', () => {
  it('are stable: the same utterance recognised again after a restart keeps its id', async () => {
    const run = async () => {
      const out: LiveSegment[] = [];
      const s = new LiveSession({
        recordingId: 'rec-1',
        orgId: 'org-1',
        limits: {
          maxFrameBytes: 256_000,
          maxSeconds: 60,
          maxStreams: 2,
          maxBacklogSeconds: 60,
          keepSeconds: 3,
        },
        recognise: async (_pcm, offset) => [{ w: 'hello', start: offset + 2.1, end: offset + 2.4, conf: 1 }],
        events: {
          segment: async (seg) => void out.push(seg),
          lagging: () => undefined,
          failed: () => undefined,
        },
      });
      const stream = s.attach('Ann', 0);
      const pcm = new Int16Array(16_000 * 4);
      for (let i = 16_000; i < 32_000; i++) pcm[i] = Math.round(9000 * Math.sin(i / 5));
      s.frame(stream, Buffer.from(pcm.buffer));
      await s.finish();
      return out;
    };
    const [a, b] = [await run(), await run()];
    expect(a.length).toBeGreaterThan(0);
    expect(a.map((x) => x.id)).toEqual(b.map((x) => x.id));
    expect(a[0]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});
