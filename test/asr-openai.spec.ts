import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EngineFailedError, EngineUnavailableError, SAMPLE_RATE } from '../src/adapters/asr/engine.js';
import { OpenAiEngine } from '../src/adapters/asr/openai.engine.js';

/**
 * PROTOCOL HANDLING of the openai engine. No real OpenAI-compatible ASR server runs here, so an
 * HTTP server started by this spec plays one: it parses the multipart request it receives the way
 * such a server must (model, response_format, timestamp_granularities, a valid 16 kHz mono PCM16
 * WAV) and answers with verbose_json shapes seen from OpenAI and faster-whisper servers. What
 * this proves is our side of the protocol, not the recognition quality of any server.
 */
interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  form: FormData;
  wav: Buffer;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, received: Received) => void;

let server: http.Server;
let baseUrl: string;
let handler: Handler;
let received: Received[] = [];

function json(res: http.ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      // The standard multipart parser (the one servers built on web APIs use) reads our body.
      const parsed = new Request('http://parser.invalid/', {
        method: 'POST',
        headers: { 'content-type': req.headers['content-type'] ?? '' },
        body: raw,
      });
      parsed
        .formData()
        .then(async (form) => {
          const file = form.get('file');
          const wav = file instanceof Blob ? Buffer.from(await file.arrayBuffer()) : Buffer.alloc(0);
          const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, form, wav };
          received.push(r);
          handler(req, res, r);
        })
        .catch(() => json(res, 400, { error: { message: 'not multipart' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  received = [];
});

const pcm = (() => {
  const p = new Int16Array(SAMPLE_RATE * 2); // 2 s
  for (let i = 0; i < p.length; i++) p[i] = Math.round(Math.sin(i / 10) * 1000);
  return p;
})();

describe('openai engine: the request it sends', () => {
  it('posts multipart to {base}/audio/transcriptions with model, verbose_json, word+segment granularities and a valid WAV', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        text: 'Hello there.',
        language: 'english',
        duration: 2,
        words: [
          { word: 'Hello', start: 0.1, end: 0.5 },
          { word: 'there.', start: 0.6, end: 1.0 },
        ],
        segments: [{ id: 0, start: 0.1, end: 1.0, text: ' Hello there.' }],
      });
    const engine = new OpenAiEngine({
      baseUrl,
      apiKey: 'sk-test-123',
      model: 'Systran/faster-whisper-small',
    });
    const words = await engine.transcribe(pcm, { language: 'en', offsetSeconds: 10 });

    expect(received).toHaveLength(1);
    const r = received[0]!;
    expect(r.method).toBe('POST');
    expect(r.url).toBe('/v1/audio/transcriptions');
    expect(r.headers.authorization).toBe('Bearer sk-test-123');
    expect(r.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(r.form.get('model')).toBe('Systran/faster-whisper-small');
    expect(r.form.get('response_format')).toBe('verbose_json');
    expect(r.form.getAll('timestamp_granularities[]')).toEqual(['word', 'segment']);
    expect(r.form.get('language')).toBe('en');
    const file = r.form.get('file') as File;
    expect(file.name).toBe('audio.wav');
    expect(file.type).toBe('audio/wav');

    // The WAV header: RIFF/WAVE, PCM, mono, 16 kHz, 16-bit, and exactly our samples.
    const wav = r.wav;
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(wav.readUInt32LE(4)).toBe(wav.length - 8);
    expect(wav.toString('ascii', 8, 16)).toBe('WAVEfmt ');
    expect(wav.readUInt16LE(20)).toBe(1);
    expect(wav.readUInt16LE(22)).toBe(1);
    expect(wav.readUInt32LE(24)).toBe(16_000);
    expect(wav.readUInt16LE(34)).toBe(16);
    expect(wav.toString('ascii', 36, 40)).toBe('data');
    expect(wav.readUInt32LE(40)).toBe(pcm.length * 2);
    expect(wav.length).toBe(44 + pcm.length * 2);
    expect(wav.readInt16LE(44 + 2 * 123)).toBe(pcm[123]);

    expect(words).toEqual([
      { w: 'Hello', start: 10.1, end: 10.5, conf: 1 },
      { w: 'there.', start: 10.6, end: 11, conf: 1 },
    ]);
  });

  it('sends no Authorization header without a key, and no language when none is given', async () => {
    handler = (_req, res) => json(res, 200, { text: '', segments: [] });
    await new OpenAiEngine({ baseUrl: `${baseUrl}/`, model: 'whisper-1' }).transcribe(pcm);
    expect(received[0]!.headers.authorization).toBeUndefined();
    expect(received[0]!.form.has('language')).toBe(false);
    expect(received[0]!.url).toBe('/v1/audio/transcriptions');
  });
});

