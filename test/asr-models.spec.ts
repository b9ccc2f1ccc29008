import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerModelCommands } from '../src/cli/commands/models-command.js';
import { listModels, pullModel } from '../src/cli/commands/models.js';
import { CliError } from '../src/cli/cli-error.js';
import { AppError } from '../src/domain/errors.js';
import {
  ModelStore,
  WHISPER_MODELS,
  resolveWhisperModel,
  type DownloadProgress,
} from '../src/adapters/storage/model.adapter.js';
import { ModelService } from '../src/services/transcription/model.service.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { inspectGgmlModel } from '../src/adapters/asr/ggml-header.js';

/**
 * `sotto models pull` against a local HTTP server that serves a small file the way the model host
 * does (Content-Length, Range → 206 with Content-Range). It can cut a transfer off midway, ignore
 * Range, or serve other bytes than the catalogue's digest promises.
 */
const FILE = 'ggml-test.en.bin';
const content = randomBytes(3 * 1024 * 1024 + 123);
const digest = createHash('sha256').update(content).digest('hex');

interface Seen {
  range: string | undefined;
  path: string;
}
let seen: Seen[] = [];
let mode: { cutAfter?: number; ignoreRange?: boolean; body?: Buffer; status?: number } = {};
let server: http.Server;
let baseUrl: string;
let tmp: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ range: req.headers.range, path: req.url ?? '' });
    if (mode.status) {
      res.writeHead(mode.status).end('nope');
      return;
    }
    if (req.url !== `/models/${FILE}`) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    const body = mode.body ?? content;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (m && !mode.ignoreRange) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'accept-ranges': 'bytes',
      });
    } else {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    }
    if (mode.cutAfter !== undefined) {
      const cut = mode.cutAfter;
      mode.cutAfter = undefined; // only the first transfer breaks
      res.write(body.subarray(start, start + cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  seen = [];
  mode = {};
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'asr-models-spec-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The manifest's installedAt comes from the injected clock, not the wall clock. */
const clock = new ManualClock(new Date('2026-03-01T12:00:00.000Z'));

function service(opts: { publishedDigest?: string | undefined } = { publishedDigest: digest }) {
  const sha256 = opts.publishedDigest;
  const repo = new ModelStore(path.join(tmp, 'models'));
  return new ModelService(repo, clock, {
    baseUrl,
    catalog: { 'test.en': { file: FILE, sha256, approxMiB: 3 } },
  });
}

describe('models pull', () => {
  it('downloads with progress, verifies SHA-256, installs atomically and records the manifest', async () => {
    const progress: DownloadProgress[] = [];
    const r = await service().pull('test.en', { onProgress: (p) => progress.push({ ...p }) });
    expect(r).toMatchObject({
      name: 'test.en',
      sha256: digest,
      bytes: content.length,
      alreadyInstalled: false,
    });
    expect(r.path).toBe(path.join(tmp, 'models', FILE));
    expect(readFileSync(r.path).equals(content)).toBe(true);
    expect(existsSync(`${r.path}.part`)).toBe(false);
    expect(existsSync(`${r.path}.part.lock`)).toBe(false);

    expect(progress.length).toBeGreaterThan(2);
    expect(progress.every((p) => p.total === content.length && p.resumedFrom === 0)).toBe(true);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.received).toBeGreaterThanOrEqual(progress[i - 1]!.received);
    }
    expect(progress.at(-1)!.received).toBe(content.length);

    const manifest = JSON.parse(readFileSync(path.join(tmp, 'models', 'manifest.json'), 'utf8')) as Record<
      string,
      { sha256: string; bytes: number; source: string; installedAt: string }
    >;
    expect(manifest['test.en']).toMatchObject({
      sha256: digest,
      bytes: content.length,
      source: `${baseUrl}/${FILE}`,
      installedAt: '2026-03-01T12:00:00.000Z',
    });

    // Pulling again does not download again.
    seen = [];
    expect(await service().pull('test.en')).toMatchObject({ alreadyInstalled: true, sha256: digest });
    expect(seen).toEqual([]);
    // --force does.
    expect(await service().pull('test.en', { force: true })).toMatchObject({ alreadyInstalled: false });
    expect(seen).toHaveLength(1);
  });

  it('an interrupted download is kept and resumed with an HTTP Range request', async () => {
    mode.cutAfter = 1_000_000;
    const err = await service()
      .pull('test.en')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('model_download_failed');
    expect((err as Error).message).toMatch(
      /broke off at \d+ of \d+ bytes.*run the same command again to resume/,
    );
    const part = path.join(tmp, 'models', `${FILE}.part`);
    const kept = statSync(part).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(content.length);
    expect(existsSync(path.join(tmp, 'models', FILE))).toBe(false);

    seen = [];
    const progress: DownloadProgress[] = [];
    const r = await service().pull('test.en', { onProgress: (p) => progress.push({ ...p }) });
    expect(seen).toEqual([{ range: `bytes=${kept}-`, path: `/models/${FILE}` }]);
    expect(progress[0]).toEqual({ received: kept, total: content.length, resumedFrom: kept });
    expect(r.sha256).toBe(digest);
    expect(readFileSync(r.path).equals(content)).toBe(true);
    expect(existsSync(part)).toBe(false);
  });

  it('a server that ignores Range makes the download start over, still verified', async () => {
    const part = path.join(tmp, 'models', `${FILE}.part`);
    mode.cutAfter = 500_000;
    await service()
      .pull('test.en')
      .catch(() => undefined);
    expect(statSync(part).size).toBeGreaterThan(0);
    mode.ignoreRange = true;
    const r = await service().pull('test.en');
    expect(seen.at(-1)!.range).toMatch(/^bytes=\d+-$/);
    expect(readFileSync(r.path).equals(content)).toBe(true);
  });

  it('a partial file that is already complete is verified without downloading it again', async () => {
    mkdirModels();
    writeFileSync(path.join(tmp, 'models', `${FILE}.part`), content);
    const r = await service().pull('test.en');
    expect(seen).toEqual([{ range: `bytes=${content.length}-`, path: `/models/${FILE}` }]);
    expect(r.sha256).toBe(digest);
  });

  it('a SHA-256 mismatch is refused: nothing installed, the partial file removed', async () => {
    const flipped = Buffer.from(content);
    flipped.writeUInt8(flipped.readUInt8(12345) ^ 0xff, 12345); // one flipped byte
    mode.body = flipped;
    const err = await service()
      .pull('test.en')
      .catch((e: unknown) => e);
    expect((err as AppError).code).toBe('model_download_failed');
    expect((err as Error).message).toMatch(new RegExp(`failed its integrity check.*expected ${digest}`));
    expect(existsSync(path.join(tmp, 'models', FILE))).toBe(false);
    expect(existsSync(path.join(tmp, 'models', `${FILE}.part`))).toBe(false);
    expect(existsSync(path.join(tmp, 'models', 'manifest.json'))).toBe(false);
  });

  it('without a published digest, the first download’s digest is recorded and later ones must match it', async () => {
    const first = await service({ publishedDigest: undefined }).pull('test.en');
    expect(first).toMatchObject({ sha256: digest, publishedDigest: false });
    mode.body = randomBytes(content.length);
    await expect(service({ publishedDigest: undefined }).pull('test.en', { force: true })).rejects.toThrow(
      /failed its integrity check/,
    );
    expect(readFileSync(first.path).equals(content)).toBe(true);
  });

  it('HTTP errors and unknown names are clear', async () => {
    mode.status = 404;
    await expect(service().pull('test.en')).rejects.toThrow(/answered HTTP 404 for ggml-test.en.bin/);
    await expect(service().pull('huge.en')).rejects.toThrow(/unknown model "huge.en": choose one of test.en/);
  });

  it('list shows installed, verified and partial downloads, and hand-placed .bin files', async () => {
    const svc = service();
    expect(await svc.list()).toEqual([
      {
        name: 'test.en',
        file: FILE,
        approxMiB: 3,
        installed: false,
        bytes: undefined,
        verified: false,
        partialBytes: 0,
      },
    ]);
    mode.cutAfter = 400_000;
    await svc.pull('test.en').catch(() => undefined);
    expect((await svc.list())[0]!.partialBytes).toBeGreaterThan(0);
    await svc.pull('test.en');
    writeFileSync(path.join(tmp, 'models', 'custom.bin'), 'x');
    const rows = await svc.list();
    expect(rows[0]).toMatchObject({
      installed: true,
      verified: true,
      bytes: content.length,
      partialBytes: 0,
    });
    expect(rows[1]).toMatchObject({ name: 'custom.bin', installed: true, verified: false });
    // A model file changed after download is no longer "verified".
    writeFileSync(path.join(tmp, 'models', FILE), content.subarray(0, 100));
    expect((await svc.list())[0]!.verified).toBe(false);
  });
});

function mkdirModels() {
  mkdirSync(path.join(tmp, 'models'), { recursive: true });
}

describe('catalogue and model files', () => {
  it('names the five supported models with 64-hex SHA-256 digests', () => {
    expect(Object.keys(WHISPER_MODELS)).toEqual([
      'tiny.en',
      'base.en',
      'small.en',
      'medium.en',
      'large-v3-turbo',
    ]);
    for (const entry of Object.values(WHISPER_MODELS)) expect(entry.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('resolves SOTTO_WHISPER_MODEL values and refuses anything else', () => {
    expect(resolveWhisperModel('/data/models', 'base.en')).toMatchObject({
      name: 'base.en',
      path: '/data/models/ggml-base.en.bin',
    });
    expect(resolveWhisperModel('/data/models', '/opt/m/ggml-x.bin').path).toBe('/opt/m/ggml-x.bin');
    expect(resolveWhisperModel('/data/models', 'mine.bin').path).toBe('/data/models/mine.bin');
    expect(() => resolveWhisperModel('/data/models', '../etc/passwd')).toThrow(/unknown whisper model/);
    expect(() => resolveWhisperModel('/data/models', 'huge')).toThrow(/unknown whisper model/);
  });

  it('inspectGgmlModel refuses random bytes, GGUF files, tiny files and impossible headers', async () => {
    const write = (name: string, buf: Buffer) => {
      const f = path.join(tmp, name);
      writeFileSync(f, buf);
      return f;
    };
    const header = (values: number[]) => {
      const b = Buffer.alloc(2 * 1024 * 1024);
      b.writeUInt32LE(0x67676d6c, 0);
      values.forEach((v, i) => b.writeInt32LE(v, 4 + i * 4));
      return b;
    };
    const tinyEn = [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1];
    expect(await inspectGgmlModel(path.join(tmp, 'none.bin'))).toEqual({
      ok: false,
      problem: 'the file does not exist',
    });
    expect(await inspectGgmlModel(write('small.bin', Buffer.alloc(100)))).toMatchObject({
      problem: /too small/,
    });
    expect(await inspectGgmlModel(write('rand.bin', randomBytes(2 * 1024 * 1024)))).toMatchObject({
      problem: /not a ggml model/,
    });
    const gguf = Buffer.alloc(2 * 1024 * 1024);
    gguf.write('GGUF', 0, 'ascii');
    expect(await inspectGgmlModel(write('g.bin', gguf))).toMatchObject({ problem: /GGUF/ });
    // The header whose unknown weight type makes whisper.cpp abort the process.
    expect(await inspectGgmlModel(write('ftype.bin', header([...tinyEn.slice(0, 10), 99])))).toMatchObject({
      problem: /header does not describe a whisper model/,
    });
    expect(await inspectGgmlModel(write('ok.bin', header(tinyEn)))).toEqual({
      ok: true,
      header: {
        nVocab: 51864,
        nAudioState: 384,
        nAudioLayer: 4,
        nTextLayer: 4,
        nMels: 80,
        ftype: 1,
        multilingual: false,
      },
    });
  });
});

describe('sotto models (CLI)', () => {
  it('pull shows progress (a line per 10% off a terminal) and what was verified; list marks the configured model', async () => {
    const program = new Command().exitOverride();
    const svc = service();
    registerModelCommands(program, () => svc);
    const stderrLines: string[] = [];
    const printed: string[] = [];
    // The command writes progress to stderr and results to stdout.
    const write = process.stderr.write.bind(process.stderr);
    const log = console.log;
    process.stderr.write = ((s: string) => (
      stderrLines.push(String(s)),
      true
    )) as typeof process.stderr.write;
    console.log = (s: string) => printed.push(s);
    try {
      await program.parseAsync(['node', 'sotto', 'models', 'pull', 'test.en']);
    } finally {
      process.stderr.write = write;
      console.log = log;
    }
    const progress = stderrLines.join('').trim().split('\n');
    expect(progress.length).toBeGreaterThanOrEqual(5);
    expect(progress.at(-1)).toMatch(/^test\.en \[#{20}\] 100% 3\.0\/3\.0 MiB [\d.]+ MiB\/s$/);
    expect(printed[0]).toMatch(/^Installed test.en: .*ggml-test.en.bin \(3.0 MiB\)$/);
    expect(printed[1]).toBe(`SHA-256 ${digest} matches the published digest.`);

    const listed: string[] = [];
    await listModels(svc, 'test.en', (l) => listed.push(l));
    expect(listed[1]).toMatch(/^\* test.en\s+installed, verified \(3.0 MiB\)$/);
  });

  it('pull turns failures into one-line CLI errors', async () => {
    mode.status = 500;
    await expect(
      pullModel(service(), 'test.en', { print: () => undefined, progress: { update() {}, done() {} } }),
    ).rejects.toThrow(CliError);
    await expect(
      pullModel(service(), 'nope', { print: () => undefined, progress: { update() {}, done() {} } }),
    ).rejects.toThrow(/unknown model "nope"/);
  });
});
