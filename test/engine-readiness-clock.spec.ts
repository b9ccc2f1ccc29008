import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { selectEngine, type EngineSettings } from '../src/adapters/asr/select-engine.js';
import { sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { EngineReadinessService } from '../src/services/transcription/engine-readiness.service.js';

/**
 * /readyz polls EngineReadinessService.state(); a failed engine choice is reused for `stateTtlMs`
 * so a probe every second does not search PATH every second. That age is read on the app's clock
 * (issue 14, one clock): the test moves a ManualClock instead of sleeping through the TTL. The
 * engine search is the real one: pocketsphinx looked for on a PATH that lacks it, then on the
 * machine's PATH ("apt-get install pocketsphinx" without a restart).
 */
const hasSphinx = sphinxAvailability(process.env.PATH ?? '').available;

describe('engine readiness: a failed choice is reused for its TTL on the injected clock', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-engine-clock-'));
  const emptyPath = mkdtempSync(path.join(tmpdir(), 'sotto-engine-path-'));
  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(emptyPath, { recursive: true, force: true });
  });

  it.skipIf(!hasSphinx)(
    'looks again only once the TTL has passed on the clock, then finds the engine',
    async () => {
      const asr: EngineSettings = {
        engine: 'sphinx',
        device: 'cpu',
        whisperModel: 'base.en',
        openai: { baseUrl: undefined, apiKey: undefined, model: 'whisper-1', timeoutMs: 1000 },
        searchPath: emptyPath,
      };
      let searches = 0;
      const clock = new ManualClock(new Date('2026-05-01T00:00:00Z'));
      const readiness = new EngineReadinessService(
        () => {
          searches++;
          return selectEngine(asr, dataDir);
        },
        { info: () => undefined, warn: () => undefined },
        { configured: 'sphinx', clock, stateTtlMs: 5000 },
      );
      try {
        expect(await readiness.state()).toMatchObject({
          status: 'none',
          missing: 'configured_engine_unavailable',
        });
        expect(searches).toBe(1);

        // Installed now; within the TTL the failed answer is reused, however much real time passes.
        asr.searchPath = process.env.PATH ?? '';
        clock.advance(4999);
        expect(await readiness.state()).toMatchObject({ status: 'none' });
        expect(searches).toBe(1);

        clock.advance(2);
        expect(await readiness.state()).toMatchObject({ status: 'ok', id: 'sphinx' });
        expect(searches).toBe(2);
      } finally {
        await readiness.close();
      }
    },
  );
});
