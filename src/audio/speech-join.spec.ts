import { describe, expect, it } from 'vitest';
import { channelWordTime, joinSpeech } from './speech-join.js';

const RATE = 100; // samples per second: small numbers, same arithmetic
/** A channel whose sample i holds i (plus the channel's offset), so copies can be traced. */
const ramp = (n: number, base: number) => Int16Array.from({ length: n }, (_, i) => base + i);

describe('joinSpeech', () => {
  const left = ramp(1000, 0);
  const right = ramp(1000, 10_000);
  const joined = joinSpeech(
    [left, right],
    [
      [
        { start: 1, end: 2 },
        { start: 2.1, end: 3 }, // its padding overlaps the first's: one run
        { start: 6, end: 7 },
      ],
      [{ start: 4, end: 5 }],
    ],
    { sampleRate: RATE, padSamples: 10, gapSamples: 50 },
  );

  it('keeps each channel’s padded speech, merged where pads overlap, channels apart by the gap', () => {
    expect(joined.runs).toEqual([
      { at: 0, channel: 0, from: 90, length: 220 },
      { at: 220, channel: 0, from: 590, length: 120 },
      { at: 390, channel: 1, from: 390, length: 120 },
    ]);
    expect(joined.pcm.length).toBe(510);
    expect(joined.pcm[0]).toBe(90);
    expect(joined.pcm[219]).toBe(309);
    expect(joined.pcm[220]).toBe(590);
    expect(Array.from(joined.pcm.subarray(340, 390))).toEqual(new Array(50).fill(0));
    expect(joined.pcm[390]).toBe(10_390);
  });

  it('places every region in the joined time', () => {
    expect(joined.regions).toEqual([
      { start: 0.1, end: 1.1 },
      { start: 1.2, end: 2.1 },
      { start: 2.3, end: 3.3 },
      { start: 4, end: 5 },
    ]);
  });

  it('maps a word back to its channel and time, never across a cut', () => {
    expect(channelWordTime(joined, 0.5, 0.8, RATE)).toEqual({ channel: 0, start: 1.4, end: 1.7 });
    // Starts in the first run and ends past it: kept to the first run's end.
    expect(channelWordTime(joined, 2.1, 2.4, RATE)).toEqual({ channel: 0, start: 3, end: 3.1 });
    // Starts exactly on a join: the run that begins there.
    expect(channelWordTime(joined, 2.2, 2.4, RATE)).toEqual({ channel: 0, start: 5.9, end: 6.1 });
    expect(channelWordTime(joined, 4.2, 4.5, RATE)).toEqual({ channel: 1, start: 4.2, end: 4.5 });
    // In the silent gap: the run before it, held at its end.
    expect(channelWordTime(joined, 3.5, 3.7, RATE)).toEqual({ channel: 0, start: 7.1, end: 7.1 });
  });

  it('clips pads at the channel’s ends and skips empty regions', () => {
    const j = joinSpeech(
      [ramp(100, 0)],
      [
        [
          { start: 0, end: 0.5 },
          { start: 0.7, end: 0.7 },
          { start: 0.9, end: 2 },
        ],
      ],
      {
        sampleRate: RATE,
        padSamples: 10,
        gapSamples: 50,
      },
    );
    expect(j.runs).toEqual([
      { at: 0, channel: 0, from: 0, length: 60 },
      { at: 60, channel: 0, from: 80, length: 20 },
    ]);
    expect(j.regions).toEqual([
      { start: 0, end: 0.5 },
      { start: 0.7, end: 0.8 },
    ]);
  });

  it('joins nothing when no channel speaks', () => {
    const j = joinSpeech([ramp(100, 0), ramp(100, 0)], [[], []], {
      sampleRate: RATE,
      padSamples: 10,
      gapSamples: 50,
    });
    expect(j.pcm.length).toBe(0);
    expect(channelWordTime(j, 1, 2, RATE)).toEqual({ channel: 0, start: 1, end: 2 });
  });
});
