import type { Word } from '../../domain/transcript.js';
import {
  SAMPLE_RATE,
  type RecognizerSession,
  type SessionOptions,
  type SpeechStream,
  type TranscribeOptions,
} from './engine.js';

/**
 * The streaming session interface for engines that only recognise whole stretches of audio
 * (whisper.cpp: its encoder always looks at a whole 30 s window, so there is no incremental
 * decoder to feed). An utterance collects its audio; its final is one call over all of it.
 *
 * Partials: each is a full call over the utterance so far, so they are taken only as fast as
 * the engine finishes them. `partial()` answers at once with the newest finished hypothesis and,
 * when none is running and at least `partialStepSeconds` of new audio arrived, starts the next.
 * A slow model thus shows text less often instead of falling behind, and never more than one
 * partial per utterance is in flight. The final waits for that one (the engine's model serves one
 * call at a time) rather than aborting it: aborting whisper means restarting its helper.
 */
export interface WholeUtteranceEngine {
  transcribe(pcm: Int16Array, opts?: TranscribeOptions): Promise<Word[]>;
}

export class WholeUtteranceSession implements RecognizerSession {
  readonly adapts = false;
  constructor(
    private readonly engine: WholeUtteranceEngine,
    readonly opts: SessionOptions,
    private readonly partialStepSeconds = 1,
  ) {}

  utterance(offsetSeconds: number): SpeechStream {
    return new WholeUtterance(this.engine, this.opts, offsetSeconds, this.partialStepSeconds);
  }
}

class WholeUtterance implements SpeechStream {
  private parts: Int16Array[] = [];
  private samples = 0;
  private ended = false;
  private latest = '';
  private partialAt = 0;
  private running: Promise<void> | undefined;
  /** Ends a partial in flight when the utterance is dropped (not when it is finalised). */
  private readonly aborter = new AbortController();

  constructor(
    private readonly engine: WholeUtteranceEngine,
    private readonly opts: SessionOptions,
    private readonly offsetSeconds: number,
    private readonly partialStepSeconds: number,
  ) {
    opts.signal?.addEventListener('abort', () => this.abort(), { once: true });
  }

  feed(pcm: Int16Array): void {
    if (this.ended || pcm.length === 0) return;
    this.parts.push(pcm.slice()); // the caller may reuse its buffer
    this.samples += pcm.length;
  }

  partial(): Promise<string> {
    if (this.ended) return Promise.resolve('');
    const fresh = this.samples - this.partialAt >= this.partialStepSeconds * SAMPLE_RATE;
    if (!this.running && fresh) {
      this.partialAt = this.samples;
      this.running = this.engine
        .transcribe(this.audio(), this.callOptions(this.aborter.signal))
        .then((words) => {
          if (!this.ended) this.latest = words.map((w) => w.w).join(' ');
        })
        // A failed partial only means no new text; the final reports real failures.
        .catch(() => undefined)
        .finally(() => (this.running = undefined));
    }
    return Promise.resolve(this.latest);
  }

  async final(): Promise<Word[]> {
    if (this.ended) throw new Error('the utterance has ended');
    await this.running;
    this.ended = true;
    const audio = this.audio();
    this.parts = [];
    if (audio.length === 0) return [];
    return this.engine.transcribe(audio, {
      ...this.callOptions(this.opts.signal),
      offsetSeconds: this.offsetSeconds,
    });
  }

  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.parts = [];
    this.aborter.abort();
  }

  private audio(): Int16Array {
    if (this.parts.length === 1) return this.parts[0]!;
    const out = new Int16Array(this.samples);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    this.parts = [out];
    return out;
  }

  private callOptions(signal: AbortSignal | undefined): TranscribeOptions {
    const { priority, group, language } = this.opts;
    return {
      priority,
      ...(group ? { group } : {}),
      ...(language ? { language } : {}),
      ...(signal ? { signal } : {}),
    };
  }
}
