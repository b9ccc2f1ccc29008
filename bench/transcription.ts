/**
 * Transcription quality and speed through the public API, on the shared corpus, with the real
 * pocketsphinx engine: what a user gets, measured the way a user gets it.
 *
 * Serves the real app over HTTPS (TLS 1.3, the bench's own self-signed certificate pinned as the
 * CA) and, for every corpus conversation and every format (mono WAV, stereo WAV, FLAC, Ogg),
 * uploads the file with POST /api/v1/recordings, polls GET /api/v1/recordings/:id until the job
 * is done and reads GET /api/v1/recordings/:id/transcript. It prints, per file:
 *   - WER of the API transcript against the reference text, beside the WER of pocketsphinx run
 *     directly on the same conversation's mono WAV (the pipeline must not lose accuracy);
 *   - DER of the transcript's speaker segments against the reference turns (±0.25 s collar, and
 *     without one), with the number of speakers found;
 *   - speed beside the engine alone: upload-to-done wall time (from the first byte of the POST
 *     to the server's log line that says the job is stored, confirmed by a GET that sees `done`) divided by the wall time of one
 *     `pocketsphinx_continuous` run on the same conversation's mono WAV (the mean of one run right
 *     before and one right after each upload);
 *   - the audio seconds the engine recognised per audio second (lead-ins included: the cost of
 *     cutting the file into chunks recognised in parallel; below 1 when silences are skipped).
 * Numbers for the README, never pass/fail.
 *
 *   npm run bench:transcription                 # PGlite
 *   DATABASE_URL=postgres://… npm run bench:transcription
 *   BENCH_ONLY=intake-01 npm run bench:transcription   # some conversations only
 *   BENCH_FORMATS=stereo.wav npm run bench:transcription   # some formats only
 *   BENCH_REPEAT=1 npm run bench:transcription   # each upload once (default 3, median shown)
 * A second table splits each upload→done into its parts, from the server's own log lines.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import selfsigned from 'selfsigned';
import { diarizationErrorRate } from '../test/helpers/der.js';
import type { Segment, SpeakerTurn } from '../src/domain/transcript.js';
import { wordErrorRate } from '../src/domain/wer.js';
import { createAudioDecoder } from '../src/adapters/media/audio-decoder.adapter.js';
import { buildServer } from '../src/http/server.js';
import { sphinxAvailability, SphinxEngine } from '../src/adapters/asr/sphinx.engine.js';
import { corpusEntry, corpusFile, corpusIds, hasCorpus, noCorpusReason } from '../test/helpers/corpus.js';
import { readCorpusMono } from '../test/helpers/corpus-audio.js';
import { createOrgWithUser } from '../test/helpers/fixtures.js';
import { multipart } from '../test/helpers/recordings.js';
import { startTestApp } from '../test/helpers/test-app.js';

const FORMATS = ['wav', 'stereo.wav', 'flac', 'ogg'] as const;

interface Reply {
  status: number;
  body: string;
}

interface Row {
  file: string;
  seconds: number;
  /** pocketsphinx directly on the conversation's mono WAV. */
  wavWer: number;
  /** pocketsphinx directly on this file's decoded channels. */
  directWer: number;
  apiWer: number;
  refSpeakers: number;
  found: number;
  der: number;
  der0: number;
  /** Upload-to-done wall time / one pocketsphinx_continuous run on the mono WAV. */
  ratio: number;
  /** Every repeat's ratio, ascending (the row is the median one's). */
  ratios: number[];
  wallSeconds: number;
  cliSeconds: number;
  recognisedPerSecond: number;
  /** Where upload→done went, in seconds (the second table). */
  phases: {
    upload: number;
    wait: number;
    checkout: number;
    decode: number;
    recognise: number;
    diarize: number;
    save: number;
    /** CPU seconds of the bench's own process (server and client) over upload→done. */
    mainCpu: number;
  };
}

