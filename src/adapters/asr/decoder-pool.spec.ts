import { describe, expect, it } from 'vitest';
import { DecoderPool, type DecoderFactory } from './decoder-pool.js';

/**
 * The pool's scheduling rules with plain objects as decoders: the rules are what is tested here
 * (test/asr-sphinx-warm.spec.ts runs the same pool over real pocketsphinx helpers).
 */
interface Fake {
  id: number;
  alive: boolean;
  kind: 'batch' | 'live';
}

function factory(): DecoderFactory<Fake> & { made: Fake[]; destroyed: Fake[] } {
  const made: Fake[] = [];
  const destroyed: Fake[] = [];
  return {
    made,
    destroyed,
    create: (kind) => {
      const d = { id: made.length, alive: true, kind };
      made.push(d);
      return Promise.resolve(d);
    },
    destroy: (d) => {
      d.alive = false;
      destroyed.push(d);
    },
    alive: (d) => d.alive,
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('DecoderPool', () => {
  it('reuses a decoder instead of making another', async () => {
    const f = factory();
    const pool = new DecoderPool(f, { size: 2 });
    const a = await pool.acquire({ priority: 'batch' });
    a.release();
    const b = await pool.acquire({ priority: 'batch' });
    expect(b.decoder).toBe(a.decoder);
    expect(f.made).toHaveLength(1);
  });

  it('caps batch work at `size` and keeps the reserve for live work', async () => {
    const pool = new DecoderPool(factory(), { size: 2, liveReserve: 1 });
    const held = [await pool.acquire({ priority: 'batch' }), await pool.acquire({ priority: 'batch' })];
    let third = false;
    void pool.acquire({ priority: 'batch' }).then(() => (third = true));
    const live = await pool.acquire({ priority: 'live' });
    await tick();
    expect(third).toBe(false);
    expect(pool.stats()).toMatchObject({ busy: 3, busyBatch: 2, waitingBatch: 1 });
    live.release();
    await tick();
    expect(third).toBe(false); // a live decoder coming back does not widen the batch cap
    held[0]!.release();
    await tick();
    expect(third).toBe(true);
  });

  it('serves live requests before batch ones, and batch groups in turn', async () => {
    const pool = new DecoderPool(factory(), { size: 1, liveReserve: 0 });
    const first = await pool.acquire({ priority: 'batch', group: 'A' });
    const order: string[] = [];
    const wait = (priority: 'live' | 'batch', group: string, tag: string) =>
      pool.acquire({ priority, group }).then((lease) => {
        order.push(tag);
        lease.release();
      });
    // A queues three chunks before B and the live request arrive.
    const all = [
      wait('batch', 'A', 'A1'),
      wait('batch', 'A', 'A2'),
      wait('batch', 'A', 'A3'),
      wait('batch', 'B', 'B1'),
      wait('batch', 'B', 'B2'),
      wait('live', 'L', 'live'),
    ];
    first.release();
    await Promise.all(all);
    expect(order).toEqual(['live', 'A1', 'B1', 'A2', 'B2', 'A3']);
  });

  it('throws a broken or dead decoder away and makes a new one', async () => {
    const f = factory();
    const pool = new DecoderPool(f, { size: 1 });
    const a = await pool.acquire({ priority: 'batch' });
    a.release(true);
    expect(f.destroyed).toEqual([a.decoder]);
    const b = await pool.acquire({ priority: 'batch' });
    expect(b.decoder).not.toBe(a.decoder);
    b.decoder.alive = false; // died while lent (a crash)
    b.release();
    const c = await pool.acquire({ priority: 'batch' });
    expect(c.decoder.id).toBe(2);
    expect(pool.stats().created).toBe(3);
  });

  it('an aborted wait leaves the queue at once and rejects with the reason', async () => {
    const pool = new DecoderPool(factory(), { size: 1, liveReserve: 0 });
    const held = await pool.acquire({ priority: 'batch' });
    const ac = new AbortController();
    const waiting = pool.acquire({ priority: 'batch', group: 'x', signal: ac.signal });
    ac.abort(new Error('job cancelled'));
    await expect(waiting).rejects.toThrow('job cancelled');
    expect(pool.stats().waitingBatch).toBe(0);
    held.release();
    expect(pool.stats().busy).toBe(0);
  });

  it('a decoder that cannot be made rejects that request only', async () => {
    let fail = true;
    const pool = new DecoderPool<Fake>(
      {
        create: () =>
          fail
            ? Promise.reject(new Error('model missing'))
            : Promise.resolve({ id: 9, alive: true, kind: 'batch' }),
        destroy: () => undefined,
        alive: (d) => d.alive,
      },
      { size: 1 },
    );
    await expect(pool.acquire({ priority: 'batch' })).rejects.toThrow('model missing');
    fail = false;
    await expect(pool.acquire({ priority: 'batch' })).resolves.toMatchObject({ decoder: { id: 9 } });
  });

  it('close refuses waiters and ends idle decoders', async () => {
    const f = factory();
    const pool = new DecoderPool(f, { size: 1, liveReserve: 0 });
    const held = await pool.acquire({ priority: 'batch' });
    const waiting = pool.acquire({ priority: 'batch' });
    pool.close();
    await expect(waiting).rejects.toThrow(/closed/);
    held.release();
    expect(f.destroyed).toEqual([held.decoder]);
    await expect(pool.acquire({ priority: 'live' })).rejects.toThrow(/closed/);
  });

  it('runs batch work on batch decoders only; live work on a live one, else an idle batch one', async () => {
    const f = factory();
    const pool = new DecoderPool(f, { size: 2, liveReserve: 1 });
    // Nothing busy: a live utterance borrows an idle batch decoder instead of loading a model.
    const a = await pool.acquire({ priority: 'batch' });
    a.release();
    const borrowed = await pool.acquire({ priority: 'live' });
    expect(borrowed.decoder).toBe(a.decoder);
    borrowed.release();
    // Every batch decoder busy: live gets (and keeps) a decoder made for live work.
    const held = [await pool.acquire({ priority: 'batch' }), await pool.acquire({ priority: 'batch' })];
    expect(held.map((h) => h.decoder.kind)).toEqual(['batch', 'batch']);
    const live = await pool.acquire({ priority: 'live' });
    expect(live.decoder.kind).toBe('live');
    live.release();
    held.forEach((h) => h.release());
    // The live decoder is idle now, but batch work never runs on it.
    const b = [await pool.acquire({ priority: 'batch' }), await pool.acquire({ priority: 'batch' })];
    expect(b.map((h) => h.decoder.kind)).toEqual(['batch', 'batch']);
    expect((await pool.acquire({ priority: 'live' })).decoder).toBe(live.decoder);
    expect(f.made.map((d) => d.kind)).toEqual(['batch', 'batch', 'live']);
  });

  it('warms the live reserve first, then batch decoders up to the size', async () => {
    const f = factory();
    const pool = new DecoderPool(f, { size: 2, liveReserve: 1 });
    await pool.warm(1);
    expect(f.made.map((d) => d.kind)).toEqual(['live']);
    await pool.warm(5);
    expect(f.made.map((d) => d.kind)).toEqual(['live', 'batch', 'batch']);
    await pool.warm(5);
    expect(f.made).toHaveLength(3);
    expect(pool.stats()).toMatchObject({ decoders: 3, busy: 0 });
  });
});
