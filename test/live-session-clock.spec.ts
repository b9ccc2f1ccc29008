import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { LIVE_SAMPLE_RATE, LiveSession } from '../src/services/live/live-session.js';

/**
 * A live session's times come from the clock it is given (issue 14, one clock): where a
 * participant who joins later starts on the recording's timeline, also after a restore from the
 * spool, and when the last frame arrived (LiveService's idle and resume timeouts read it). With a
 * ManualClock these are exact, not "about the time the test took".
 */
function session(clock: ManualClock) {
  return new LiveSession({
    recordingId: 'rec',
    orgId: 'org',
    limits: { maxFrameBytes: 64_000, maxSeconds: 600, maxStreams: 4, maxBacklogSeconds: 60 },
    recognise: async () => [],
    events: {
      segment: async () => undefined,
      lagging: () => undefined,
      failed: (err) => {
        throw err;
      },
    },
    clock,
  });
}

/** `seconds` of silence as 100 ms PCM16 frames. */
const silence = (seconds: number): Buffer[] =>
  Array.from({ length: seconds * 10 }, () => Buffer.alloc((LIVE_SAMPLE_RATE / 10) * 2));

describe('LiveSession on an injected clock', () => {
  it('places a later participant where the clock says, and stamps each frame with it', () => {
    const clock = new ManualClock(new Date('2026-05-01T09:00:00Z'));
    const s = session(clock);
    const ann = s.attach('Ann', undefined);
    expect(ann.offsetSamples).toBe(0);
    expect(s.lastFrameAt).toBe(clock.now().getTime());

    clock.advance(2500);
    const bob = s.attach('Bob', undefined);
    expect(bob.offsetSamples).toBe(2.5 * LIVE_SAMPLE_RATE);
    // No frame yet: the last one is still the start.
    expect(s.lastFrameAt).toBe(Date.parse('2026-05-01T09:00:00Z'));

    clock.advance(700);
    s.frame(ann, silence(1)[0]!);
    expect(s.lastFrameAt).toBe(Date.parse('2026-05-01T09:00:03.200Z'));
    s.dispose();
  });

  it('after a restore, a new participant joins where the restored audio ends plus the time since', () => {
    const clock = new ManualClock(new Date('2026-05-01T10:00:00Z'));
    const s = session(clock);
    s.restore({ label: 'Ann', offsetSamples: 0 }, 0, silence(3));
    clock.advance(1000);
    const cid = s.attach('Cid', undefined);
    expect(cid.offsetSamples).toBe(4 * LIVE_SAMPLE_RATE);
    s.dispose();
  });
});
