import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  abortError,
  throwIfAborted,
  type AsrEngine,
  type RecognizerSession,
  type ScanOptions,
  type SessionOptions,
  type SpeechStream,
  type TranscribeOptions,
  type UtteranceBoundary,
} from '../../src/adapters/asr/engine.js';
import { concatPcm } from '../../src/audio/pcm-chunker.js';
import type { Word } from '../../src/domain/transcript.js';

/**
 * A replay of the real recognizer, for specs that need a transcript but do not test the engine.
 *
 * Every call the app makes (`transcribe`, `scan`, a session's utterances) is answered from what
 * the real pocketsphinx answered before for exactly the same input: the key is a hash of the
 * audio and of everything else the answer depends on (offset, language, the adaptation a piece
 * starts from, and the utterances a session heard before). A call with no recording goes to the
 * real engine, which is created with the app as usual but started only then, so a missing
 * recording makes a spec slower, never wrong. `SOTTO_TEST_REPLAY=record` appends such answers to
 * the recordings file (npm run test:record); `SOTTO_TEST_REPLAY=off` runs every spec on the real
 * engine. Specs of the engine itself, of accuracy, of partial-text timing and of the pool never
 * use this (they build the engine themselves or pass `engine: 'real'`).
 *
 * Partial text is the one answer that depends on timing (how much audio has arrived when the
 * app asks). A partial with no exact recording is answered with the recorded partial of the same
 * utterance heard at the longest prefix not longer than the audio so far (what the real decoder
 * said at that point), and only goes to the real engine when the utterance has none.
 */
export type ReplayMode = 'replay' | 'record' | 'off';

export const replayMode = (): ReplayMode => {
  // Only a spec run replays: a bench or script that borrows the test helpers measures the real
  // engine (a bench once timed replayed answers as if they were recognition).
  if (!process.env.VITEST) return 'off';
  const v = process.env.SOTTO_TEST_REPLAY;
  return v === 'record' || v === 'off' ? v : 'replay';
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const REPLAY_FILE = path.join(root, 'test', 'fixtures', 'replay', 'sphinx.jsonl');

type Entry =
  | { k: string; words: Word[] }
  | { k: string; boundaries: { sample: number; cmn: number[] }[] | null }
  | { k: string; partial: string; samples: number };

class ReplayStore {
  private readonly answers = new Map<string, Entry>();
  /** Partials by utterance (session state + offset): [samples heard, text], ascending. */
  private readonly partials = new Map<string, [number, string][]>();
  misses = 0;

  constructor(private readonly file: string) {
    if (!existsSync(file)) return;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line) this.remember(JSON.parse(line) as Entry);
    }
  }

  get(key: string): Entry | undefined {
    return this.answers.get(key);
  }

  /** The recorded partial heard at the longest prefix of at most `samples` samples. */
  partialAt(utteranceKey: string, samples: number): string | undefined {
    const list = this.partials.get(utteranceKey);
    let best: string | undefined;
    for (const [n, text] of list ?? []) if (n <= samples) best = text;
    return best;
  }

  record(entry: Entry): void {
    if (replayMode() !== 'record' || this.answers.has(entry.k)) return;
    this.remember(entry);
    mkdirSync(path.dirname(this.file), { recursive: true });
    appendFileSync(this.file, `${JSON.stringify(entry)}\n`);
  }

  private readonly told = new Set<string>();

  miss(kind: string): void {
    this.misses++;
    // Once per kind and process: a browser's microphone never sends the same audio twice, so its
    // utterances always miss, and the log would otherwise say so for each of them.
    if (replayMode() !== 'replay' || this.told.has(kind)) return;
    this.told.add(kind);
    process.stderr.write(
      `replay: no recording of this ${kind}; the real engine answers (npm run test:record)\n`,
    );
  }

  private remember(entry: Entry): void {
    this.answers.set(entry.k, entry);
    if ('partial' in entry) {
      const [utterance] = entry.k.split('/');
      const list = this.partials.get(utterance!) ?? [];
      list.push([entry.samples, entry.partial]);
      list.sort((a, b) => a[0] - b[0]);
      this.partials.set(utterance!, list);
    }
  }
}

