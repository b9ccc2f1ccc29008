import { abortError, type Priority } from './engine.js';

/**
 * Warm decoders shared by every recognition on this process: live utterances and upload chunks
 * alike. A decoder is made once (its model loaded) and lent out again and again.
 *
 * Scheduling:
 * - `size` decoders serve batch work (upload chunks): one per core by default, so uploads use the
 *   whole machine. `liveReserve` more exist for live work only, so a live utterance never waits
 *   behind a long upload chunk; live decoding runs at the speaker's pace and costs a fraction of
 *   a core, so the oversubscription is small.
 * - Live requests go first. Batch requests take turns by group (one group = one recording job):
 *   a job with 500 chunks queued does not starve a job that arrived after it.
 * - A decoder that failed (crashed, hung, killed by its watchdog) is thrown away on release and
 *   another is made on the next request; the others go on untouched.
 * - Decoders are made for one kind of work (`create(kind)`), so the factory can run batch
 *   decoders at a lower CPU priority than live ones: with uploads keeping every core busy, a live
 *   utterance's decoder still gets a core at once. Batch work only ever runs on batch decoders;
 *   live work prefers a live decoder, else borrows an idle batch one (the cores are not all busy
 *   then), else makes a live one. At most `2 × size + liveReserve` decoders exist.
 */
export interface DecoderFactory<D> {
  /** A new decoder for `kind` of work, its model loaded. */
  create(kind: Priority): Promise<D>;
  destroy(decoder: D): void;
  alive(decoder: D): boolean;
}

export interface PoolOptions {
  /** Decoders for batch work (≥ 1). */
  size: number;
  /** Extra decoders for live work only (default 1). */
  liveReserve?: number;
}

export interface AcquireOptions {
  priority: Priority;
  /** Batch fairness key (a recording id); requests of one group are served in order. */
  group?: string;
  signal?: AbortSignal;
}

export interface Lease<D> {
  readonly decoder: D;
  /** Gives the decoder back; `broken` (or a dead decoder) discards it instead. Idempotent. */
  release(broken?: boolean): void;
}

interface Waiter<D> {
  priority: Priority;
  resolve: (lease: Lease<D>) => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
}

export interface PoolStats {
  /** Decoders alive (idle or lent). */
  decoders: number;
  busy: number;
  busyBatch: number;
  waitingLive: number;
  waitingBatch: number;
  /** Decoders made since the pool started (a count that grows means decoders are being replaced). */
  created: number;
}

export class DecoderPool<D> {
  private readonly idle: Record<Priority, D[]> = { batch: [], live: [] };
  /** The kind of work each decoder was made for. */
  private readonly kinds = new Map<D, Priority>();
  private readonly lent = new Set<D>();
  private readonly live: Waiter<D>[] = [];
  /** Batch waiters per group, groups in turn order (a served group goes to the back). */
  private readonly batch = new Map<string, Waiter<D>[]>();
  private busy = 0;
  private busyBatch = 0;
  private created = 0;
  private closed = false;
  private readonly size: number;
  private readonly reserve: number;

  constructor(
    private readonly factory: DecoderFactory<D>,
    opts: PoolOptions,
  ) {
    if (!(Number.isInteger(opts.size) && opts.size >= 1))
      throw new RangeError('pool size must be an integer ≥ 1');
    this.size = opts.size;
    this.reserve = opts.liveReserve ?? 1;
  }

  acquire(opts: AcquireOptions): Promise<Lease<D>> {
    if (this.closed) return Promise.reject(new Error('the decoder pool is closed'));
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<Lease<D>>((resolve, reject) => {
      const group = opts.group ?? '';
      const waiter: Waiter<D> = {
        priority: opts.priority,
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      };
      const onAbort = () => {
        if (this.remove(waiter, group)) reject(abortError(signal!));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.priority === 'live') this.live.push(waiter);
      else {
        const queue = this.batch.get(group);
        if (queue) queue.push(waiter);
        else this.batch.set(group, [waiter]);
      }
      this.dispatch();
    });
  }

  stats(): PoolStats {
    let waitingBatch = 0;
    for (const q of this.batch.values()) waitingBatch += q.length;
    return {
      decoders: this.idle.batch.length + this.idle.live.length + this.busy,
      busy: this.busy,
      busyBatch: this.busyBatch,
      waitingLive: this.live.length,
      waitingBatch,
      created: this.created,
    };
  }

