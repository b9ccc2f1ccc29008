import { describe, expect, it } from 'vitest';
import type { Word } from '../src/domain/transcript.js';
import { LiveProtocolError, LiveSession, type LiveSegment } from '../src/services/live-session.js';
import { sine16k } from './helpers/audio-files.js';

/**
 * LiveSession on synthetic audio (tone bursts between silences) with a stand-in engine that
 * reports one word per burst it hears, so utterance cutting, time offsets, the lead-in drop,
 * the backlog bound and the audio assembly are checked exactly. The real engine runs in
 * live-recordings.spec.ts.
 */
const RATE = 16_000;

/** One word per run of loud 10 ms blocks, with times shifted like a real engine's. */
async function toneWords(pcm: Int16Array, offsetSeconds: number): Promise<Word[]> {
  const words: Word[] = [];
  let start = -1;
  const block = RATE / 100;
  for (let b = 0; b * block <= pcm.length; b++) {
    const slice = pcm.subarray(b * block, (b + 1) * block);
    const loud = slice.length > 0 && slice.some((x) => Math.abs(x) > 1000);
    if (loud && start < 0) start = b;
    if (!loud && start >= 0) {
      words.push({
        w: `tone${words.length}`,
        start: offsetSeconds + start / 100,
        end: offsetSeconds + b / 100,
        conf: 1,
      });
      start = -1;
    }
  }
  return words;
}

function speech(pattern: ('tone' | 'gap')[], seconds = 1): Int16Array {
  const parts = pattern.map((p) => (p === 'tone' ? sine16k(220, seconds) : new Int16Array(seconds * RATE)));
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

function bytes(pcm: Int16Array): Buffer {
  return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
}

function session(limits: Partial<ConstructorParameters<typeof LiveSession>[2]> = {}) {
  const segments: LiveSegment[] = [];
  let lagging = 0;
  const s = new LiveSession(
    'rec',
    'org',
    { maxFrameBytes: 64_000, maxSeconds: 600, maxStreams: 2, maxBacklogSeconds: 60, ...limits },
    toneWords,
    {
      segment: async (seg) => void segments.push(seg),
      lagging: () => void lagging++,
      failed: (err) => {
        throw err;
      },
    },
  );
  return { s, segments, lagging: () => lagging };
}

describe('LiveSession', () => {
  it('cuts utterances with the VAD and publishes them with recording times, lead-in words dropped', async () => {
    const { s, segments } = session();
    const stream = s.attach('Ann', undefined);
    const pcm = speech(['gap', 'tone', 'gap', 'tone', 'gap']);
    for (let i = 0; i < pcm.length; i += 1600) s.frame(stream, bytes(pcm.subarray(i, i + 1600)));
    await s.finish();
    expect(segments.map((x) => [x.seq, x.speaker, x.text])).toEqual([
      [1, 'Ann', 'tone0'],
      // The second utterance's 2 s lead-in holds the first tone: its word is not repeated.
      [2, 'Ann', 'tone1'],
    ]);
    expect(segments[0]!.start).toBeCloseTo(1, 1);
    expect(segments[0]!.end).toBeCloseTo(2, 1);
    expect(segments[1]!.start).toBeCloseTo(3, 1);
    expect(segments[1]!.end).toBeCloseTo(4, 1);
    expect(s.audio()).toHaveLength(1);
    expect(s.audio()[0]).toEqual(pcm);
  });

  it('acks the highest contiguous frame; resent frames change nothing; gaps and oversize frames are refused', () => {
    const { s } = session({ maxFrameBytes: 3200 });
    const stream = s.attach(undefined, 0);
    expect(stream.label).toBe('Speaker 1');
    expect(s.frame(stream, Buffer.alloc(3200))).toBe(0);
    expect(s.frame(stream, Buffer.alloc(3200))).toBe(1);
    s.detach(stream);
    s.attach(undefined, 0);
    expect(s.frame(stream, Buffer.alloc(3200))).toBe(1);
    expect(s.frame(stream, Buffer.alloc(3200))).toBe(1);
    expect(s.frame(stream, Buffer.alloc(3200))).toBe(2);
    expect(s.audio()[0]).toHaveLength(3 * 1600);
    expect(() => s.frame(stream, Buffer.alloc(3202))).toThrow(LiveProtocolError);
    expect(() => s.frame(stream, Buffer.alloc(31))).toThrow(/even byte length/);
    s.detach(stream);
    expect(() => s.attach(undefined, 9)).toThrow(/sequence gap: expected 3/);
    expect(() => s.attach('Bo', undefined)).not.toThrow();
    expect(() => s.attach('Cy', undefined)).toThrow(/too many streams/);
  });

  it('aligns several participant streams as channels of one recording', async () => {
    const { s } = session();
    const a = s.attach('A', undefined);
    const b = s.attach('B', undefined);
    s.frame(a, bytes(sine16k(220, 1)));
    s.frame(b, bytes(sine16k(330, 0.5)));
    await s.finish();
    const channels = s.audio();
    expect(channels).toHaveLength(2);
    expect(channels[0]!.length).toBe(channels[1]!.length);
    expect(channels[0]!.length).toBeGreaterThanOrEqual(RATE);
  });

  it('bounds the recognition backlog: old utterances are skipped, not queued forever', async () => {
    const { s, segments, lagging } = session({ maxBacklogSeconds: 1.5, maxFrameBytes: 1_000_000 });
    const stream = s.attach('Ann', undefined);
    // Five utterances arrive at once (a burst from a fast client).
    s.frame(
      stream,
      bytes(speech(['tone', 'gap', 'tone', 'gap', 'tone', 'gap', 'tone', 'gap', 'tone', 'gap'])),
    );
    await s.finish();
    expect(lagging()).toBeGreaterThan(0);
    expect(segments.length).toBeLessThan(5);
    expect(segments.length).toBeGreaterThan(0);
  });
});