let shared: ReplayStore | undefined;
const store = (): ReplayStore => (shared ??= new ReplayStore(REPLAY_FILE));

/** Calls that went to the real engine in this process (a spec can assert it replayed). */
export const replayMisses = (): number => store().misses;

function digest(...parts: (string | number | ArrayBufferView | undefined)[]): string {
  const h = createHash('sha256');
  for (const part of parts) {
    if (part === undefined) h.update('\0u');
    else if (typeof part === 'string' || typeof part === 'number')
      h.update(`\0s${String(part).length}:${part}`);
    else {
      h.update(`\0b${part.byteLength}:`);
      h.update(new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
    }
  }
  return h.digest('base64url').slice(0, 32);
}

// Only English is replayed: other languages go to the real engine, which refuses them.
const english = (language: string | undefined) => !language || /^en\b/i.test(language);

export class ReplayEngine implements AsrEngine {
  readonly id: AsrEngine['id'];
  /**
   * The pipeline cuts a recording into pieces by how many it recognises at once. Fixed, not the
   * machine's core count, so that a spec asks the same questions on any machine as on the 2-core
   * one where the answers were recorded.
   */
  readonly concurrency = 2;
  readonly session?: (opts: SessionOptions) => RecognizerSession;

  constructor(private readonly real: AsrEngine) {
    this.id = real.id;
    if (real.session) {
      const open = real.session.bind(real);
      this.session = (opts) => (english(opts.language) ? new ReplaySession(open, opts) : open(opts));
    }
  }

  describe(): string {
    return this.real.describe();
  }

  async transcribe(pcm: Int16Array, opts: TranscribeOptions = {}): Promise<Word[]> {
    throwIfAborted(opts.signal);
    if (!english(opts.language)) return this.real.transcribe(pcm, opts);
    const k = digest('transcribe', opts.offsetSeconds ?? 0, pcm);
    const hit = store().get(k);
    if (hit && 'words' in hit) {
      opts.onProgress?.(1);
      return hit.words;
    }
    store().miss('transcription');
    const words = await this.real.transcribe(pcm, opts);
    store().record({ k, words });
    return words;
  }

  /**
   * Boundaries come all at once at the end (never through `onBoundaries`), when recorded as when
   * replayed: the pieces the pipeline cuts are then the same in both, so their answers match.
   */
  async scan(pcm: Int16Array, opts: ScanOptions): Promise<UtteranceBoundary[] | undefined> {
    if (!this.real.scan) return undefined;
    throwIfAborted(opts.signal);
    const k = digest('scan', pcm);
    const hit = store().get(k);
    if (hit && 'boundaries' in hit) {
      return hit.boundaries?.map((b) => ({
        sample: b.sample,
        state: { engine: this.id, data: Float32Array.from(b.cmn) },
      }));
    }
    store().miss('scan');
    const found = await this.real.scan(pcm, {
      ...(opts.group ? { group: opts.group } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    store().record({
      k,
      boundaries: found?.map((b) => ({ sample: b.sample, cmn: Array.from(b.state.data) })) ?? null,
    });
    return found;
  }

  /** Nothing to load: the real decoders start only if a call has no recording. */
  async warm(): Promise<void> {}

  async close(): Promise<void> {
    await this.real.close?.();
  }
}

/**
 * A session's utterances in order. Its state (what a real session's adaptation depends on) is a
 * hash of where it started and of every utterance it finished, so an utterance's answer is keyed
 * by everything that shaped it. A real session is opened only on a miss, and first hears the
 * utterances before it again, so it is in the state the real one would have been.
 */
class ReplaySession implements RecognizerSession {
  readonly adapts = true;
  state: string;
  readonly heard: { offset: number; pcm: Int16Array }[] = [];
  previous: Promise<void> = Promise.resolve();
  private real: RecognizerSession | undefined;
  /** How many of `heard` the real session has heard (with the one it is hearing now, if any). */
  realHeard = 0;

  constructor(
    private readonly open: (opts: SessionOptions) => RecognizerSession,
    readonly opts: SessionOptions,
  ) {
    this.state = digest('session', opts.resume?.engine, opts.resume?.data);
  }

  utterance(offsetSeconds: number): SpeechStream {
    return new ReplayUtterance(this, offsetSeconds);
  }

  finished(offset: number, pcm: Int16Array): void {
    this.heard.push({ offset, pcm });
    this.state = digest('after', this.state, offset, pcm);
  }

  /** A real utterance in the state this one starts from (earlier utterances heard again first). */
  async realUtterance(offset: number): Promise<SpeechStream> {
    this.real ??= this.open(this.opts);
    for (; this.realHeard < this.heard.length; this.realHeard++) {
      const { offset: at, pcm } = this.heard[this.realHeard]!;
      const again = this.real.utterance(at);
      again.feed(pcm);
      await again.final();
    }
    this.realHeard++; // the utterance opened now is heard by the real session itself
    return this.real.utterance(offset);
  }
}

class ReplayUtterance implements SpeechStream {
  private readonly parts: Int16Array[] = [];
  private samples = 0;
  private real: Promise<SpeechStream> | undefined;
  private ended = false;
  private settle: () => void = () => undefined;
  private readonly started: Promise<void>;
  private realFed = 0;

  constructor(
    private readonly session: ReplaySession,
    private readonly offset: number,
  ) {
    this.started = session.previous;
    session.previous = new Promise<void>((r) => (this.settle = r));
    session.opts.signal?.addEventListener('abort', () => this.abort(), { once: true });
  }

  feed(pcm: Int16Array): void {
    if (this.ended || pcm.length === 0) return;
    this.parts.push(pcm.slice()); // the caller may reuse its buffer
    this.samples += pcm.length;
    // A real utterance that failed to open (its pool closed) is answered by final(), not here.
    this.real?.then((u) => this.forward(u)).catch(() => undefined);
  }

  async partial(): Promise<string> {
    if (this.ended) return '';
    await this.started;
    const utterance = digest('utterance', this.session.state, this.offset);
    const pcm = concatPcm(this.parts);
    const k = `${utterance}/${digest('partial', pcm)}`;
    const hit = store().get(k);
    if (hit && 'partial' in hit) return hit.partial;
    const near = replayMode() === 'record' ? undefined : store().partialAt(utterance, pcm.length);
    if (near !== undefined) return near;
    store().miss('partial');
    const text = await (await this.openReal()).partial();
    store().record({ k, partial: text, samples: pcm.length });
    return text;
  }

  async final(): Promise<Word[]> {
    const { signal } = this.session.opts;
    if (signal?.aborted) throw abortError(signal);
    try {
      await this.started;
      const pcm = concatPcm(this.parts);
      const k = digest('final', this.session.state, this.offset, pcm);
      const hit = this.real ? undefined : store().get(k);
      let words: Word[];
      if (hit && 'words' in hit) words = hit.words;
      else {
        if (!this.real) store().miss('utterance');
        words = await (await this.openReal()).final();
        store().record({ k, words });
      }
      this.session.finished(this.offset, pcm);
      return words;
    } catch (err) {
      throw signal?.aborted ? abortError(signal) : err;
    } finally {
      this.ended = true;
      this.settle();
    }
  }

  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.settle();
    if (this.real) {
      // The real session forgets an aborted utterance, as this one does.
      this.session.realHeard--;
      this.real.then((u) => u.abort()).catch(() => undefined);
    }
  }

  private openReal(): Promise<SpeechStream> {
    this.real ??= this.session.realUtterance(this.offset).then((u) => this.forward(u));
    return this.real;
  }

  /** Feeds the real utterance what it has not heard yet. */
  private forward(u: SpeechStream): SpeechStream {
    for (; this.realFed < this.parts.length; this.realFed++) u.feed(this.parts[this.realFed]!);
    return u;
  }
}

/** SelectEngineDeps.wrap for test apps: pocketsphinx replayed, other engines as they are. */
export function replayWrap(engine: AsrEngine): AsrEngine {
  return replayMode() !== 'off' && engine.id === 'sphinx' ? new ReplayEngine(engine) : engine;
}
