import { describe, expect, it } from 'vitest';
import { EngineUnavailableError } from '../src/adapters/asr/engine.js';
import { JobRunner } from '../src/services/transcription/job-runner.service.js';
import type { JobSource, SourceJob } from '../src/services/transcription/job-runner.types.js';
import type { PipelineResult } from '../src/services/transcription/pipeline.service.js';

/**
 * The runner's side of "no engine": a run failing with engine_unavailable is asked of the engine
 * itself (verifyEngine). Engine unusable (a whisper model missing, say): the job goes back as it
 * was (handBack: the attempt not counted) and the runner waits. Engine fine: only that job cannot
 * run on it (a language it lacks): the job fails as before. A failed choice claims nothing at all.
 */
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

function source(log: string[]): JobSource & { jobs: number } {
  const s = {
    jobs: 1,
    claim: async (): Promise<SourceJob | undefined> => {
      if (s.jobs === 0) return undefined;
      s.jobs--;
      log.push('claim');
      return {
        recordingId: 'r1',
        language: 'de',
        speakersHint: null,
        checkout: async () => ({ path: '/dev/null', release: async () => undefined }),
        heartbeat: async () => true,
        complete: async (_r: PipelineResult) => true,
        fail: async (code) => {
          log.push(`fail:${code}`);
        },
        handBack: async () => {
          log.push('handBack');
          s.jobs++;
        },
      };
    },
    engineUnavailable: async (reason: string) => {
      log.push(`waiting:${reason}`);
    },
    engineAvailable: async () => {
      log.push('available');
    },
  };
  return s;
}

const failingRun = () =>
  Promise.resolve({
    run: () => Promise.reject(new EngineUnavailableError('cannot run this')),
  });

describe('the job runner without a usable engine', () => {
  it('hands the job back uncounted and waits when the engine itself cannot transcribe', async () => {
    const log: string[] = [];
    const runner = new JobRunner(source(log), failingRun, quiet, {
      pollMs: 10,
      heartbeatMs: 1000,
      engineRecheckMs: 60_000,
      verifyEngine: async () => ({ status: 'none', reason: 'model missing: sotto models pull base.en' }),
    });
    runner.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(runner.engineProblem).toMatch(/models pull/);
    await runner.stop();
    expect(log).toEqual([
      'claim',
      'handBack',
      'waiting:model missing: sotto models pull base.en',
      // The next look re-verifies (the engine is suspect) instead of claiming again.
      'waiting:model missing: sotto models pull base.en',
    ]);
  });

  it('fails the job when the engine works but not for this job', async () => {
    const log: string[] = [];
    const runner = new JobRunner(source(log), failingRun, quiet, {
      pollMs: 10,
      heartbeatMs: 1000,
      verifyEngine: async () => ({ status: 'ok' }),
    });
    expect(await runner.runOnce()).toBe(true);
    expect(log).toEqual(['claim', 'fail:engine_unavailable']);
  });

  it('claims nothing while the engine cannot be chosen, and takes jobs once it can (wake)', async () => {
    const log: string[] = [];
    let installed = false;
    const runner = new JobRunner(
      source(log),
      async () => ({ run: () => Promise.reject(new Error('done here')) }),
      quiet,
      {
        pollMs: 10,
        heartbeatMs: 1000,
        engineRecheckMs: 60_000,
        engineReady: async () => {
          if (!installed) throw new EngineUnavailableError('no engine');
        },
      },
    );
    runner.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(log).toEqual(['waiting:no engine']);
    installed = true;
    runner.wake();
    await new Promise((r) => setTimeout(r, 100));
    await runner.stop();
    expect(log).toEqual(['waiting:no engine', 'available', 'claim', 'fail:internal']);
    expect(runner.engineProblem).toBeUndefined();
  });
});
