import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startServe } from '../src/cli/commands/serve.js';
import { backendLabel, freshDatabase, testMasterKey, usingPostgres } from './helpers/test-app.js';

/**
 * `sotto serve`'s shutdown order: the listeners close first (no new work is accepted), then every
 * background loop stops side by side, and one that throws neither skips the others nor keeps the
 * database open.
 */
describe(`serve shutdown (${backendLabel})`, () => {
  const dirs: string[] = [];
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const drop of drops) await drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('closes the transport first, stops every loop even when one throws, logs it, closes the database', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sotto-shutdown-'));
    dirs.push(dir);
    let databaseUrl: string | undefined;
    if (usingPostgres) {
      const fresh = await freshDatabase();
      databaseUrl = fresh.url;
      drops.push(fresh.drop);
    }
    const logs: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _enc, done) {
          logs.push(String(chunk));
          done();
        },
      }),
    );
    const running = await startServe({
      logger,
      env: {
        SOTTO_ENV: 'test',
        SOTTO_DATA_DIR: dir,
        SOTTO_MASTER_KEY: testMasterKey(),
        SOTTO_HOST: '127.0.0.1',
        SOTTO_HTTPS_PORT: '0',
        SOTTO_HTTP_PORT: '0',
        SOTTO_PUBLIC_URL: 'https://sotto.test',
        SOTTO_MIGRATE_ON_START: 'true',
        ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      },
    });
    const order: string[] = [];
    const s = running.runtime.services;
    const wrap = (name: string, target: { stop(): Promise<void> }, fail = false) => {
      const original = target.stop.bind(target);
      target.stop = async () => {
        order.push(name);
        await original();
        if (fail) throw new Error('boom');
      };
    };
    const closeTransport = running.transport.close.bind(running.transport);
    running.transport.close = async () => {
      order.push('transport');
      await closeTransport();
    };
    wrap('jobs', s.jobs, true); // the first in the old order: it used to skip all the rest
    wrap('orgExports', s.orgExports);
    wrap('webhooks', s.webhooks, true);
    wrap('scheduler', s.scheduler);
    const closeRuntime = running.runtime.close.bind(running.runtime);
    running.runtime.close = async () => {
      order.push('runtime');
      await closeRuntime();
    };

    await running.close();
    expect(order[0]).toBe('transport');
    expect(order.at(-1)).toBe('runtime');
    expect([...order].sort()).toEqual([
      'jobs',
      'orgExports',
      'runtime',
      'scheduler',
      'transport',
      'webhooks',
    ]);
    const failures = logs.filter((l) => l.includes('stopping failed'));
    expect(failures.map((l) => (JSON.parse(l) as { service: string }).service).sort()).toEqual([
      'jobs',
      'webhooks',
    ]);
    // The listeners are closed: nothing accepts connections any more.
    expect(running.transport.app.server.listening).toBe(false);
    // A second close is the same (finished) shutdown.
    await running.close();
    expect(order.filter((o) => o === 'runtime')).toHaveLength(1);
  });
});
