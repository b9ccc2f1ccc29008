import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.js';
import { eventually } from './helpers/fixtures.js';
import { backendLabel, startTestApp, testMasterKey, type TestApp } from './helpers/test-app.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Holds the event loop the way a saturated node's would be: busy in ~0.8 s slices for `ms`. */
async function saturate(ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const stop = Date.now() + Math.min(800, end - Date.now());
    while (Date.now() < stop) {
      // busy: no callback, timer or I/O of this process runs meanwhile
    }
    await yieldToLoop();
  }
}

describe(`a saturated node refuses new requests with 503 and Retry-After (${backendLabel})`, () => {
  // Over the memory limit from the start (1 MiB of RSS): saturated for as long as the app runs,
  // so what a refusal looks like is tested without depending on the machine's timing.
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      env: { SOTTO_SATURATION_MAX_RSS_MB: '1', SOTTO_SATURATION_RETRY_AFTER_SECONDS: '7' },
    });
    // The first sample is taken a second after start (later on a busy machine): until /readyz,
    // which is never refused, says so. No API request meanwhile, so none is refused before the test.
    await eventually(async () => {
      const ready = await t.app.inject({ url: '/readyz' });
      return ready.json().checks?.load === 'saturated' ? true : undefined;
    }, 10_000);
  });
  afterAll(async () => t?.close());

  it('refuses API calls and readiness, keeps liveness, and logs once per spell, not per request', async () => {
    const [api, login, ready, live] = [
      await t.app.inject({ url: '/api/v1/recordings' }),
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: 'a@b.c', password: 'x' },
      }),
      await t.app.inject({ url: '/readyz' }),
      await t.app.inject({ url: '/healthz' }),
    ];
    for (const res of [api, login]) {
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('7');
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json()).toMatchObject({ status: 503, code: 'server_busy' });
      // Nothing about the measure or the process reaches the client.
      expect(res.body).not.toMatch(/eventLoop|rss|heap|under.?pressure/i);
    }
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({
      status: 'unavailable',
      checks: { database: 'ok', load: 'saturated' },
    });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const warnings = t.logs.filter((l) => l.includes('node saturated'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, measure: 'rssBytes' });
    // The refusals themselves are not errors in the log (one line per spell, above).
    expect(t.logs.filter((l) => l.includes('"code":"server_busy"'))).toEqual([]);
  });
});

describe(`a node whose event loop lags refuses, then recovers on its own (${backendLabel})`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_SATURATION_MAX_DELAY_MS: '300' } });
  });
  afterAll(async () => t?.close());

  it('answers normally while the loop keeps up, 503 while it is held, and normally again after', async () => {
    // Two samples of an idle loop (the sampler runs each second).
    await sleep(2100);
    expect((await t.app.inject({ url: '/api/v1/nothing-here' })).statusCode).toBe(404);
    // The measure is the mean delay over a second: on a machine busy with other work, the gaps
    // between the held slices can take enough quick samples to pull one window's mean down, so
    // the loop is held again until a request is refused (at most five times).
    let refused = false;
    for (let i = 0; i < 5 && !refused; i++) {
      await saturate(2500);
      const res = await t.app.inject({ url: '/api/v1/nothing-here' });
      refused = res.statusCode === 503;
      if (refused) expect(res.json()).toMatchObject({ code: 'server_busy' });
    }
    expect(refused).toBe(true);
    expect(t.logs.some((l) => l.includes('node saturated') && l.includes('eventLoopDelay'))).toBe(true);
    // Recovered on its own: the first sample after the loop is let go clears it (the next
    // request is answered as soon as that sample is taken, not after a fixed wait).
    await eventually(async () => {
      const res = await t.app.inject({ url: '/api/v1/nothing-here' });
      return res.statusCode === 404 ? true : undefined;
    }, 5000);
    const ready = await t.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ checks: { load: 'ok' } });
  });
});

describe('saturation limits in the configuration', () => {
  const base = { SOTTO_MASTER_KEY: testMasterKey(), SOTTO_PUBLIC_URL: 'https://sotto.test' };

  it('is off by default: a lone node has nowhere else to send the traffic', () => {
    expect(loadConfig(base).saturation).toEqual({
      maxEventLoopDelayMs: 0,
      maxEventLoopUtilization: 0,
      maxRssBytes: 0,
      retryAfterSeconds: 5,
    });
    expect(loadConfig({ ...base, SOTTO_SATURATION_MAX_RSS_MB: '512' }).saturation.maxRssBytes).toBe(
      512 * 1024 * 1024,
    );
  });

  it('names every bad value', () => {
    let err: unknown;
    try {
      loadConfig({
        ...base,
        SOTTO_SATURATION_MAX_UTILIZATION: '1.5',
        SOTTO_SATURATION_MAX_DELAY_MS: '-1',
        SOTTO_SATURATION_RETRY_AFTER_SECONDS: 'soon',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    for (const name of [
      'SOTTO_SATURATION_MAX_UTILIZATION',
      'SOTTO_SATURATION_MAX_DELAY_MS',
      'SOTTO_SATURATION_RETRY_AFTER_SECONDS',
    ]) {
      expect(message).toContain(name);
    }
  });
});
