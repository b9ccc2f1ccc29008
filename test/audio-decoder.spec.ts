import { readFileSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { sniffAudio } from '../src/audio/sniff.js';
import { encodeWav, readWav } from '../src/audio/wav.js';
import { createAudioDecoder, type DecodedAudio } from '../src/adapters/media/audio-decoder.adapter.js';
import {
  correlation,
  crossingRate,
  expectSameSamples,
  ffmpeg,
  rms,
  sine16k,
  tempFiles,
} from './helpers/audio-files.js';
import { corpusEntry, corpusFile, corpusIds, hasCorpus, noCorpusReason } from './helpers/corpus.js';

/**
 * The decoder against real files and the distribution's ffmpeg: every corpus format and formats
 * generated here with ffmpeg. No stubs: when this passes, uploads decode. Hostile input is in
 * audio-decoder-hostile.spec.ts.
 */
const decoder = createAudioDecoder();
const { tmp } = tempFiles('sotto-audio-');

describe.skipIf(!hasCorpus)(`corpus decoding${hasCorpus ? '' : ` — skipped: ${noCorpusReason}`}`, () => {
  for (const id of corpusIds()) {
    describe(id, () => {
      const entry = hasCorpus ? corpusEntry(id) : undefined;
      let wav: DecodedAudio;
      beforeAll(async () => {
        wav = await decoder.decodeAll(corpusFile(id, 'wav'));
      });

      it('sniffs every format of the conversation', () => {
        const head = (ext: Parameters<typeof corpusFile>[1]) =>
          readFileSync(corpusFile(id, ext)).subarray(0, 4096);
        expect(sniffAudio(head('wav'))).toMatchObject({ container: 'wav', codec: 'pcm' });
        expect(sniffAudio(head('stereo.wav'))).toMatchObject({ container: 'wav', codec: 'pcm' });
        expect(sniffAudio(head('flac'))).toMatchObject({ container: 'flac', codec: 'flac' });
        expect(sniffAudio(head('ogg'))).toMatchObject({
          container: 'ogg',
          codec: expect.stringMatching(/^(vorbis|opus)$/),
        });
      });

      it('decodes the WAV natively, sample for sample, at the expected duration', () => {
        expect(wav.info).toMatchObject({ container: 'wav', native: true, channels: 1, truncated: false });
        expect(Math.abs(wav.duration - entry!.duration)).toBeLessThanOrEqual(0.02);
        expect(wav.channels).toBeUndefined();
        expectSameSamples(wav.mono, readWav(readFileSync(corpusFile(id, 'wav'))).channels[0]);
      });

      it('decodes the FLAC through ffmpeg bit-exactly', async () => {
        const flac = await decoder.decodeAll(corpusFile(id, 'flac'));
        expect(flac.info).toMatchObject({ container: 'flac', codec: 'flac', native: false });
        expect(Math.abs(flac.duration - entry!.duration)).toBeLessThanOrEqual(0.02);
        expectSameSamples(flac.mono, wav.mono);
      });

      it('decodes the Ogg (lossy) to the same duration and closely the same signal', async () => {
        const ogg = await decoder.decodeAll(corpusFile(id, 'ogg'));
        expect(ogg.info.container).toBe('ogg');
        expect(Math.abs(ogg.duration - entry!.duration)).toBeLessThanOrEqual(0.02);
        expect(correlation(ogg.mono, wav.mono)).toBeGreaterThan(0.95);
      });

      it('decodes the stereo WAV into one channel per speaker', async () => {
        const stereo = await decoder.decodeAll(corpusFile(id, 'stereo.wav'));
        expect(stereo.info.channels).toBe(2);
        expect(Math.abs(stereo.duration - entry!.duration)).toBeLessThanOrEqual(0.02);
        const [left, right] = stereo.channels!;
        expect(left!.length).toBe(stereo.mono.length);
        for (const turn of entry!.turns) {
          const [own, other] = turn.speaker === entry!.speakers[0] ? [left!, right!] : [right!, left!];
          const ownEnergy = rms(own, turn.start, turn.end);
          expect(ownEnergy, `${turn.speaker} ${turn.start}s`).toBeGreaterThan(300);
          expect(rms(other, turn.start, turn.end), `${turn.speaker} ${turn.start}s`).toBeLessThan(
            ownEnergy / 20,
          );
        }
        // The mono mix is the mean of the channels.
        for (let i = 0; i < stereo.mono.length; i += 997) {
          expect(Math.abs(stereo.mono[i]! - (left![i]! + right![i]!) / 2)).toBeLessThanOrEqual(0.5);
        }
      });
    });
  }

  it('reads float, 24-bit, RF64 and 48 kHz WAV natively (no ffmpeg needed)', async () => {
    const id = corpusIds()[0]!;
    const source = corpusFile(id, 'wav');
    const reference = (await decoder.decodeAll(source)).mono;
    const variants: [string, string[]][] = [
      ['f32.wav', ['-c:a', 'pcm_f32le']],
      ['s24.wav', ['-c:a', 'pcm_s24le']],
      ['rf64.wav', ['-c:a', 'pcm_s16le', '-rf64', 'always']],
    ];
    const offline = createAudioDecoder({
      ffmpegPath: '/nonexistent/ffmpeg',
      ffprobePath: '/nonexistent/ffprobe',
    });
    for (const [name, args] of variants) {
      ffmpeg('-i', source, ...args, tmp(name));
      const decoded = await offline.decodeAll(tmp(name));
      expect([name, decoded.info.native]).toEqual([name, true]);
      expectSameSamples(decoded.mono, reference);
    }
    // Up to 48 kHz in float by ffmpeg, back down by our resampler: the speech survives intact.
    ffmpeg('-i', source, '-ar', '48000', '-c:a', 'pcm_f32le', tmp('48k.wav'));
    const down = await offline.decodeAll(tmp('48k.wav'));
    expect(Math.abs(down.mono.length - reference.length)).toBeLessThanOrEqual(1);
    expect(correlation(down.mono, reference)).toBeGreaterThan(0.995);
  });
});

describe('generated formats', () => {
  beforeAll(() => {
    const tone = ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=3:sample_rate=44100'];
    ffmpeg(...tone, '-c:a', 'libmp3lame', '-b:a', '64k', tmp('tone.mp3'));
    ffmpeg(
      ...tone,
      '-c:a',
      'libmp3lame',
      '-b:a',
      '64k',
      '-write_xing',
      '0',
      '-id3v2_version',
      '0',
      tmp('bare.mp3'),
    );
    ffmpeg(...tone, '-c:a', 'aac', '-b:a', '64k', tmp('tone.m4a'));
    ffmpeg(...tone, '-c:a', 'aac', '-b:a', '64k', '-f', 'adts', tmp('tone.aac'));
    ffmpeg(...tone, '-c:a', 'libopus', '-b:a', '32k', tmp('tone.webm'));
    ffmpeg(...tone, '-c:a', 'libopus', '-b:a', '32k', tmp('tone.opus.ogg'));
    ffmpeg(...tone, '-c:a', 'flac', tmp('tone.mka'));
  });

  // Opus always runs at 48 kHz.
  const cases = [
    ['tone.mp3', 'mp3', 'audio/mpeg', 44100],
    ['bare.mp3', 'mp3', 'audio/mpeg', 44100],
    ['tone.m4a', 'mp4', 'audio/mp4', 44100],
    ['tone.aac', 'aac', 'audio/aac', 44100],
    ['tone.webm', 'webm', 'audio/webm', 48000],
    ['tone.opus.ogg', 'ogg', 'audio/ogg', 48000],
    ['tone.mka', 'matroska', 'audio/x-matroska', 44100],
  ] as const;

  for (const [name, container, mime, sampleRate] of cases) {
    it(`sniffs and decodes ${name} (a 440 Hz tone)`, async () => {
      expect(sniffAudio(readFileSync(tmp(name)).subarray(0, 4096))).toMatchObject({ container, mime });
      const decoded = await decoder.decodeAll(tmp(name));
      expect(decoded.info).toMatchObject({ container, native: false, channels: 1, sampleRate });
      // Encoders pad a frame or two; the duration stays within 0.1 s.
      expect(Math.abs(decoded.duration - 3)).toBeLessThan(0.1);
      expect(crossingRate(decoded.mono.subarray(1600, -1600)) / 2).toBeCloseTo(440, -1);
    });
  }

  it('looks past a large ID3 tag (cover art) to find FLAC behind it', async () => {
    const size = 100_000;
    const tag = Buffer.alloc(10 + size);
    tag.write('ID3\x04', 0, 'latin1');
    tag.set([(size >> 21) & 0x7f, (size >> 14) & 0x7f, (size >> 7) & 0x7f, size & 0x7f], 6);
    tag.write('PRIV', 10, 'latin1');
    tag.writeUInt32BE(size - 10, 14);
    ffmpeg('-f', 'lavfi', '-i', 'sine=f=440:d=2:sample_rate=16000', tmp('untagged.flac'));
    writeFileSync(tmp('tagged.flac'), Buffer.concat([tag, readFileSync(tmp('untagged.flac'))]));
    const decoded = await decoder.decodeAll(tmp('tagged.flac'));
    expect(decoded.info).toMatchObject({ container: 'flac', codec: 'flac' });
    expectSameSamples(decoded.mono, (await decoder.decodeAll(tmp('untagged.flac'))).mono);
  });

  it('reads a 44.1 kHz 24-bit stereo WAV natively, matching ffmpeg on the same audio as FLAC', async () => {
    const src = ['-f', 'lavfi', '-i', 'aevalsrc=0.4*sin(2*PI*440*t)|0.4*sin(2*PI*1000*t):s=44100:d=2'];
    ffmpeg(...src, '-c:a', 'pcm_s24le', tmp('two.wav'));
    ffmpeg(...src, '-c:a', 'flac', '-sample_fmt', 's32', tmp('two.flac'));
    const native = await decoder.decodeAll(tmp('two.wav'));
    const viaFfmpeg = await decoder.decodeAll(tmp('two.flac'));
    expect(native.info).toMatchObject({ native: true, codec: 's24', channels: 2, sampleRate: 44100 });
    expect(native.duration).toBe(2);
    expect(Math.abs(viaFfmpeg.mono.length - native.mono.length)).toBeLessThanOrEqual(1);
    for (const c of [0, 1])
      expect(correlation(native.channels![c]!, viaFfmpeg.channels![c]!)).toBeGreaterThan(0.999);
    expect(crossingRate(native.channels![0]!) / 2).toBeCloseTo(440, -1);
    expect(crossingRate(native.channels![1]!) / 2).toBeCloseTo(1000, -1);
  });

  it('decodes six-channel WAVE_FORMAT_EXTENSIBLE and an 8 kHz µ-law WAV (through ffmpeg)', async () => {
    ffmpeg(
      '-f',
      'lavfi',
      '-i',
      'sine=f=300:d=1',
      '-af',
      'pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0',
      tmp('six.wav'),
    );
    const six = await decoder.decodeAll(tmp('six.wav'));
    expect(six.info).toMatchObject({ native: true, channels: 6 });
    expect(six.channels).toHaveLength(6);
    expectSameSamples(six.channels![5], six.channels![0]);
    ffmpeg('-f', 'lavfi', '-i', 'sine=f=300:d=1', '-ar', '8000', '-c:a', 'pcm_mulaw', tmp('mulaw.wav'));
    const mulaw = await decoder.decodeAll(tmp('mulaw.wav'));
    expect(mulaw.info).toMatchObject({ container: 'wav', native: false, codec: 'pcm_mulaw' });
    expect(Math.abs(mulaw.duration - 1)).toBeLessThan(0.01);
  });

  it('streams fixed-size chunks with offsets and per-channel PCM', async () => {
    writeFileSync(tmp('stereo3.wav'), encodeWav([sine16k(200, 3), sine16k(500, 3)], 16000));
    const stream = await decoder.open(tmp('stereo3.wav'), { chunkSamples: 7000 });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((c) => [c.offset, c.mono.length, c.channels?.length])).toEqual([
      [0, 7000, 2],
      [7000, 7000, 2],
      [14000, 7000, 2],
      [21000, 7000, 2],
      [28000, 7000, 2],
      [35000, 7000, 2],
      [42000, 6000, 2],
    ]);
    expect(chunks[6]!.channels![1]).toEqual(sine16k(500, 3).subarray(42000));
    const monoOnly = await decoder.decodeAll(tmp('stereo3.wav'), { perChannel: false });
    expect(monoOnly.channels).toBeUndefined();
  });
});
