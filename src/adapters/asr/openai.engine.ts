import { z } from 'zod';
import type { Word } from '../../domain/transcript.js';
import {
  EngineFailedError,
  EngineUnavailableError,
  SAMPLE_RATE,
  abortError,
  finishWords,
  pcmToWav,
  throwIfAborted,
  type AsrEngine,
  type TranscribeOptions,
} from './engine.js';

/**
 * Any server that speaks OpenAI's `POST {base}/audio/transcriptions` (faster-whisper servers,
 * vLLM, whisper.cpp's server, OpenAI itself): the chunk goes up as a WAV in a multipart form and
 * comes back as `verbose_json` with word and segment timestamps. Servers differ in where they put
 * words (top level, inside segments, or nowhere), so all three are read.
 */
export interface OpenAiEngineOptions {
  /** Up to and including the version, e.g. `https://gpu.internal:8000/v1`. */
  baseUrl: string;
  apiKey?: string | undefined;
  model: string;
  /** Per request (default 10 minutes: a long chunk on a busy GPU server). */
  timeoutMs?: number;
  /** Injected in tests; the global fetch otherwise. */
  fetch?: typeof fetch;
}

const STALE_CONNECTION = new Set(['EPIPE', 'ECONNRESET', 'UND_ERR_SOCKET']);

// Answers larger than this are not a transcription of one chunk.
const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

const wordSchema = z.object({
  word: z.string(),
  start: z.number(),
  end: z.number(),
  probability: z.number().optional(),
});
const segmentSchema = z.object({
  start: z.number(),
  end: z.number(),
  text: z.string().default(''),
  words: z.array(wordSchema).nullish(),
});
const verboseSchema = z.object({
  text: z.string().default(''),
  duration: z.number().optional(),
  words: z.array(wordSchema).nullish(),
  segments: z.array(segmentSchema).nullish(),
});
type Verbose = z.infer<typeof verboseSchema>;

/** Maps a verbose_json answer to words: listed words when there are any, else segment text spread over the segment. */
export function wordsFromVerboseJson(body: Verbose, durationSeconds: number): Word[] {
  const listed = body.words?.length ? body.words : (body.segments ?? []).flatMap((s) => s.words ?? []);
  if (listed.length > 0) {
    return listed.map((w) => ({ w: w.word, start: w.start, end: w.end, conf: w.probability ?? 1 }));
  }
  // No word timestamps (a server that ignores timestamp_granularities): spread each segment's
  // words over its span in proportion to their length — approximate, and marked by conf 0.5.
  const segments = body.segments?.length
    ? body.segments
    : body.text.trim()
      ? [{ start: 0, end: durationSeconds, text: body.text }]
      : [];
  const words: Word[] = [];
  for (const seg of segments) {
    const tokens = seg.text.split(/\s+/).filter(Boolean);
    const letters = tokens.reduce((n, t) => n + t.length, 0);
    let at = seg.start;
    for (const t of tokens) {
      const span = ((seg.end - seg.start) * t.length) / Math.max(1, letters);
      words.push({ w: t, start: at, end: at + span, conf: 0.5 });
      at += span;
    }
  }
  return words;
}

function describeStatus(status: number, detail: string, url: string): Error {
  const why = detail ? `: ${detail}` : '';
  if (status === 401 || status === 403) {
    return new EngineUnavailableError(
      `the transcription server at ${url} refused the credentials (HTTP ${status}${why}); check SOTTO_OPENAI_API_KEY`,
    );
  }
  if (status === 404) {
    return new EngineUnavailableError(
      `the transcription server has no ${url} or does not know the model (HTTP 404${why}); check SOTTO_OPENAI_BASE_URL (it ends with /v1) and SOTTO_OPENAI_MODEL`,
    );
  }
  if (status === 413)
    return new EngineFailedError(`the transcription server refused the audio as too large (HTTP 413${why})`);
  if (status === 429)
    return new EngineFailedError(`the transcription server is rate limiting us (HTTP 429${why})`);
  return new EngineFailedError(`the transcription server answered HTTP ${status}${why}`);
}

