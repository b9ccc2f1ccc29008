import { describe, expect, it } from 'vitest';
import type { Word } from '../src/domain/transcript.js';
import {
  LiveProtocolError,
  LiveSession,
  type LiveSessionDeps,
  type LivePartial,
  type LiveSegment,
} from '../src/services/live/live-session.js';
import { sine16k } from './helpers/audio-files.js';
import { concatPcm } from '../src/audio/pcm-chunker.js';

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
  return concatPcm(parts);
}

function bytes(pcm: Int16Array): Buffer {
  return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
}

function session(limits: Partial<LiveSessionDeps['limits']> = {}) {
  const segments: LiveSegment[] = [];
  let lagging = 0;
  const s = new LiveSession({
    recordingId: 'rec',
    orgId: 'org',
    limits: { maxFrameBytes: 64_000, maxSeconds: 600, maxStreams: 2, maxBacklogSeconds: 60, ...limits },
    recognise: toneWords,
    events: {
      segment: async (seg) => void segments.push(seg),
      lagging: () => void lagging++,
      failed: (err) => {
        throw err;
      },
    },
  });
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

  describe('partial results', () => {
    /** A session recording every event in order; `gate` holds the engine while set. */
    function partialSession(partialSeconds: number) {
      const log: ((LivePartial & { type: 'partial' }) | (LiveSegment & { type: 'segment' }))[] = [];
      const calls: number[] = [];
      let gate: Promise<void> | undefined;
      const s = new LiveSession({
        recordingId: 'rec',
        orgId: 'org',
        limits: {
          maxFrameBytes: 64_000,
          maxSeconds: 600,
          maxStreams: 2,
          maxBacklogSeconds: 60,
          partialSeconds,
        },
        recognise: async (pcm, offset) => {
          calls.push(pcm.length / RATE);
          await gate;
          return toneWords(pcm, offset);
        },
        events: {
          segment: async (seg) => void log.push({ type: 'segment', ...seg }),
          partial: async (p) => void log.push({ type: 'partial', ...p }),
          lagging: () => undefined,
          failed: (err) => {
            throw err;
          },
        },
      });
      return {
        s,
        log,
        calls,
        hold: (p: Promise<void> | undefined) => {
          gate = p;
        },
      };
    }

    /** Frames of 100 ms, letting the engine's promises settle between frames (as on a socket). */
    async function play(s: LiveSession, stream: ReturnType<LiveSession['attach']>, pcm: Int16Array) {
      for (let i = 0; i < pcm.length; i += 1600) {
        s.frame(stream, bytes(pcm.subarray(i, i + 1600)));
        await new Promise((r) => setImmediate(r));
      }
    }

    it('an open utterance gets a partial every partialSeconds, under its final id, never after the final', async () => {
      const { s, log } = partialSession(3);
      const stream = s.attach('Ann', undefined);
      await play(
        s,
        stream,
        speech(['gap', 'tone', 'tone', 'tone', 'tone', 'tone', 'tone', 'tone', 'gap', 'gap']),
      );
      await s.finish();
      const final = log.at(-1)!;
      expect(final.type).toBe('segment');
      expect(log.map((e) => e.type)).toEqual(['partial', 'partial', 'segment']);
      expect(new Set(log.map((e) => e.id))).toEqual(new Set([final.id]));
      // Words so far: the first partial ends about 3 s into the utterance, the second about 6 s.
      expect(log[0]!.end - log[0]!.start).toBeCloseTo(3, 0);
      expect(log[1]!.end - log[1]!.start).toBeCloseTo(6, 0);
      expect(Object.keys(log[0]!).sort()).toEqual(['end', 'id', 'speaker', 'start', 'text', 'type']);
    });

    it('finals first: while the engine works on a final, no partial is started or queued', async () => {
      const { s, log, calls, hold } = partialSession(1.5);
      const stream = s.attach('Ann', undefined);
      let release!: () => void;
      hold(new Promise<void>((r) => (release = r)));
      // A short utterance closes (its final holds the engine), then a long one is spoken.
      await play(s, stream, speech(['gap', 'tone', 'gap', 'tone', 'tone', 'tone', 'tone']));
      expect(calls).toHaveLength(1);
      hold(undefined);
      release();
      await s.finish();
      expect(log.filter((e) => e.type === 'partial')).toEqual([]);
      expect(log.map((e) => e.type)).toEqual(['segment', 'segment']);
    });

    it('partialSeconds 0: none', async () => {
      const { s, log } = partialSession(0);
      const stream = s.attach('Ann', undefined);
      await play(s, stream, speech(['gap', 'tone', 'tone', 'tone', 'tone', 'tone', 'gap']));
      await s.finish();
      expect(log.map((e) => e.type)).toEqual(['segment']);
    });
  });
});
