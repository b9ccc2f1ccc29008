import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Word } from '../src/domain/transcript.js';
import type { AsrEngine, ScanOptions } from '../src/adapters/asr/engine.js';
import { SAMPLE_RATE } from '../src/adapters/asr/engine.js';
import { SphinxEngine, sphinxAvailability, sphinxHelper } from '../src/adapters/asr/sphinx.engine.js';
import { recognise } from '../src/services/transcription/pipeline-recognise.js';
import { readPcm16Wav } from './helpers/pcm.js';
import { FIXTURES, readReferences } from './helpers/speech-fixtures.js';
import { concatPcm } from '../src/audio/pcm-chunker.js';

/**
 * Pieces recognised while the scan is still going on (pipeline-recognise.ts): the warm
 * pocketsphinx engine on real read speech (~90 s built from test/fixtures/speech), watched
 * through a pass-through wrapper that only notes when the scan settles and when each piece's
 * session opens. The first piece must start before the scan is over (the second decoder is not
 * left idle meanwhile), and the words must be exactly those of the same recording recognised
 * with the scan waited for first: the pieces are the same, only their order differs.
 */
const skip = !sphinxAvailability(process.env.PATH ?? '').available
  ? 'pocketsphinx is not installed'
  : !sphinxHelper()
    ? 'the warm helper is not built (apt-get install libpocketsphinx-dev pkg-config; npm install)'
    : undefined;

function longTrack(): Int16Array {
  const gap = new Int16Array(SAMPLE_RATE);
  const reads = readReferences().filter((r) => r.kind === 'read');
  const parts = [0, 1, 2].flatMap(() =>
    reads.flatMap((r) => [readPcm16Wav(path.join(FIXTURES, r.file)), gap]),
  );
  return concatPcm(parts);
}

interface Watch {
  scanSettled?: number;
  opened: number[];
  /** The audio each piece was given, in the order the pieces started. */
  fed: number[];
  reports: number;
}

/** The real engine, with the scan's reports passed on or withheld, and the order of events noted. */
function watched(engine: SphinxEngine, watch: Watch, streamReports: boolean): AsrEngine {
  let tick = 0;
  return {
    id: engine.id,
    describe: () => engine.describe(),
    transcribe: (pcm, opts) => engine.transcribe(pcm, opts),
    concurrency: 2,
    session: (opts) => {
      watch.opened.push(tick++);
      const session = engine.session!(opts);
      return {
        adapts: session.adapts,
        utterance: (offset: number) => {
          const u = session.utterance(offset);
          return {
            feed: (pcm: Int16Array) => (watch.fed.push(pcm.length), u.feed(pcm)),
            partial: () => u.partial(),
            final: () => u.final(),
            abort: () => u.abort(),
          };
        },
      };
    },
    scan: async (pcm: Int16Array, opts: ScanOptions) => {
      const { onBoundaries, ...rest } = opts;
      const found = await engine.scan(pcm, {
        ...rest,
        ...(streamReports && onBoundaries
          ? {
              onBoundaries: (b) => {
                watch.reports++;
                onBoundaries(b);
              },
            }
          : {}),
      });
      watch.scanSettled = tick++;
      return found;
    },
  };
}

describe.skipIf(skip !== undefined)(
  `pieces recognised while the scan goes on${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    const engine = new SphinxEngine({ concurrency: 2 });
    afterAll(() => engine.close());
    const pcm = longTrack();

    const run = async (streamReports: boolean) => {
      const watch: Watch = { opened: [], fed: [], reports: 0 };
      const stats = { recognisedSamples: 0 };
      const words: Word[] = await recognise(
        {
          engine: watched(engine, watch, streamReports),
          logger: { debug: () => undefined },
          concurrency: 2,
        },
        {
          pcm,
          regions: () => [],
          duration: pcm.length / SAMPLE_RATE,
          input: { file: 'long-track' },
          progress: () => undefined,
          leadIn: 'contiguous',
          stats,
        },
      );
      return { watch, words, stats };
    };

    it(
      'starts the first piece before the scan ends, and gives the words of the plan made after it',
      { timeout: 180_000 },
      async () => {
        expect(pcm.length / SAMPLE_RATE).toBeGreaterThan(80);
        const streamed = await run(true);
        const waited = await run(false);

        expect(streamed.watch.reports).toBeGreaterThan(1);
        expect(streamed.watch.opened.length).toBeGreaterThanOrEqual(4);
        expect(streamed.watch.opened[0]).toBeLessThan(streamed.watch.scanSettled!);
        // Without reports every piece waits for the scan (the check above can fail).
        expect(waited.watch.opened[0]).toBeGreaterThan(waited.watch.scanSettled!);
        // Planned after the scan, the pieces go longest first (none cut greedily from the start).
        const lengths = waited.watch.fed;
        expect(lengths.length).toBeGreaterThanOrEqual(4);
        expect(lengths).toEqual([...lengths].sort((a, b) => b - a));

        expect(streamed.words.map((w) => [w.w, w.start, w.end])).toEqual(
          waited.words.map((w) => [w.w, w.start, w.end]),
        );
        expect(streamed.words.length).toBeGreaterThan(100);
        // Nothing recognised twice: the pieces tile the track.
        expect(streamed.stats.recognisedSamples).toBe(pcm.length);
        expect(waited.stats.recognisedSamples).toBe(pcm.length);
      },
    );
  },
);
