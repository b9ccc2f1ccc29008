import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { scheduledTaskRepository } from '../../repositories/lifecycle/scheduled-task.repository.js';

/**
 * Periodic maintenance shared by every node (retention, sweeps, account deletion). Each named
 * task has an interval; a run is claimed in the database (scheduled_tasks) so that with any
 * number of nodes exactly one runs a task per interval. A node that dies mid-run holds the task
 * until `locked_until` (the lease) passes, then another node takes it. Tasks must still be safe
 * to run twice (a run longer than its lease can overlap the next one): they act through
 * transactions that re-check their own preconditions.
 *
 * `sotto serve` calls start()/stop(); tests call runDue() with a ManualClock.
 */
export interface ScheduledTask {
  /** Stable name, the row's key: lower case, digits, `.`, `_`, `-`. */
  name: string;
  /** Seconds between the end of one run and the next; defaults to the scheduler's interval. */
  intervalSeconds?: number;
  /** How long a claim holds before another node may take the task; default max(interval, 600). */
  leaseSeconds?: number;
  run(): Promise<void>;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export class SchedulerService {
  private readonly tasks = new Map<string, ScheduledTask>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<string[]> | undefined;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>,
    /** SOTTO_MAINTENANCE_INTERVAL_SECONDS: how often this node looks for due tasks, and the default task interval. */
    private readonly intervalSeconds: number,
  ) {}

  register(task: ScheduledTask): void {
    if (!NAME.test(task.name)) throw new AppError('internal', `invalid task name ${task.name}`);
    if (this.tasks.has(task.name)) throw new AppError('internal', `task ${task.name} registered twice`);
    this.tasks.set(task.name, task);
  }

  get taskNames(): string[] {
    return [...this.tasks.keys()];
  }

  /**
   * Runs every registered task that is due and that this node wins the claim for, one after the
   * other; returns the names it ran. A failing task is logged (code only) and rescheduled like a
   * successful one: the next interval tries again. Overlapping calls share one pass.
   */
  runDue(): Promise<string[]> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Looks for due tasks now and then every interval. */
  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.runDue().catch((err: unknown) => this.logger.error({ err }, 'maintenance pass failed'));
    };
    this.timer = setInterval(tick, this.intervalSeconds * 1000);
    this.timer.unref();
    setImmediate(tick);
  }

  /** Stops looking and waits for a pass in progress (its tasks finish and release their claims). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<string[]> {
    const ran: string[] = [];
    for (const task of this.tasks.values()) {
      const interval = (task.intervalSeconds ?? this.intervalSeconds) * 1000;
      const lease = (task.leaseSeconds ?? Math.max(task.intervalSeconds ?? this.intervalSeconds, 600)) * 1000;
      const now = this.clock.now();
      const won = await withSystem(this.db, async (tx) => {
        await scheduledTaskRepository.ensure(tx, task.name, now);
        return scheduledTaskRepository.claim(tx, task.name, now, new Date(now.getTime() + lease));
      });
      if (!won) continue;
      let error: string | null = null;
      try {
        await task.run();
      } catch (err) {
        error = err instanceof AppError ? err.code : err instanceof Error ? err.name : 'error';
        this.logger.error({ err, task: task.name }, 'maintenance task failed');
      }
      const next = new Date(this.clock.now().getTime() + interval);
      const kept = await withSystem(this.db, (tx) =>
        scheduledTaskRepository.finish(tx, task.name, now, next, error),
      );
      // It ran past its lease and another node has the task now: that run reschedules it.
      if (!kept) this.logger.warn({ task: task.name }, 'maintenance task outlived its lease');
      ran.push(task.name);
    }
    return ran;
  }
}