describe('openai engine: the answers it reads', () => {
  const engine = () => new OpenAiEngine({ baseUrl, model: 'm' });

  it('reads words nested in segments (faster-whisper servers) with their probability as confidence', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        text: 'one two',
        segments: [
          {
            start: 0,
            end: 0.9,
            text: ' one',
            words: [{ word: ' one', start: 0.2, end: 0.6, probability: 0.91 }],
          },
          {
            start: 1.0,
            end: 1.6,
            text: ' two',
            words: [{ word: ' two', start: 1.1, end: 1.5, probability: 0.42 }],
          },
        ],
      });
    expect(await engine().transcribe(pcm)).toEqual([
      { w: 'one', start: 0.2, end: 0.6, conf: 0.91 },
      { w: 'two', start: 1.1, end: 1.5, conf: 0.42 },
    ]);
  });

  it('without word timestamps, spreads segment text over the segment (approximate, conf 0.5)', async () => {
    handler = (_req, res) =>
      json(res, 200, { text: 'ab abcd', segments: [{ start: 0.5, end: 1.1, text: 'ab abcd' }] });
    const words = await engine().transcribe(pcm);
    expect(words.map((w) => w.w)).toEqual(['ab', 'abcd']);
    expect(words[0]).toMatchObject({ start: 0.5, end: 0.7, conf: 0.5 });
    expect(words[1]).toMatchObject({ start: 0.7, end: 1.1 });
  });

  it('clamps times to the audio and orders words', async () => {
    handler = (_req, res) =>
      json(res, 200, {
        text: '',
        words: [
          { word: 'late', start: 1.5, end: 9 },
          { word: 'early', start: -1, end: 0.3 },
          { word: '  ', start: 0.4, end: 0.5 },
        ],
      });
    expect(await engine().transcribe(pcm)).toEqual([
      { w: 'early', start: 0, end: 0.3, conf: 1 },
      { w: 'late', start: 1.5, end: 2, conf: 1 },
    ]);
  });

  it('an answer that is not verbose_json is a clear EngineFailedError', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('hello there');
    };
    await expect(engine().transcribe(pcm)).rejects.toThrow(/did not answer with verbose_json/);
  });
});

describe('openai engine: failures', () => {
  it('401 means the key is wrong: EngineUnavailableError naming SOTTO_OPENAI_API_KEY and the server message', async () => {
    handler = (_req, res) =>
      json(res, 401, { error: { message: 'Incorrect API key provided', type: 'auth' } });
    const err = await new OpenAiEngine({ baseUrl, apiKey: 'bad', model: 'm' })
      .transcribe(pcm)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toMatch(/HTTP 401: Incorrect API key provided.*SOTTO_OPENAI_API_KEY/);
    expect((err as Error).message).not.toContain('bad');
  });

  it('404 points at the base URL and the model', async () => {
    handler = (_req, res) => json(res, 404, { detail: 'Not Found' });
    await expect(new OpenAiEngine({ baseUrl, model: 'm' }).transcribe(pcm)).rejects.toThrow(
      /HTTP 404.*SOTTO_OPENAI_BASE_URL.*SOTTO_OPENAI_MODEL/,
    );
  });

  it('500 is an EngineFailedError with the status and the server’s message', async () => {
    handler = (_req, res) => json(res, 500, { detail: 'CUDA out of memory' });
    const err = await new OpenAiEngine({ baseUrl, model: 'm' }).transcribe(pcm).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineFailedError);
    expect((err as Error).message).toBe('the transcription server answered HTTP 500: CUDA out of memory');
  });

  it('a server that never answers times out with a clear error', async () => {
    handler = () => undefined; // hold the request open
    const started = Date.now();
    const err = await new OpenAiEngine({ baseUrl, model: 'm', timeoutMs: 300 })
      .transcribe(pcm)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineFailedError);
    expect((err as Error).message).toMatch(/did not answer within/);
    expect(Date.now() - started).toBeLessThan(3_000);
    server.closeAllConnections();
  });

  it('aborting the caller’s signal rejects with an AbortError', async () => {
    handler = () => undefined;
    const ac = new AbortController();
    const run = new OpenAiEngine({ baseUrl, model: 'm' }).transcribe(pcm, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const err = await run.catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    server.closeAllConnections();
  });

  it('does not follow redirects (they could carry the audio and key elsewhere)', async () => {
    handler = (_req, res) => {
      res.writeHead(307, { location: 'http://127.0.0.1:9/elsewhere' });
      res.end();
    };
    await expect(new OpenAiEngine({ baseUrl, model: 'm' }).transcribe(pcm)).rejects.toBeInstanceOf(
      EngineFailedError,
    );
    expect(received).toHaveLength(1);
  });

  it('a connection dropped before any answer is retried once on a fresh connection, then reported', async () => {
    let calls = 0;
    handler = (req, res) => {
      calls++;
      if (calls === 1) req.socket.destroy();
      else json(res, 200, { text: 'ok', words: [{ word: 'ok', start: 0, end: 0.5 }] });
    };
    expect((await new OpenAiEngine({ baseUrl, model: 'm' }).transcribe(pcm)).map((w) => w.w)).toEqual(['ok']);
    expect(calls).toBe(2);

    calls = 0;
    handler = (req) => {
      calls++;
      req.socket.destroy();
    };
    await expect(new OpenAiEngine({ baseUrl, model: 'm' }).transcribe(pcm)).rejects.toThrow(
      /cannot reach the transcription server/,
    );
    expect(calls).toBe(2);
  });

  it('an unreachable server is a clear EngineFailedError', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(
      new OpenAiEngine({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm' }).transcribe(pcm),
    ).rejects.toThrow(/cannot reach the transcription server.*ECONNREFUSED/);
  });

  it('refuses a base URL that is not http(s) or carries credentials', () => {
    expect(() => new OpenAiEngine({ baseUrl: 'ftp://x/v1', model: 'm' })).toThrow(/http\(s\)/);
    expect(() => new OpenAiEngine({ baseUrl: 'http://u:p@x/v1', model: 'm' })).toThrow(
      /must not contain credentials/,
    );
  });
});
