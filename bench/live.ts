/**
 * Live recognition, the engine alone beside Sotto, in one run on the same audio.
 *
 * Engine alone: `pocketsphinx_continuous` reading the conversation from a pipe fed in real time
 * (100 ms frames on a clock): a final is the moment it prints an utterance's words, measured
 * from the end of that utterance's last word in the stream. It has no partials.
 *
 * Through Sotto: the real app over HTTPS/WSS (TLS 1.3, the harness's certificate pinned) with the
 * sphinx engine; a capture client streams the same file in real time and a viewer on /watch
 * records when every partial and final arrives:
 *   - final delay: arrival of a final segment − (stream start + the segment's end);
 *   - first words: arrival of the first text of an utterance (partial or final) − (stream start
 *     + the utterance's first word);
 *   - partial cadence: time between consecutive texts of one utterance while it is spoken;
 *   - finals WER against the reference, beside the WER of an upload of the same file;
 *   - the same live numbers again while two uploads are being transcribed.
 * Numbers for the README, never pass/fail.
 *
 *   npm run bench:live                  # PGlite
 *   DATABASE_URL=postgres://… npm run bench:live
 */
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { wordErrorRate } from '../src/domain/wer.js';
import { SPHINX_DEFAULTS, sphinxAvailability, type SphinxEngine } from '../src/adapters/asr/sphinx.engine.js';
import { corpusEntry, corpusFile, corpusIds, hasCorpus, noCorpusReason } from '../test/helpers/corpus.js';
import { readCorpusMono } from '../test/helpers/corpus-audio.js';
import { createOrgWithUser } from '../test/helpers/fixtures.js';
import { createLive, frames, listenTls, mustOpen, type Listening } from '../test/helpers/live.js';
import { multipart } from '../test/helpers/recordings.js';
import { startTestApp, type TestApp } from '../test/helpers/test-app.js';

interface Timings {
  finals: number[];
  firstWords: number[];
  cadence: number[];
  text: string[];
}

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
};
const s = (x: number) => (Number.isNaN(x) ? '—' : `${(x / 1000).toFixed(2)} s`);

/** pocketsphinx_continuous on a pipe fed in real time; finals = when each utterance is printed. */
async function engineAlone(pcm: Int16Array): Promise<Timings> {
  const model = SPHINX_DEFAULTS.modelDir;
  // A named pipe: Node gives a child a socket for stdin, which /dev/stdin cannot open.
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-bench-fifo-'));
  const fifo = path.join(dir, 'audio.raw');
  execFileSync('mkfifo', [fifo]);
  const child = spawn(
    SPHINX_DEFAULTS.binary,
    [
      '-infile',
      fifo,
      '-hmm',
      `${model}/en-us`,
      '-lm',
      `${model}/en-us.lm.bin`,
      '-dict',
      `${model}/cmudict-en-us.dict`,
      '-time',
      'yes',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const finals: number[] = [];
  const text: string[] = [];
  let t0 = 0;
  let pending = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const at = performance.now();
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    let lastEnd = -1;
    for (const line of lines) {
      const m = /^(\S+) (\d+\.\d+) (\d+\.\d+) \S+$/.exec(line.trim());
      if (!m) continue;
      if (!/^(<|\[|\+\+)/.test(m[1]!)) text.push(m[1]!.replace(/\(\d+\)$/, ''));
      lastEnd = Math.max(lastEnd, Number(m[3]));
    }
    if (lastEnd >= 0) finals.push(at - (t0 + lastEnd * 1000));
  });
  const exited = new Promise((r) => child.on('close', r));
  const input = createWriteStream(fifo);
  // Model loading is not part of the delay: wait for it like Sotto's warm-up.
  await sleep(1500);
  const all = frames(pcm);
  t0 = performance.now();
  for (let i = 0; i < all.length; i++) {
    const wait = t0 + i * 100 - performance.now();
    if (wait > 0) await sleep(wait);
    input.write(all[i]!);
  }
  input.end();
  await exited;
  rmSync(dir, { recursive: true, force: true });
  return { finals, firstWords: [], cadence: [], text };
}

async function throughSotto(t: TestApp, server: Listening, token: string, pcm: Int16Array): Promise<Timings> {
  const id = await createLive(t, token, '127.0.0.1');
  const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token });
  await viewer.waitFor((m) => m.type === 'ready');
  const firstSeen = new Map<string, number>();
  const lastSeen = new Map<string, number>();
  const out: Timings = { finals: [], firstWords: [], cadence: [], text: [] };
  let t0 = 0;
  viewer.ws.on('message', (data) => {
    const at = performance.now();
    const m = JSON.parse(String(data)) as {
      type: string;
      id?: string;
      start?: number;
      end?: number;
      text?: string;
    };
    if (m.type !== 'partial' && m.type !== 'segment') return;
    const key = m.id!;
    if (!firstSeen.has(key)) firstSeen.set(key, at);
    if (m.type === 'partial') {
      const prev = lastSeen.get(key);
      if (prev !== undefined) out.cadence.push(at - prev);
      lastSeen.set(key, at);
      return;
    }
    out.finals.push(at - (t0 + m.end! * 1000));
    out.firstWords.push(firstSeen.get(key)! - (t0 + m.start! * 1000));
    out.text.push(...m.text!.split(' '));
  });
  const ingest = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token });
  ingest.ws.send(JSON.stringify({ type: 'start' }));
  const all = frames(pcm);
  t0 = performance.now();
  for (let i = 0; i < all.length; i++) {
    const wait = t0 + i * 100 - performance.now();
    if (wait > 0) await sleep(wait);
    ingest.ws.send(all[i]!);
  }
  await ingest.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1, 600_000);
  const stopAt = performance.now();
  ingest.ws.send(JSON.stringify({ type: 'stop' }));
  await viewer.closed;
  const engine = await (
    t.services.live as unknown as { d: { engine: () => Promise<SphinxEngine> } }
  ).d.engine();
  console.error(
    `  stop → stopped: ${s(performance.now() - stopAt)}; decoders ${JSON.stringify(engine.stats?.())}`,
  );
  return out;
}