/** The last log entry with this message written since `from` (the harness keeps every line). */
function logged(logs: string[], from: number, msg: string): Record<string, number> {
  for (let i = logs.length - 1; i >= from; i--) {
    const entry = JSON.parse(logs[i]!) as Record<string, unknown>;
    if (entry.msg === msg) return entry as Record<string, number>;
  }
  throw new Error(`no "${msg}" in the server log`);
}

async function main(): Promise<void> {
  if (!hasCorpus) throw new Error(noCorpusReason);
  const sphinx = sphinxAvailability(process.env.PATH ?? '');
  if (!sphinx.available) throw new Error(sphinx.reason);

  const dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-bench-'));
  const harness = await startTestApp({
    // The real recognizer, never the specs' replay of it: this bench times recognition.
    engine: 'real',
    env: {
      // info: the jobs' own timings (checkout, decode, recognise, save) are read from the log.
      SOTTO_LOG_LEVEL: 'info',
      SOTTO_DATA_DIR: dataDir,
      SOTTO_ASR_ENGINE: 'sphinx',
      // The default job poll (1 s), as a server runs: a queued job wakes the worker at once
      // regardless. Each poll is a claim query on PGlite in this process; at the specs' 100 ms the
      // idle server used 0.8 s of CPU per 10 s against 0.4-0.5 s at the default.
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
    },
  });
  const { services } = harness;
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
  const app = await buildServer({ services, https: { key: pems.private, cert: pems.cert } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const owner = await createOrgWithUser(services, { role: 'owner' });
  await services.jobs.start();

  const call = (method: string, url: string, body?: Buffer, headers: Record<string, string> = {}) =>
    new Promise<Reply>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method,
          path: url,
          servername: 'localhost',
          ca: pems.cert,
          headers: { authorization: `Bearer ${owner.accessToken}`, ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  // The engine alone: pocketsphinx_continuous, one process per run (cold mode).
  const engine = new SphinxEngine({ helper: false });
  const decoder = createAudioDecoder();
  // The server's own engine (the same instance its jobs use), for its recognised-seconds counter.
  const served = (services.live as unknown as { d: { engine: () => Promise<SphinxEngine> } }).d;
  const recognised = async () => (await served.engine()).stats?.()?.recognisedSeconds ?? NaN;
  await (await served.engine()).warm?.();
  /** pocketsphinx on each channel, whole, words merged in time order: no Sotto code in between. */
  const directWer = async (text: string, channels: Int16Array[]): Promise<number> => {
    const words = (await Promise.all(channels.map((c) => engine.transcribe(c)))).flat();
    words.sort((a, b) => a.start - b.start);
    return wordErrorRate(
      text,
      words.map((w) => w.w),
    ).wer;
  };
  const rows: Row[] = [];
  const repeatCount = Math.max(1, Number(process.env.BENCH_REPEAT ?? 3));
  try {
    // BENCH_ONLY=intake-01 (comma-separated ids) limits the run to some conversations.
    const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
    // BENCH_FORMATS=stereo.wav (comma-separated, of wav, stereo.wav, flac, ogg) limits the formats.
    const formats = process.env.BENCH_FORMATS?.split(',').filter(Boolean);
    for (const id of corpusIds().filter((i) => !only || only.includes(i))) {
      const ref = corpusEntry(id);
      const mono = readCorpusMono(id).pcm;
      const wavWer = await directWer(ref.text, [mono]);
      for (const format of FORMATS.filter((f) => !formats || formats.includes(f))) {
        const file = corpusFile(id, format);
        // The same audio the pipeline gets (lossy Ogg decoded; stereo as two channels).
        const decoded = await decoder.decodeAll(file, { perChannel: true });
        const sameFileWer = await directWer(ref.text, decoded.channels ?? [decoded.mono]);
        const form = multipart(
          { title: `${id} (${format})` },
          { data: readFileSync(file), name: path.basename(file) },
        );
        // The engine alone, timed right before and right after this upload so both meet the same
        // machine: on a shared VM the same run's time drifts by ±20 % over minutes.
        const cliRun = async () => {
          const from = performance.now();
          await engine.transcribe(mono);
          return (performance.now() - from) / 1000;
        };
        // Each upload is measured BENCH_REPEAT times (default 3), each beside its own command-line
        // runs; the row is the run with the median ratio, every run's ratio printed beside it.
        const once = async (): Promise<Omit<Row, 'ratios'>> => {
          const cliBefore = await cliRun();
          const before = await recognised();
          const logFrom = harness.logs.length;
          const cpuFrom = process.cpuUsage();
          const postedAt = performance.now();
          const posted = await call('POST', '/api/v1/recordings', form.payload, form.headers);
          const uploadSeconds = (performance.now() - postedAt) / 1000;
          if (posted.status !== 202)
            throw new Error(`${file}: upload answered ${posted.status} ${posted.body}`);
          const recordingId = (JSON.parse(posted.body) as { id: string }).id;
          let rec: { status: string; createdAt: string; completedAt: string | null; durationSeconds: number };
          // The server's own log says when the job is stored; the API then confirms `done`. Polling
          // the API every 50 ms instead cost the server ~5 ms of CPU per request (TLS, session,
          // row-level security, decrypting the title), taken from the decoders it measures.
          let asked = performance.now();
          for (;;) {
            const finished = harness.logs
              .slice(logFrom)
              .some((l) => l.includes('"transcription finished"') && l.includes(recordingId));
            if (finished || performance.now() - asked > 1000) {
              asked = performance.now();
              const got = await call('GET', `/api/v1/recordings/${recordingId}`);
              rec = JSON.parse(got.body) as typeof rec;
              if (rec.status === 'done') break;
              if (rec.status === 'failed') throw new Error(`${file}: job failed: ${got.body}`);
            }
            await new Promise((r) => setTimeout(r, 5));
          }
          const wallSeconds = (performance.now() - postedAt) / 1000;
          const cpuUsed = process.cpuUsage(cpuFrom);
          const cliSeconds = (cliBefore + (await cliRun())) / 2;
          const recognisedSeconds = (await recognised()) - before;
          const t = await call('GET', `/api/v1/recordings/${recordingId}/transcript`);
          const { segments } = JSON.parse(t.body) as { segments: Segment[] };
          const hyp: SpeakerTurn[] = segments.map((s) => ({
            speaker: s.speaker,
            start: s.start,
            end: s.end,
          }));
          const seconds = rec.durationSeconds;
          const job = logged(harness.logs, logFrom, 'transcription finished');
          const pipe = logged(harness.logs, logFrom, 'transcription pipeline finished');
          const phases = {
            upload: uploadSeconds,
            checkout: job.checkoutMs! / 1000,
            decode: pipe.decodeMs! / 1000,
            recognise: pipe.recogniseMs! / 1000,
            diarize: pipe.diarizeMs! / 1000,
            save: job.saveMs! / 1000,
            wait: 0,
            // The bench's process is the server (and this client): its CPU beside the decoders'.
            mainCpu: (cpuUsed.user + cpuUsed.system) / 1e6,
          };
          // The rest: from the 202 to the claim, the pipeline's progress heartbeats, and the poll.
          phases.wait = Math.max(
            0,
            wallSeconds - uploadSeconds - (job.checkoutMs! + job.pipelineMs! + job.saveMs!) / 1000,
          );
          return {
            phases,
            file: path.basename(file),
            seconds,
            wavWer,
            directWer: sameFileWer,
            apiWer: wordErrorRate(
              ref.text,
              segments.flatMap((s) => s.words.map((w) => w.w)),
            ).wer,
            refSpeakers: new Set(ref.turns.map((x) => x.speaker)).size,
            found: new Set(segments.map((s) => s.speaker)).size,
            der: diarizationErrorRate(ref.turns, hyp).der,
            der0: diarizationErrorRate(ref.turns, hyp, { collar: 0 }).der,
            ratio: wallSeconds / cliSeconds,
            wallSeconds,
            cliSeconds,
            recognisedPerSecond: recognisedSeconds / seconds,
          };
        };
        const runs: Omit<Row, 'ratios'>[] = [];
        for (let k = 0; k < repeatCount; k++) runs.push(await once());
        runs.sort((a, b) => a.ratio - b.ratio);
        const median = runs[Math.floor((runs.length - 1) / 2)]!;
        rows.push({ ...median, ratios: runs.map((r) => r.ratio) });
        console.error(`done: ${path.basename(file)}`);
      }
    }
  } finally {
    await services.jobs.stop();
    await app.close();
    await harness.close();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const header = [
    'file',
    'audio s',
    'WER direct (mono WAV)',
    'WER direct (this file)',
    'WER API',
    'Δ points',
    'speakers ref/found',
    'DER (±0.25 s)',
    'DER (no collar)',
    'CLI alone s',
    'upload→done s',
    'ratio',
    'ratios of the repeats',
    'recognised s / audio s',
  ];
  const table = rows.map((r) => [
    r.file,
    r.seconds.toFixed(1),
    pct(r.wavWer),
    pct(r.directWer),
    pct(r.apiWer),
    (100 * (r.apiWer - r.directWer)).toFixed(1),
    `${r.refSpeakers}/${r.found}`,
    pct(r.der),
    pct(r.der0),
    r.cliSeconds.toFixed(2),
    r.wallSeconds.toFixed(2),
    r.ratio.toFixed(2),
    r.ratios.map((x) => x.toFixed(2)).join(' '),
    r.recognisedPerSecond.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(
    `backend: ${services.db.kind}; Sotto's engine: ${(await served.engine()).describe()}; engine alone: ${engine.describe()}; HTTPS TLS 1.3`,
  );
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
  const phaseHeader = [
    'file',
    'upload→done s',
    'upload',
    'queue + poll',
    'decrypt copy',
    'decode',
    'recognise + speakers',
    'of which diarization on the main thread',
    'save',
    'main process CPU s',
  ];
  const phaseTable = rows.map((r) => [
    r.file,
    r.wallSeconds.toFixed(2),
    ...[
      r.phases.upload,
      r.phases.wait,
      r.phases.checkout,
      r.phases.decode,
      r.phases.recognise,
      r.phases.diarize,
      r.phases.save,
    ].map((x) => `${x.toFixed(2)} (${Math.round((100 * x) / r.wallSeconds)}%)`),
    r.phases.mainCpu.toFixed(2),
  ]);
  const pw = phaseHeader.map((h, i) => Math.max(h.length, ...phaseTable.map((row) => row[i]!.length)));
  const pline = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(pw[i]!)).join(' | ')} |`;
  console.log(`\nWhere upload→done went (seconds, share):`);
  console.log(pline(phaseHeader));
  console.log(`|${pw.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of phaseTable) console.log(pline(row));
  console.log(
    '\nWER direct = pocketsphinx on the whole file, each channel separately, no Sotto code in between;' +
      '\nΔ points = WER API − WER direct (this file).' +
      '\nDER from the transcript segments (speaker, start, end) the API returns.' +
      '\nCLI alone = pocketsphinx_continuous on the mono WAV (model load included), wall time, the mean of one run right before and one right after each upload;' +
      '\nupload→done = POST to `done` through the API (upload, decode, VAD, parallel recognition, diarization, encryption);' +
      `\nratio = upload→done / CLI alone, on this machine (${process.arch}, ${os.availableParallelism()} cores, Node ${process.versions.node}); lower is faster.` +
      '\nqueue + poll = from the 202 to the claim, progress heartbeats, and the wait for the `done` answer;' +
      '\nmain process CPU = the bench process (server and client, PGlite inside) over upload→done: each such second is one a decoder did not get.',
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
