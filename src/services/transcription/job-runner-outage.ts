/** How the JobRunner tells an outage from a job's own failure, and waits one out. */
import { backoffMs, type RandomSource } from '../../domain/backoff.js';
import { AppError } from '../../domain/errors.js';
import { outageOf, type Outage } from '../../domain/outage.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';

/** How long the runner keeps trying to record a result or a hand-back through an outage. */
const OUTAGE_RETRY_MS = 60_000;
/** The retries through an outage: the first within 500 ms, never more than 8 s apart. */
const OUTAGE_BACKOFF = { baseMs: 500, capMs: 8000, minMs: 50 };

/**
 * An outage the job must not pay for. A typed verdict (AppError) is never second-guessed; and a
 * broken connection inside the engine run (a helper process that died on this audio: EPIPE,
 * ECONNRESET) may be the job's own doing, so only a full disk counts there.
 */
export function transientOutage(err: unknown, inPipeline: boolean): Outage | undefined {
  if (err instanceof AppError) return undefined;
  const outage = outageOf(err);
  return inPipeline && outage === 'unavailable' ? undefined : outage;
}

/**
 * Runs `step` again while it fails with an outage (backing off, for at most OUTAGE_RETRY_MS on
 * the clock): the database that failed the job is usually the one that must record it. Past
 * that, the lease expires and the job is claimed again.
 */
export async function whileOutage(
  step: () => Promise<void>,
  clock: Clock,
  random: RandomSource | undefined,
  stopping: () => boolean,
): Promise<void> {
  const until = clock.now().getTime() + OUTAGE_RETRY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      const delay = backoffMs(OUTAGE_BACKOFF, attempt, random);
      if (!outageOf(err) || stopping() || clock.now().getTime() + delay > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
