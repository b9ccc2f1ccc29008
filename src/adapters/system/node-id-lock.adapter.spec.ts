import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { holdNodeId, NodeIdInUseError } from './node-id-lock.adapter.js';

const MODULE = path.resolve('src/adapters/system/node-id-lock.adapter.ts');

// Linux, where servers run (CI, the container image); elsewhere it holds nothing (last block).
describe('holdNodeId (Linux abstract socket)', () => {
  it('one holder at a time; released, it can be held again', async () => {
    const id = `test-${randomUUID()}`;
    const held = await holdNodeId(id, 'p:');
    await expect(holdNodeId(id, 'p:')).rejects.toBeInstanceOf(NodeIdInUseError);
    // Another prefix (another deployment's Redis keys) is another name.
    const other = await holdNodeId(id, 'q:');
    await other.release();
    await held.release();
    const again = await holdNodeId(id, 'p:');
    await again.release();
  });

  it('another process holds it until it is killed with SIGKILL, then it is free at once', async () => {
    const id = `test-${randomUUID()}`;
    const script = `const m = await import(${JSON.stringify(MODULE)}); await m.holdNodeId(${JSON.stringify(id)}, 'p:'); console.log('held'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (c: Buffer) => c.toString().includes('held') && resolve());
        child.on('close', (code) => reject(new Error(`holder exited with ${code}`)));
      });
      await expect(holdNodeId(id, 'p:')).rejects.toThrow(`node id ${id} is in use by another process`);
      const closed = new Promise((res) => child.on('close', res));
      child.kill('SIGKILL');
      await closed;
      // No shutdown path ran: the kernel let go of the name with the process.
      const held = await holdNodeId(id, 'p:');
      await held.release();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);
});

describe('holdNodeId elsewhere than Linux', () => {
  it('holds nothing (the listening port keeps servers apart there)', async () => {
    const a = await holdNodeId('same', 'p:', 'darwin');
    const b = await holdNodeId('same', 'p:', 'darwin');
    await a.release();
    await b.release();
  });
});
