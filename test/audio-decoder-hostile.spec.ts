import { readFileSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeWav, wavHeader } from '../src/audio/wav.js';
import { checkDecoder, createAudioDecoder } from '../src/adapters/media/audio-decoder.adapter.js';
import { expectAppError, expectSameSamples, ffmpeg, sine16k, tempFiles } from './helpers/audio-files.js';
import { processesMentioning } from './helpers/pcm.js';

/**
 * The decoder against broken and hostile files: it must answer with the right typed error (415,
 * 422, 413, 503), quickly, without large allocations and without leaving ffmpeg running.
 */
const decoder = createAudioDecoder();
const { dir, tmp } = tempFiles('sotto-audio-hostile-');

describe('hostile and broken input', () => {
  it('refuses an empty file (422) and non-audio files (415), whatever their name', async () => {
    writeFileSync(tmp('empty.wav'), '');
    const empty = await expectAppError(decoder.decodeAll(tmp('empty.wav')), 'undecodable_audio', 422);
    expect(empty.message).toMatch(/empty/);
    const noise = Buffer.alloc(64 * 1024);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
    writeFileSync(tmp('noise.wav'), noise);
    const unsupported = await expectAppError(
      decoder.decodeAll(tmp('noise.wav')),
      'unsupported_media_type',
      415,
    );
    expect(unsupported.message).toMatch(/WAV, FLAC/);
    writeFileSync(tmp('notes.mp3'), 'Meeting notes\nNot audio at all.\n'.repeat(100));
    await expectAppError(decoder.decodeAll(tmp('notes.mp3')), 'unsupported_media_type', 415);
    writeFileSync(
      tmp('bad-header.wav'),
      Buffer.concat([wavHeader(16000, 1, 100)].map((h) => (h.writeUInt16LE(0, 22), h))),
    );
    await expectAppError(decoder.decodeAll(tmp('bad-header.wav')), 'undecodable_audio', 422);
  });

  it('decodes what a truncated WAV really holds and says it was truncated', async () => {
    const full = encodeWav(sine16k(300, 5), 16000);
    writeFileSync(tmp('truncated.wav'), full.subarray(0, 44 + 2 * 16000 * 2 + 1));
    const started = performance.now();
    const decoded = await decoder.decodeAll(tmp('truncated.wav'));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(decoded.info.truncated).toBe(true);
    expect(decoded.duration).toBe(2);
    expectSameSamples(decoded.mono, sine16k(300, 5).subarray(0, 32000));
    // The same for a FLAC cut short: what is there is decoded, and the cut is reported.
    writeFileSync(tmp('whole.wav'), full);
    ffmpeg('-i', tmp('whole.wav'), tmp('whole.flac'));
    const flac = readFileSync(tmp('whole.flac'));
    writeFileSync(tmp('cut.flac'), flac.subarray(0, Math.floor(flac.length * 0.7)));
    const cut = await decoder.decodeAll(tmp('cut.flac'));
    expect(cut.info.truncated).toBe(true);
    expect(cut.duration).toBeGreaterThan(2.5);
    expect(cut.duration).toBeLessThan(4.5);
    expectSameSamples(cut.mono.subarray(0, 32000), sine16k(300, 5).subarray(0, 32000));
    expect((await decoder.decodeAll(tmp('whole.flac'))).info.truncated).toBe(false);
  });

  it('does not allocate ten hours for a header claiming ten hours in a tiny file', async () => {
    const header = wavHeader(16000, 1, 10 * 3600 * 16000); // 1.15 GB declared
    writeFileSync(tmp('ten-hours.wav'), Buffer.concat([header, Buffer.from(sine16k(300, 1).buffer)]));
    const started = performance.now();
    const decoded = await decoder.decodeAll(tmp('ten-hours.wav'));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(decoded).toMatchObject({ duration: 1, info: { duration: 1, truncated: true } });
    expect(decoded.mono.buffer.byteLength).toBeLessThan(1024 * 1024);
  });

  it('refuses recordings over the configured length (413) before decoding them', async () => {
    writeFileSync(tmp('three.wav'), encodeWav(sine16k(300, 3), 16000));
    const short = createAudioDecoder({ maxAudioSeconds: 2 });
    await expectAppError(short.decodeAll(tmp('three.wav')), 'payload_too_large', 413);
    ffmpeg('-i', tmp('three.wav'), tmp('three.flac'));
    await expectAppError(short.decodeAll(tmp('three.flac')), 'payload_too_large', 413);
  });

  describe('corrupt FLAC', () => {
    beforeAll(() =>
      ffmpeg('-f', 'lavfi', '-i', 'anoisesrc=d=5:r=16000:a=0.3:seed=7', '-c:a', 'flac', tmp('good.flac')),
    );

    it('refuses a FLAC whose frames are all garbage, or mostly garbage (422)', async () => {
      const good = readFileSync(tmp('good.flac'));
      const garble = (from: number): Buffer => {
        const bytes = Buffer.from(good);
        for (let i = from; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
        return bytes;
      };
      // Past the metadata and padding blocks: nothing decodes.
      writeFileSync(tmp('garbage-frames.flac'), garble(400));
      const none = await expectAppError(
        decoder.decodeAll(tmp('garbage-frames.flac')),
        'undecodable_audio',
        422,
      );
      expect(none.details).toEqual({ reason: 'decode_failed' });
      // The first 30% decodes, then ffmpeg reports errors and skips the rest: refused as damaged.
      writeFileSync(tmp('damaged.flac'), garble(Math.floor(good.length * 0.3)));
      const damaged = await expectAppError(decoder.decodeAll(tmp('damaged.flac')), 'undecodable_audio', 422);
      expect(damaged.details).toEqual({ reason: 'damaged' });
    });

    it('refuses a FLAC whose stream header is garbage (422, unreadable)', async () => {
      const bytes = readFileSync(tmp('good.flac'));
      for (let i = 4; i < 60; i++) bytes[i] = (i * 2654435761) >>> 24;
      writeFileSync(tmp('garbage-header.flac'), bytes);
      const err = await expectAppError(
        decoder.decodeAll(tmp('garbage-header.flac')),
        'undecodable_audio',
        422,
      );
      expect(err.details).toEqual({ reason: 'unreadable' });
      // The user-facing message never carries ffmpeg's output or the server's paths.
      expect(err.message).not.toContain(dir);
    });
  });

  describe('ffmpeg processes', () => {
    beforeAll(() =>
      ffmpeg('-f', 'lavfi', '-i', 'anoisesrc=d=600:r=16000:a=0.2:seed=7', '-c:a', 'flac', tmp('long.flac')),
    );

    it('an AbortSignal kills the decode and leaves no ffmpeg behind', async () => {
      const controller = new AbortController();
      const stream = await decoder.open(tmp('long.flac'), { signal: controller.signal, chunkSamples: 16000 });
      const iterator = stream[Symbol.asyncIterator]();
      expect((await iterator.next()).done).toBe(false);
      expect(processesMentioning(tmp('long.flac')).length).toBeGreaterThan(0);
      // Aborted while the consumer is not even reading: the process goes at once.
      controller.abort();
      await expect.poll(() => processesMentioning(tmp('long.flac')), { timeout: 5000 }).toEqual([]);
      const next = await iterator.next().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((next as Error).name).toBe('AbortError');
    });

    it('a consumer that stops early, or a decode over its time budget, leaves no ffmpeg behind', async () => {
      let chunks = 0;
      for await (const _chunk of await decoder.open(tmp('long.flac'), { chunkSamples: 16000 })) {
        if (++chunks === 3) break;
      }
      expect(processesMentioning(tmp('long.flac'))).toEqual([]);
      const hasty = createAudioDecoder({ maxDecodeMs: 1 });
      const err = await expectAppError(hasty.decodeAll(tmp('long.flac')), 'undecodable_audio', 422);
      expect(err.details).toEqual({ reason: 'timeout' });
      expect(processesMentioning(tmp('long.flac'))).toEqual([]);
    });
  });

  it('without ffmpeg: WAV still decodes, other formats fail with decoder_unavailable (503)', async () => {
    const offline = createAudioDecoder({
      ffmpegPath: '/nonexistent/ffmpeg',
      ffprobePath: '/nonexistent/ffprobe',
    });
    writeFileSync(tmp('plain.wav'), encodeWav(sine16k(300, 1), 16000));
    expect((await offline.decodeAll(tmp('plain.wav'))).duration).toBe(1);
    ffmpeg('-i', tmp('plain.wav'), tmp('plain.flac'));
    const err = await expectAppError(offline.decodeAll(tmp('plain.flac')), 'decoder_unavailable', 503);
    expect(err.message).toMatch(/ffmpeg/);
    const missing = await checkDecoder({
      ffmpegPath: '/nonexistent/ffmpeg',
      ffprobePath: '/nonexistent/ffprobe',
    });
    expect(missing).toMatchObject({ available: false, ffmpeg: undefined });
    expect(missing.message).toMatch(/not found/);
    const present = await checkDecoder();
    expect(present).toMatchObject({ available: true, ffmpeg: expect.stringMatching(/\d/) });
  });
});
