import type { Word } from '../../domain/transcript.js';
import type { DecoderPool, Lease } from './decoder-pool.js';
import {
  SAMPLE_RATE,
  abortError,
  finishWords,
  type RecognizerSession,
  type SessionOptions,
  type SpeechStream,
} from './engine.js';
import type { SphinxHost } from './sphinx-host.js';

// Fillers from the noise dictionary (<s>, </s>, <sil>, [NOISE]) and ++GARBAGE++ markers; alternate
// pronunciations come as word(2). The same rules as parsing pocketsphinx_continuous's output.
const FILLER = /^(<.*>|\[.*\]|\+\+.*\+\+)$/;
const ALTERNATE = /\(\d+\)$/;

/** The word a token stands for, or undefined for a filler. */
function cleanToken(token: string): string | undefined {
  if (FILLER.test(token)) return undefined;
  return token.replace(ALTERNATE, '') || undefined;
}

export function cleanWords(words: readonly Word[]): Word[] {
  const out: Word[] = [];
  for (const word of words) {
    const w = cleanToken(word.w);
    if (w) out.push({ ...word, w });
  }
  return out;
}

/**
 * A pocketsphinx session: each utterance borrows a warm decoder from the pool for as long as it
 * is open, and gives the voice's cepstral mean back with its words, so the next utterance of the
 * same voice starts adapted on whichever decoder it gets.
 */
export class SphinxSession implements RecognizerSession {
  readonly adapts = true;
  /** The voice's cepstral mean after its last utterance (undefined: the model's default). */
  cmn: Float32Array | undefined;
  /**
   * Settles when the session's latest utterance has ended. The next one starts after it, so it
   * starts from the adaptation that utterance left (in real time it has long ended; a caller
   * feeding faster than real time would otherwise start from a stale mean).
   */
  previous: Promise<void> = Promise.resolve();

  constructor(
    readonly pool: DecoderPool<SphinxHost>,
    readonly opts: SessionOptions,
    /** Counts the audio handed to decoders (the engine's recognised-seconds counter). */
    readonly onFed: (samples: number) => void = () => undefined,
  ) {
    if (opts.resume?.engine === 'sphinx') this.cmn = opts.resume.data;
  }

  utterance(offsetSeconds: number): SpeechStream {
    return new SphinxUtterance(this, offsetSeconds);
  }
}

class SphinxUtterance implements SpeechStream {
  private lease: Lease<SphinxHost> | undefined;
  private readonly leasing: Promise<Lease<SphinxHost>>;
  private buffered: Int16Array[] = [];
  private samples = 0;
  private ended = false;
  private settle: () => void = () => undefined;

  constructor(
    private readonly session: SphinxSession,
    private readonly offsetSeconds: number,
  ) {
    const { priority, group, signal } = session.opts;
    const previous = session.previous;
    session.previous = new Promise<void>((resolve) => (this.settle = resolve));
    this.leasing = previous
      .then(() => {
        if (this.ended) throw new Error('utterance ended before it started');
        return session.pool.acquire({ priority, ...(group ? { group } : {}), ...(signal ? { signal } : {}) });
      })
      .then(async (lease) => {
        if (this.ended) {
          lease.release();
          throw new Error('utterance ended before a decoder was free');
        }
        try {
          await lease.decoder.begin(session.cmn);
        } catch (err) {
          lease.release(true);
          throw err;
        }
        // Aborted while `begin` was answered: abort() could not reach this lease yet.
        if (this.ended) {
          lease.release(true);
          throw new Error('utterance aborted');
        }
        for (const part of this.buffered) lease.decoder.feed(part);
        this.buffered = [];
        this.lease = lease;
        return lease;
      });
    this.leasing.catch(() => undefined); // observed by final(); an aborted one is nobody's concern
    signal?.addEventListener('abort', () => this.abort(), { once: true });
  }

  feed(pcm: Int16Array): void {
    if (this.ended || pcm.length === 0) return;
    this.samples += pcm.length;
    this.session.onFed(pcm.length);
    if (this.lease) this.lease.decoder.feed(pcm);
    else this.buffered.push(pcm.slice()); // the caller may reuse its buffer
  }

  async partial(): Promise<string> {
    if (this.ended || !this.lease) return '';
    const tokens = await this.lease.decoder.partial();
    return tokens.flatMap((t) => cleanToken(t) ?? []).join(' ');
  }

  async final(): Promise<Word[]> {
    const { signal } = this.session.opts;
    if (signal?.aborted) throw abortError(signal);
    const lease = await this.leasing.catch((err: unknown) => {
      this.ended = true;
      this.settle();
      throw signal?.aborted ? abortError(signal) : err;
    });
    try {
      const { words, cmn } = await lease.decoder.final();
      this.session.cmn = cmn;
      lease.release();
      return finishWords(cleanWords(words), this.samples / SAMPLE_RATE, this.offsetSeconds);
    } catch (err) {
      lease.release(true);
      if (signal?.aborted) throw abortError(signal);
      throw err;
    } finally {
      this.ended = true;
      this.settle();
    }
  }

  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.settle();
    this.buffered = [];
    // Mid-utterance work would delay the decoder's next user: end it and let the pool make another.
    if (this.lease) {
      this.lease.decoder.kill('aborted');
      this.lease.release(true);
    }
  }
}
