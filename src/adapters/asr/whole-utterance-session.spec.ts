import { describe, expect, it } from 'vitest';
import type { Word } from '../../domain/transcript.js';
import { SAMPLE_RATE, type TranscribeOptions } from './engine.js';
import { WholeUtteranceSession } from './whole-utterance-session.js';

/**
 * The scheduling of partials and finals for whole-utterance engines, with a plain object in the
 * engine's place whose calls the test settles by hand (the real whisper engine behind this
 * interface: test/asr-whisper-tiny.spec.ts).
 */
interface Call {
  samples: number;
  /** The first sample as the engine saw it. */
  first: number | undefined;
  opts: TranscribeOptions;
  settle: (words: Word[]) => void;
}
function engine() {
  const calls: Call[] = [];
  return {
    calls,
    transcribe(pcm: Int16Array, opts: TranscribeOptions = {}) {
      return new Promise<Word[]>((resolve) =>
        calls.push({ samples: pcm.length, first: pcm[0], opts, settle: resolve }),
      );
    },
  };
}
const second = () => new Int16Array(SAMPLE_RATE);
const word = (w: string, start = 0): Word => ({ w, start, end: start + 0.2, conf: 1 });
const tick = () => new Promise((r) => setImmediate(r));

describe('WholeUtteranceSession', () => {
  it('takes partials no faster than the engine finishes them, and only after new audio', async () => {
    const e = engine();
    const u = new WholeUtteranceSession(e, { priority: 'live' }).utterance(0);
    expect(await u.partial()).toBe(''); // no audio: nothing started
    expect(e.calls).toHaveLength(0);
    u.feed(second());
    expect(await u.partial()).toBe(''); // answers at once; one call started
    u.feed(second());
    expect(await u.partial()).toBe(''); // that call is still running: no second one
    expect(e.calls).toHaveLength(1);
    expect(e.calls[0]!.samples).toBe(SAMPLE_RATE);
    expect(e.calls[0]!.opts.priority).toBe('live');
    e.calls[0]!.settle([word('hello')]);
    await tick();
    expect(await u.partial()).toBe('hello'); // and a new call over both seconds starts
    expect(e.calls).toHaveLength(2);
    expect(e.calls[1]!.samples).toBe(2 * SAMPLE_RATE);
    e.calls[1]!.settle([word('hello'), word('there')]);
    await tick();
    expect(await u.partial()).toBe('hello there'); // no new audio since: no new call
    expect(e.calls).toHaveLength(2);
  });

  it('the final waits for a partial in flight, then recognises everything with the offset', async () => {
    const e = engine();
    const u = new WholeUtteranceSession(e, { priority: 'batch', group: 'rec', language: 'en' }).utterance(
      12.5,
    );
    u.feed(second());
    await u.partial();
    u.feed(second());
    const final = u.final();
    await tick();
    expect(e.calls).toHaveLength(1); // still the partial's call
    e.calls[0]!.settle([word('early')]);
    await tick();
    expect(e.calls).toHaveLength(2);
    expect(e.calls[1]).toMatchObject({
      samples: 2 * SAMPLE_RATE,
      opts: { offsetSeconds: 12.5, priority: 'batch', group: 'rec', language: 'en' },
    });
    e.calls[1]!.settle([word('done', 12.6)]);
    expect(await final).toEqual([word('done', 12.6)]);
    expect(await u.partial()).toBe(''); // ended
    await expect(u.final()).rejects.toThrow(/ended/);
  });

  it('abort drops the audio and aborts a partial in flight; the session signal does too', async () => {
    const e = engine();
    const u = new WholeUtteranceSession(e, { priority: 'live' }).utterance(0);
    u.feed(second());
    await u.partial();
    u.abort();
    expect(e.calls[0]!.opts.signal?.aborted).toBe(true);
    u.feed(second());
    expect(await u.partial()).toBe('');
    expect(e.calls).toHaveLength(1);

    const session = new AbortController();
    const v = new WholeUtteranceSession(e, { priority: 'live', signal: session.signal }).utterance(0);
    v.feed(second());
    await v.partial();
    session.abort();
    expect(e.calls[1]!.opts.signal?.aborted).toBe(true);
  });

  it('an empty utterance is no call at all; a copy of the fed audio is kept', async () => {
    const e = engine();
    const u = new WholeUtteranceSession(e, { priority: 'live' }).utterance(0);
    expect(await u.final()).toEqual([]);
    expect(e.calls).toHaveLength(0);

    const v = new WholeUtteranceSession(e, { priority: 'live' }).utterance(0);
    const buffer = new Int16Array(SAMPLE_RATE).fill(7);
    v.feed(buffer);
    buffer.fill(0); // the caller reuses its buffer
    const final = v.final();
    await tick();
    expect(e.calls[0]).toMatchObject({ samples: SAMPLE_RATE, first: 7 });
    e.calls[0]!.settle([]);
    await final;
  });
});