/** The server's own error message (OpenAI shape `{error:{message}}` or `{detail}`), short and on one line. */
function errorDetail(text: string): string {
  let message = text;
  try {
    const body = JSON.parse(text) as {
      error?: { message?: unknown } | string;
      detail?: unknown;
      message?: unknown;
    };
    const candidate =
      typeof body.error === 'object' ? body.error?.message : (body.error ?? body.detail ?? body.message);
    if (typeof candidate === 'string') message = candidate;
  } catch {
    /* not JSON: use the text */
  }
  return message.replace(/\s+/g, ' ').trim().slice(0, 200);
}

export class OpenAiEngine implements AsrEngine {
  readonly id = 'openai' as const;
  private readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: OpenAiEngineOptions) {
    let base: URL;
    try {
      base = new URL(opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`);
    } catch {
      throw new EngineUnavailableError('SOTTO_OPENAI_BASE_URL is not a URL');
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new EngineUnavailableError('SOTTO_OPENAI_BASE_URL must be an http(s) URL');
    }
    // Credentials belong in SOTTO_OPENAI_API_KEY, never in a URL that ends up in messages.
    if (base.username || base.password) {
      throw new EngineUnavailableError(
        'SOTTO_OPENAI_BASE_URL must not contain credentials; put the key in SOTTO_OPENAI_API_KEY',
      );
    }
    this.endpoint = new URL('audio/transcriptions', base).toString();
    this.timeoutMs = opts.timeoutMs ?? 10 * 60_000;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  describe(): string {
    return `openai-compatible (${this.endpoint}, model ${this.opts.model})`;
  }

  async transcribe(pcm: Int16Array, opts: TranscribeOptions = {}): Promise<Word[]> {
    throwIfAborted(opts.signal);
    const duration = pcm.length / SAMPLE_RATE;
    const form = new FormData();
    form.set('file', new Blob([new Uint8Array(pcmToWav(pcm))], { type: 'audio/wav' }), 'audio.wav');
    form.set('model', this.opts.model);
    form.set('response_format', 'verbose_json');
    form.append('timestamp_granularities[]', 'word');
    form.append('timestamp_granularities[]', 'segment');
    form.set('temperature', '0');
    if (opts.language) form.set('language', opts.language);

    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;

    let text: string | undefined;
    // A kept-alive connection the server has just closed fails before any answer (EPIPE,
    // ECONNRESET); sending again on a fresh one is safe because transcribing is idempotent.
    for (let attempt = 1; text === undefined; attempt++) {
      try {
        text = await this.post(form, headers, signal);
      } catch (err) {
        if (opts.signal?.aborted) throw abortError(opts.signal);
        if (timeout.aborted) {
          throw new EngineFailedError(
            `the transcription server did not answer within ${Math.round(this.timeoutMs / 1000)} s`,
            { cause: err },
          );
        }
        if (err instanceof EngineFailedError || err instanceof EngineUnavailableError) throw err;
        const code = (err as { cause?: { code?: string } }).cause?.code;
        if (attempt === 1 && code && STALE_CONNECTION.has(code)) continue;
        const cause = (err as { cause?: { message?: string } }).cause;
        throw new EngineFailedError(
          `cannot reach the transcription server at ${this.endpoint}: ${code ?? cause?.message ?? (err as Error).message}`,
          { cause: err },
        );
      }
    }
    if (text.length > MAX_RESPONSE_BYTES)
      throw new EngineFailedError("the transcription server's answer is too large");

    let body: Verbose;
    try {
      body = verboseSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new EngineFailedError(
        'the transcription server did not answer with verbose_json (does it support response_format=verbose_json?)',
        { cause: err },
      );
    }
    return finishWords(wordsFromVerboseJson(body, duration), duration, opts.offsetSeconds ?? 0);
  }

  private async post(form: FormData, headers: Record<string, string>, signal: AbortSignal): Promise<string> {
    // No redirects: a redirect could carry the audio and the key to another host.
    const res = await this.fetchImpl(this.endpoint, {
      method: 'POST',
      headers,
      body: form,
      signal,
      redirect: 'error',
    });
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > MAX_RESPONSE_BYTES) {
      await res.body?.cancel();
      throw new EngineFailedError(`the transcription server's answer is too large (${declared} bytes)`);
    }
    const text = await res.text();
    if (!res.ok) throw describeStatus(res.status, errorDetail(text), this.endpoint);
    return text;
  }
}
