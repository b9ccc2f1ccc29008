/**
 * A live utterance's recognition time while two uploads keep both upload decoders busy, with the
 * upload decoders niced (the default) and not, alternating in one run on the same machine
 * (docs/engines.md, "A pool"). Real pocketsphinx helpers on the real-speech fixtures; numbers for
 * the docs, never pass/fail.
 *
 *   npm run bench:priority
 */
import path from 'node:path';
import { SphinxEngine, sphinxHelper } from '../src/adapters/asr/sphinx.engine.js';
import { readPcm16Wav } from '../test/helpers/pcm.js';
import { FIXTURES, readReferences } from '../test/helpers/speech-fixtures.js';

if (!sphinxHelper()) {
  console.error(
    'the warm pocketsphinx helper is not built (apt-get install libpocketsphinx-dev pkg-config; npm install)',
  );
  process.exit(1);
}
const refs = readReferences();
const utterance = readPcm16Wav(path.join(FIXTURES, refs[1]!.file));
const audio = refs.map((r) => readPcm16Wav(path.join(FIXTURES, r.file)));
const long = audio.reduce((a, b) => (a.length >= b.length ? a : b));
// Each upload long enough to outlast the live utterances below.
const upload = new Int16Array(long.length * 6);
for (let i = 0; i < 6; i++) upload.set(long, i * long.length);

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const times: Record<'niced' | 'not niced', number[]> = { niced: [], 'not niced': [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const [label, batchNice] of [
    ['niced', undefined],
    ['not niced', 0],
  ] as const) {
    const engine = new SphinxEngine({ concurrency: 2, ...(batchNice === undefined ? {} : { batchNice }) });
    await engine.warm();
    const uploads = [engine.transcribe(upload), engine.transcribe(upload)];
    await new Promise((r) => setTimeout(r, 500));
    for (let k = 0; k < 3; k++) {
      const live = engine.session!({ priority: 'live' }).utterance(0);
      live.feed(utterance);
      const from = performance.now();
      await live.final();
      times[label].push(performance.now() - from);
    }
    await Promise.all(uploads);
    await engine.close();
  }
}
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.round(q * (xs.length - 1))]!;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log(
  `live utterance of ${(utterance.length / 16000).toFixed(1)} s while two uploads run (${ROUNDS} rounds × 3):`,
);
console.log('| upload decoders | p50 | p95 |\n| --- | --- | --- |');
for (const [label, xs] of Object.entries(times))
  console.log(`| ${label} | ${s(quantile(xs, 0.5))} | ${s(quantile(xs, 0.95))} |`);
console.log(
  `ratio of medians (niced / not niced): ${(quantile(times.niced, 0.5) / quantile(times['not niced'], 0.5)).toFixed(2)}`,
);