  /** The decoders now, idle and lent (for diagnostics: which helper process serves whom). */
  decoders(): { idle: D[]; lent: D[] } {
    return { idle: [...this.idle.batch, ...this.idle.live], lent: [...this.lent] };
  }

  /**
   * Makes up to `count` decoders ahead of need, so the first request does not pay for loading a
   * model: live ones first (up to the reserve: a live utterance is the one that cannot wait), then
   * batch ones (up to the pool's size).
   */
  async warm(count = 1): Promise<void> {
    const have = (kind: Priority) =>
      this.idle[kind].length + [...this.lent].filter((d) => this.kinds.get(d) === kind).length;
    const live = Math.max(0, Math.min(count, this.reserve) - have('live'));
    const batch = Math.max(0, Math.min(count - live, this.size) - have('batch'));
    const kinds: Priority[] = [
      ...Array<Priority>(live).fill('live'),
      ...Array<Priority>(batch).fill('batch'),
    ];
    const made = await Promise.all(kinds.map((kind) => this.make(kind)));
    made.forEach((d) => this.idle[this.kinds.get(d)!].push(d));
    this.dispatch();
  }

  /** Ends every idle decoder now and every lent one as it comes back; waiters are refused. */
  close(): void {
    this.closed = true;
    for (const d of [...this.idle.batch.splice(0), ...this.idle.live.splice(0)]) this.discard(d);
    const err = new Error('the decoder pool is closed');
    for (const w of [...this.live.splice(0), ...[...this.batch.values()].flat()]) {
      w.cleanup();
      w.reject(err);
    }
    this.batch.clear();
  }

  private remove(waiter: Waiter<D>, group: string): boolean {
    waiter.cleanup();
    const list = waiter.priority === 'live' ? this.live : this.batch.get(group);
    const i = list?.indexOf(waiter) ?? -1;
    if (!list || i < 0) return false;
    list.splice(i, 1);
    if (waiter.priority === 'batch' && list.length === 0) this.batch.delete(group);
    return true;
  }

  private next(): Waiter<D> | undefined {
    if (this.live.length > 0 && this.busy < this.size + this.reserve) return this.live.shift();
    if (this.busyBatch >= this.size || this.busy >= this.size + this.reserve) return undefined;
    for (const [group, queue] of this.batch) {
      const waiter = queue.shift()!;
      // Round robin: the group that was just served moves behind the others.
      this.batch.delete(group);
      if (queue.length > 0) this.batch.set(group, queue);
      return waiter;
    }
    return undefined;
  }

  private dispatch(): void {
    for (let w = this.next(); w; w = this.next()) {
      w.cleanup();
      this.grant(w);
    }
  }

  private grant(waiter: Waiter<D>): void {
    const batch = waiter.priority === 'batch';
    this.busy++;
    if (batch) this.busyBatch++;
    // Batch work on batch decoders only; live work on a live one, else an idle batch one.
    const decoder = batch ? this.takeIdle('batch') : (this.takeIdle('live') ?? this.takeIdle('batch'));
    const lend = (d: D) => {
      let released = false;
      this.lent.add(d);
      waiter.resolve({
        decoder: d,
        release: (broken = false) => {
          if (released) return;
          released = true;
          this.lent.delete(d);
          this.busy--;
          if (batch) this.busyBatch--;
          if (broken || this.closed || !this.factory.alive(d)) this.discard(d);
          else this.idle[this.kinds.get(d)!].push(d);
          this.dispatch();
        },
      });
    };
    if (decoder !== undefined) return lend(decoder);
    this.make(waiter.priority).then(lend, (err: unknown) => {
      this.busy--;
      if (batch) this.busyBatch--;
      waiter.reject(err);
      this.dispatch();
    });
  }

  /** An idle decoder of `kind` that is still alive (dead ones found on the way are discarded). */
  private takeIdle(kind: Priority): D | undefined {
    while (this.idle[kind].length > 0) {
      const d = this.idle[kind].pop()!;
      if (this.factory.alive(d)) return d;
      this.discard(d);
    }
    return undefined;
  }

  private async make(kind: Priority): Promise<D> {
    const d = await this.factory.create(kind);
    this.created++;
    this.kinds.set(d, kind);
    return d;
  }

  private discard(d: D): void {
    this.kinds.delete(d);
    this.factory.destroy(d);
  }
}
