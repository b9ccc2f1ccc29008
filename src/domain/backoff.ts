/**
 * The one retry delay of the codebase: capped exponential backoff with full jitter
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/). Every retry —
 * transcription jobs, webhook deliveries, the job runner after errors and through outages, the
 * remote worker's result calls, `sotto bot` reconnecting — asks this function, so they all spread
 * out the same way.
 *
 * Why jitter: without it every client that failed at the same moment (a database restart, a
 * receiver down for a minute) retries at the same moment again, and again after each doubling: a
 * thundering herd that can keep the dependency down. Full jitter draws the delay uniformly from
 * [0, ceiling], which spreads the herd best for the least total wait.
 *
 * The random source is a parameter so that tests are deterministic (`() => 1` gives the ceiling,
 * the old un-jittered delay); production uses Math.random, which is plenty for spreading load
 * (nothing here is a secret).
 */
export type RandomSource = () => number;

export interface BackoffPolicy {
  /** The ceiling of the first retry; it doubles with each further attempt. */
  baseMs: number;
  /** No delay ever exceeds this. */
  capMs: number;
  /** At least this long (default 0): a floor for loops that must not spin. */
  minMs?: number;
}

/**
 * The delay before retry number `attempt` (1 = the first retry): uniform in
 * [minMs, min(capMs, baseMs × 2^(attempt−1))], in whole milliseconds.
 */
export function backoffMs(
  policy: BackoffPolicy,
  attempt: number,
  random: RandomSource = Math.random,
): number {
  const { baseMs, capMs, minMs = 0 } = policy;
  // The exponent is bounded so that a huge attempt count cannot overflow to Infinity or NaN.
  const exponent = Math.min(Math.max(Math.floor(attempt), 1) - 1, 52);
  const ceiling = Math.max(minMs, Math.min(capMs, baseMs * 2 ** exponent));
  // A misbehaving source (NaN, outside [0, 1]) must not produce a negative or endless delay.
  const drawn = random();
  const r = Number.isFinite(drawn) ? Math.min(Math.max(drawn, 0), 1) : 1;
  return Math.round(minMs + r * (ceiling - minMs));
}