function upload(server: Listening, token: string, file: string): Promise<string> {
  const form = multipart(
    { title: path.basename(file) },
    { data: readFileSync(file), name: path.basename(file) },
  );
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: '/api/v1/recordings',
        servername: 'sotto.test',
        ca: server.ca,
        headers: { authorization: `Bearer ${token}`, ...form.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 202) reject(new Error(`upload answered ${res.statusCode} ${body}`));
          else resolve((JSON.parse(body) as { id: string }).id);
        });
      },
    );
    req.on('error', reject);
    req.end(form.payload);
  });
}

function row(name: string, r: Timings, reference: string): string {
  const wer = wordErrorRate(reference, r.text).wer;
  return (
    `| ${name} | ${s(quantile(r.cadence, 0.5))} / ${s(quantile(r.cadence, 0.95))} | ${s(quantile(r.finals, 0.5))} | ` +
    `${s(quantile(r.finals, 0.95))} | ${s(quantile(r.firstWords, 0.5))} / ${s(quantile(r.firstWords, 0.95))} | ${(wer * 100).toFixed(1)}% |`
  );
}

async function main(): Promise<void> {
  if (!hasCorpus) throw new Error(noCorpusReason);
  const sphinx = sphinxAvailability(process.env.PATH ?? '');
  if (!sphinx.available) throw new Error(sphinx.reason);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-bench-live-'));
  const t = await startTestApp({
    // The real recognizer, never the specs' replay of it: this bench times recognition.
    engine: 'real',
    env: {
      SOTTO_LOG_LEVEL: 'warn',
      SOTTO_DATA_DIR: dataDir,
      SOTTO_ASR_ENGINE: 'sphinx',
      // The default job poll (1 s), as a server runs: a queued job wakes the worker at once
      // regardless. Each poll is a claim query on PGlite in this process; at the specs' 100 ms the
      // idle server used 0.8 s of CPU per 10 s against 0.4-0.5 s at the default.
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '1000000',
      SOTTO_LIVE_MAX_PER_ORG: '1000',
    },
  });
  const server = await listenTls(t.services);
  await t.services.jobs.start();
  try {
    const user = await createOrgWithUser(t.services, { role: 'owner' });
    const files = corpusIds();
    console.log(
      `# Live recognition, engine alone vs Sotto (${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}, ` +
        `${process.env.REDIS_URL ? 'Redis' : 'in-process'} fan-out, ${process.arch}, Node ${process.versions.node})\n`,
    );
    // Warm-up: the engine is chosen and its decoders loaded on first use.
    await throughSotto(t, server, user.accessToken, readCorpusMono(files[0]!).pcm.subarray(0, 16_000 * 8));

    console.log(
      '| run | partial every (p50 / p95) | final delay p50 | final delay p95 | first words (p50 / p95) | finals WER |',
    );
    console.log(
      '| --- | ------------------------- | --------------- | --------------- | ----------------------- | ---------- |',
    );
    const all = { alone: [] as Timings[], sotto: [] as Timings[], busy: [] as Timings[] };
    let reference = '';
    for (const file of files) {
      const { pcm } = readCorpusMono(file);
      const ref = corpusEntry(file).text;
      reference += ` ${ref}`;
      console.error(`${file}: engine alone`);
      const alone = await engineAlone(pcm);
      console.error(`${file}: through Sotto`);
      const sotto = await throughSotto(t, server, user.accessToken, pcm);
      console.error(`${file}: through Sotto while two uploads are transcribed`);
      const longest = [...files].sort((a, b) => corpusEntry(b).duration - corpusEntry(a).duration)[0]!;
      await Promise.all([
        upload(server, user.accessToken, corpusFile(longest, 'wav')),
        upload(server, user.accessToken, corpusFile(longest, 'flac')),
      ]);
      const busy = await throughSotto(t, server, user.accessToken, pcm);
      all.alone.push(alone);
      all.sotto.push(sotto);
      all.busy.push(busy);
      console.log(row(`${file}: pocketsphinx_continuous alone`, alone, ref));
      console.log(row(`${file}: Sotto live`, sotto, ref));
      console.log(row(`${file}: Sotto live, 2 uploads running`, busy, ref));
    }
    const merge = (xs: Timings[]): Timings => ({
      finals: xs.flatMap((x) => x.finals),
      firstWords: xs.flatMap((x) => x.firstWords),
      cadence: xs.flatMap((x) => x.cadence),
      text: xs.flatMap((x) => x.text),
    });
    console.log(row('**all: engine alone**', merge(all.alone), reference));
    console.log(row('**all: Sotto live**', merge(all.sotto), reference));
    console.log(row('**all: Sotto live, 2 uploads running**', merge(all.busy), reference));
    console.log(
      '\nfinal delay = a final reaches the viewer (or pocketsphinx prints it) − the end of its last word in the stream;' +
        '\nfirst words = the first text of an utterance at the viewer − its first word in the stream (streamed in real time, 100 ms frames).',
    );
  } finally {
    await t.services.jobs.stop();
    await server.close();
    await t.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
