import { systemClock } from '../src/adapters/system/clock.adapter.js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LivePublishQueue } from '../src/services/live/live-publish-queue.js';

/**
 * The per-recording lane that holds live events through an outage (issue 17, item 5): order kept,
 * later events queued behind the first that met the outage, the bound dropping partials first,
 * and the recording's end run after what waits. The end-to-end case (PostgreSQL cut under a live
 * stream) is test/outage-live-publish.spec.ts.
 */
const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function store() {
  let down = false;
  const sent: string[] = [];
  return {
    sent,
    set down(v: boolean) {
      down = v;
    },
    send: (name: string) => async () => {
      if (down) throw refused();
      sent.push(name);
    },
  };
}

describe('live publish queue', () => {
  it('holds events in order through an outage and sends them once the store answers', async () => {
    const s = store();
    const q = new LivePublishQueue(pino({ level: 'silent' }), systemClock, { max: 100, retryMs: 20 });
    await q.publish('r', s.send('1'));
    s.down = true;
    await q.publish('r', s.send('2'));
    await q.publish('r', s.send('3'));
    // A non-outage error of a publish with no lane is the caller's.
    await expect(q.publish('other', () => Promise.reject(new Error('bad')))).rejects.toThrow('bad');
    await q.after('r', s.send('end'));
    expect(q.waiting('r')).toBe(3);
    await sleep(80);
    expect(s.sent).toEqual(['1']);
    s.down = false;
    await q.publish('r', s.send('4')); // behind the held ones, not before
    await sleep(80);
    expect(s.sent).toEqual(['1', '2', '3', 'end', '4']);
    expect(q.waiting('r')).toBe(0);
    await q.publish('r', s.send('5'));
    expect(s.sent.at(-1)).toBe('5');
  });

  it('is bounded: the oldest partial goes first, then the oldest event', async () => {
    const s = store();
    const q = new LivePublishQueue(pino({ level: 'silent' }), systemClock, { max: 3, retryMs: 20 });
    s.down = true;
    await q.publish('r', s.send('s1'));
    await q.publish('r', s.send('p1'), true);
    await q.publish('r', s.send('s2'));
    await q.publish('r', s.send('s3')); // full: p1 goes
    await q.publish('r', s.send('s4')); // full, no partial: s1 goes
    s.down = false;
    await sleep(80);
    expect(s.sent).toEqual(['s2', 's3', 's4']);
    q.close();
  });
});
