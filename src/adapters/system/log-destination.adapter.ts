import { writeSync } from 'node:fs';

/**
 * Where the server's log lines go: a file descriptor (stdout), written synchronously like pino's
 * default, but never at the cost of the process. pino's default destination (sonic-boom) spins on
 * the main thread retrying a write that fails, then throws the error (ENOSPC on a full disk, EIO)
 * out of an event no one handles: a full log disk froze, then crashed, the server. Here a line
 * that cannot be written at once (ENOSPC, EIO, EAGAIN on a full non-blocking pipe…) is dropped
 * and counted; the first drop of an outage says so once on stderr, and the first line written
 * after it reports how many were lost. Logging never blocks and never throws.
 */
export class SafeLogDestination {
  /** Lines dropped since the process started. */
  dropped = 0;
  /** Drops not yet reported in the log (reported by the first line that gets through). */
  private unreported = 0;

  constructor(
    private readonly fd: number,
    private readonly noticeFd: number | undefined = 2,
  ) {}

  write(line: string): void {
    if (this.unreported > 0) {
      const note = JSON.stringify({
        level: 40,
        time: new Date().toISOString(),
        service: 'sotto',
        dropped: this.unreported,
        msg: 'log lines were dropped: the log destination failed (disk full or unwritable)',
      });
      if (!this.put(`${note}\n`)) return this.drop();
      this.unreported = 0;
    }
    if (!this.put(line)) this.drop();
  }

  /** pino calls these on its streams when present; lines are never buffered here. */
  flush(cb?: (err?: Error) => void): void {
    cb?.();
  }

  flushSync(): void {}

  private drop(): void {
    if (this.unreported === 0 && this.noticeFd !== undefined) {
      try {
        writeSync(
          this.noticeFd,
          'sotto: log lines are being dropped: the log destination cannot be written\n',
        );
      } catch {
        // stderr may be the same full disk: nothing more can be done.
      }
    }
    this.dropped++;
    this.unreported++;
  }

  private put(text: string): boolean {
    const bytes = Buffer.from(text);
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(this.fd, bytes, written);
      return true;
    } catch {
      // A line cut short would glue onto the next one: end it so each stays parseable.
      if (written > 0) {
        try {
          writeSync(this.fd, '\n');
        } catch {
          // Nothing more can be done.
        }
      }
      return false;
    }
  }
}
