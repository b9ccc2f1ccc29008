/** Time is an outside dependency: services ask the clock so tests can move it (retention, expiry). */
export interface Clock {
  now(): Date;
  /**
   * Milliseconds from an arbitrary origin that never go back: how long work took (logs, stats,
   * held-for figures), which the wall clock's steps would falsify.
   */
  monotonicMs(): number;
}

export const systemClock: Clock = { now: () => new Date(), monotonicMs: () => performance.now() };

/** A clock tests can set and advance. */
export class ManualClock implements Clock {
  constructor(private current = new Date()) {}
  now(): Date {
    return new Date(this.current);
  }
  monotonicMs(): number {
    return this.current.getTime();
  }
  set(date: Date): void {
    this.current = new Date(date);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

/**
 * Waits until `ms` have passed on `clock`. Real timers only set the pace (one at most `paceMs`
 * long): on the system clock a short wait is a single timer, and a ManualClock a test moves ends
 * the wait at the next tick instead of after real time.
 */
export async function waitOn(clock: Clock, ms: number, paceMs = 250): Promise<void> {
  const until = clock.now().getTime() + ms;
  for (let left = ms; left > 0; left = until - clock.now().getTime())
    await new Promise((resolve) => setTimeout(resolve, Math.min(left, paceMs)));
}
