import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
import { AppError, type ErrorCode } from '../../src/domain/errors.js';

/** Helpers for the audio decoder specs: generated files, exact comparisons, process checks. */

/** A temporary directory removed after the spec file; returns a path maker. */
export function tempFiles(prefix: string): { dir: string; tmp: (name: string) => string } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, tmp: (name) => path.join(dir, name) };
}

export function ffmpeg(...args: string[]): void {
  execFileSync('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...args], {
    stdio: 'pipe',
  });
}

export async function expectAppError(
  promise: Promise<unknown>,
  code: ErrorCode,
  status: number,
): Promise<AppError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe(code);
  expect((err as AppError).status).toBe(status);
  return err as AppError;
}

/** Exact equality of long sample arrays (toEqual is very slow on hundreds of thousands of items). */
export function expectSameSamples(actual: Int16Array | undefined, expected: Int16Array | undefined): void {
  expect(actual?.length).toBe(expected?.length);
  const bytes = (a: Int16Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  expect(bytes(actual!).equals(bytes(expected!))).toBe(true);
}

/** Pearson correlation of two equally long signals (the shorter length is used). */
export function correlation(a: Int16Array, b: Int16Array): number {
  const n = Math.min(a.length, b.length);
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < n; i++) {
    sa += a[i]!;
    sb += b[i]!;
  }
  const ma = sa / n;
  const mb = sb / n;
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i]! - ma;
    const y = b[i]! - mb;
    cov += x * y;
    va += x * x;
    vb += y * y;
  }
  return cov / Math.sqrt(va * vb);
}

export function rms(x: Int16Array, from: number, to: number): number {
  let sum = 0;
  const a = Math.max(0, Math.floor(from * 16000));
  const b = Math.min(x.length, Math.floor(to * 16000));
  for (let i = a; i < b; i++) sum += x[i]! * x[i]!;
  return Math.sqrt(sum / Math.max(1, b - a));
}

/** Zero crossings per second: twice the frequency of a pure tone. */
export function crossingRate(x: Int16Array): number {
  let n = 0;
  for (let i = 1; i < x.length; i++) if (x[i - 1]! < 0 !== x[i]! < 0) n++;
  return n / (x.length / 16000);
}

export function sine16k(freq: number, seconds: number, amplitude = 12000): Int16Array {
  return Int16Array.from({ length: seconds * 16000 }, (_, i) =>
    Math.round(amplitude * Math.sin((2 * Math.PI * freq * i) / 16000)),
  );
}
