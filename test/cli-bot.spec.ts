import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wordErrorRate } from '../src/domain/wer.js';
import { freshIp, signup } from './helpers/auth-client.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { readCorpusMono } from './helpers/corpus-audio.js';
import { writeCorpusClip } from './helpers/corpus-clip.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { listenTls, type Listening } from './helpers/live.js';
import { pollRecording, recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * `sotto bot` as a user runs it: the real CLI in a child process against the real server
 * listening with TLS (sphinx engine), judged by exit status, stdout (segments) and stderr, and by
 * the recording it leaves behind. A TCP proxy between them drops the connection mid-stream.
 */
const MAIN = path.resolve('src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface BotProcess {
  result: Promise<Run>;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
}

function startBot(
  args: string[],
  env: Record<string, string>,
  stdin?: Buffer,
  timeoutMs = 180_000,
): BotProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'bot', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  if (stdin) child.stdin!.end(stdin);
  const result = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sotto bot did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { result, stderr: () => stderr, kill: (s) => child.kill(s) };
}

/** A TCP proxy that can cut every connection once and refuse new ones for a while (a network drop). */
async function tcpProxy(target: number) {
  const sockets = new Set<net.Socket>();
  let upBytes = 0;
  let dropAfter = Infinity;
  let drops = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    const forget = () => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    upstream.pipe(client);
    client.on('data', (d: Buffer) => {
      upBytes += d.length;
      if (upBytes > dropAfter) {
        dropAfter = Infinity;
        drops++;
        for (const s of sockets) s.destroy();
        // Refuse connections for a moment: the bot's first reconnect attempts fail.
        server.close();
        setTimeout(() => server.listen(port, '127.0.0.1'), 1500);
        return;
      }
      upstream.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    dropOnceAfter: (bytes: number) => (dropAfter = upBytes + bytes),
    drops: () => drops,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const segmentLine = /^\[\d\d:\d\d\.\d\] (.+?): (.+)$/;
const spoken = (stdout: string) =>
  stdout
    .split('\n')
    .map((l) => segmentLine.exec(l)?.[2])
    .filter((x): x is string => x !== undefined)
    .join(' ');
const hasScript = spawnSync('script', ['--version']).status === 0;
const recordingIdOf = (stderr: string) => /live recording ([0-9a-f-]{36})/.exec(stderr)?.[1];

describe(`sotto bot (${backendLabel})`, () => {
  let t: TestApp;
  let server: Listening;
  let user: TestUser;
  let dir: string;
  let caFile: string;
  /**
   * The first three turns of call-02 (~16 s of its real speech, cut in a pause): the streamed
   * file of the --file tests. Half the recognizer work of the whole call for each of the live
   * pass, the job and the upload they are compared with; still several segments and a resume.
   */
  let clip: ReturnType<typeof writeCorpusClip>;
  const ip = freshIp();

  beforeAll(async () => {
    const { env } = recordingEnv({
      SOTTO_LIVE_MAX_PER_ORG: '20',
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
    });
    t = await startTestApp({ env });
    server = await listenTls(t.services);
    user = await createOrgWithUser(t.services, { role: 'owner' });
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-bot-'));
    caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, server.ca);
    if (hasCorpus) clip = writeCorpusClip('call-02', 3, dir);
    await t.services.jobs.start();
  });
  afterAll(async () => {
    await t?.services.jobs.stop();
    await server?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const api = (port = server.port) => `https://127.0.0.1:${port}`;
  const env = () => ({ SOTTO_TOKEN: user.accessToken });
  const get = (url: string) =>
    t.app.inject({ method: 'GET', url, headers: bearer(user.accessToken), remoteAddress: ip });
  const untilDone = (id: string) =>
    pollRecording(t, user.accessToken, ip, id, (b) => b.status === 'done' || b.status === 'failed', 180_000);
  const transcript = async (id: string) =>
    (
      (await get(`/api/v1/recordings/${id}/transcript`)).json() as {
        segments: { speaker: string; start: number; end: number; text: string }[];
      }
    ).segments.map(({ speaker, start, end, text }) => ({ speaker, start, end, text }));

  /** The same file uploaded: the reference the live recordings must equal. */
  let uploadRef: Promise<{ duration: number; segments: Awaited<ReturnType<typeof transcript>> }> | undefined;
  const reference = () =>
    (uploadRef ??= (async () => {
      const res = await upload(t, user.accessToken, ip, readFileSync(clip.file));
      expect(res.statusCode).toBe(202);
      const id = (res.json() as { id: string }).id;
      const done = await untilDone(id);
      return { duration: done.durationSeconds as number, segments: await transcript(id) };
    })());

  it.skipIf(!hasCorpus)(
    `--file --fast: segments on stdout, the recording queued then done like an upload ${hasCorpus ? '' : noCorpusReason}`,
    async () => {
      const run = await startBot(
        ['--api', api(), '--ca', caFile, '--file', clip.file, '--fast', '--title', 'Bot call'],
        env(),
      ).result;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/stopped: queued/);
      const lines = run.stdout.trim().split('\n');
      expect(lines.length).toBeGreaterThanOrEqual(3);
      for (const l of lines) expect(l).toMatch(segmentLine);
      expect(lines.every((l) => segmentLine.exec(l)?.[1] === 'Speaker 1')).toBe(true);
      const wer = wordErrorRate(clip.text, spoken(run.stdout)).wer;
      expect(wer).toBeLessThan(0.5);
      const id = recordingIdOf(run.stderr)!;
      expect(id).toBeDefined();
      const done = await untilDone(id);
      expect(done).toMatchObject({ status: 'done', title: 'Bot call', channels: 1 });
      const upl = await reference();
      expect(done.durationSeconds).toBe(upl.duration);
      expect(await transcript(id)).toEqual(upl.segments);
    },
    300_000,
  );

  it.skipIf(!hasCorpus)(
    `a dropped connection mid-stream: reconnects, resumes, same audio and transcript as the upload ${hasCorpus ? '' : noCorpusReason}`,
    async () => {
      const proxy = await tcpProxy(server.port);
      try {
        // The clip is ~0.5 MB of PCM: cut after about a third of it went up.
        expect(clip.pcm.byteLength).toBeGreaterThan(3 * 170_000);
        proxy.dropOnceAfter(170_000);
        const run = await startBot(
          ['--api', api(proxy.port), '--ca', caFile, '--file', clip.file, '--fast'],
          env(),
        ).result;
        expect(run.code, run.stderr).toBe(0);
        expect(proxy.drops()).toBe(1);
        expect(run.stderr).toMatch(/connection lost/);
        expect(run.stderr).toMatch(/resumed at frame \d+/);
        // The viewer reconnected too, before the stop, and printed every final (none missed).
        expect(run.stderr).not.toMatch(/segments may be missing|went out while the viewer was reconnecting/);
        const id = recordingIdOf(run.stderr)!;
        const done = await untilDone(id);
        expect(done.status).toBe('done');
        const upl = await reference();
        // Exactly the file's audio: nothing lost, nothing duplicated.
        expect(done.durationSeconds).toBe(upl.duration);
        expect(await transcript(id)).toEqual(upl.segments);
      } finally {
        proxy.close();
      }
    },
    300_000,
  );

  it.skipIf(!hasCorpus)(
    `SIGINT mid-stream (real time): stops the recording, which is finalised, exit 0 ${hasCorpus ? '' : noCorpusReason}`,
    async () => {
      const bot = startBot(['--api', api(), '--ca', caFile, '--file', corpusFile('call-02', 'wav')], env());
      const started = Date.now();
      while (!recordingIdOf(bot.stderr()) && Date.now() - started < 30_000)
        await new Promise((r) => setTimeout(r, 100));
      const id = recordingIdOf(bot.stderr());
      expect(id).toBeDefined();
      await new Promise((r) => setTimeout(r, 3000));
      bot.kill('SIGINT');
      const run = await bot.result;
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/SIGINT: stopping/);
      expect(run.stderr).toMatch(/stopped: queued/);
      const done = await untilDone(id!);
      expect(done.status).toBe('done');
      // Real time: about the 3 s streamed before the signal, far from the whole 32 s file.
      expect(done.durationSeconds as number).toBeGreaterThan(1);
      expect(done.durationSeconds as number).toBeLessThan(15);
    },
    120_000,
  );

  it.skipIf(!hasCorpus)(
    `--stdin takes raw PCM16 LE 16 kHz mono ${hasCorpus ? '' : noCorpusReason}`,
    async () => {
      const { pcm } = readCorpusMono('call-02');
      const part = pcm.subarray(0, 16_000 * 8 + 123); // not a whole number of frames
      const run = await startBot(
        ['--api', api(), '--ca', caFile, '--stdin', '--fast', '--speaker', 'Dr Rossi'],
        env(),
        Buffer.from(part.buffer, part.byteOffset, part.byteLength),
      ).result;
      expect(run.code, run.stderr).toBe(0);
      for (const l of run.stdout.trim().split('\n').filter(Boolean))
        expect(segmentLine.exec(l)?.[1]).toBe('Dr Rossi');
      const done = await untilDone(recordingIdOf(run.stderr)!);
      expect(done.status).toBe('done');
      expect(done.durationSeconds as number).toBeCloseTo(part.length / 16_000, 2);
    },
    120_000,
  );

  it.skipIf(!hasCorpus || !hasScript)(
    `no token on a terminal: asks email and password (not echoed), logs in, streams ${hasCorpus ? '' : noCorpusReason}`,
    async () => {
      const account = await signup(t);
      const cmd = [process.execPath, '--import', 'tsx', MAIN, 'bot', '--api', api(), '--ca', caFile]
        .concat(['--file', corpusFile('solo-03', 'wav'), '--fast'])
        .map((a) => `'${a}'`)
        .join(' ');
      // util-linux `script` runs the bot on a pseudo-terminal fed from our stdin.
      const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TERM: 'dumb' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const waitFor = async (text: string) => {
        for (let i = 0; i < 300 && !out.includes(text); i++) await new Promise((r) => setTimeout(r, 100));
        expect(out).toContain(text);
      };
      await waitFor('Email: ');
      child.stdin.write(`${account.email}\r`);
      await waitFor('Password: ');
      child.stdin.write(`${account.password}\r`);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code, out).toBe(0);
      expect(out).not.toContain(account.password);
      expect(out).toMatch(/stopped: queued/);
      expect(out).toMatch(new RegExp(segmentLine.source.slice(1, -1)));
    },
    120_000,
  );

  it('a wrong token: exit 4, a clear message, no recording', async () => {
    const run = await startBot(
      ['--api', api(), '--ca', caFile, '--stdin', '--fast'],
      { SOTTO_TOKEN: 'nope' },
      Buffer.alloc(0),
    ).result;
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('the server refused the access token');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);

  it('no token and no terminal: exit 1 naming SOTTO_TOKEN', async () => {
    const run = await startBot(['--api', api(), '--ca', caFile, '--stdin'], {}, Buffer.alloc(0)).result;
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('SOTTO_TOKEN');
  }, 120_000);

  it('an untrusted certificate: exit 3 naming --ca; --insecure warns loudly', async () => {
    // Independent processes: started together (each one's start-up is most of its time).
    const [run, insecure] = await Promise.all([
      startBot(['--api', api(), '--stdin'], env(), Buffer.alloc(0)).result,
      startBot(['--api', api(), '--insecure', '--stdin', '--fast'], env(), Buffer.alloc(0)).result,
    ]);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/certificate of 127\.0\.0\.1:\d+ is not trusted .*--ca FILE/);
    expect(insecure.stderr).toContain('WARNING: --insecure');
    // No audio at all: the server ends the recording failed, the bot still exits cleanly.
    expect(insecure.stderr).toMatch(/stopped: failed/);
    expect(insecure.code).toBe(0);
  }, 120_000);

  it('a wrong URL: exit 2 (nothing listening, not https, not the Sotto API)', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    // Independent processes: started together (each one's start-up is most of its time).
    const [refused, wrongPath, http, noMic, both] = await Promise.all([
      startBot(['--api', api(port), '--ca', caFile, '--stdin'], env(), Buffer.alloc(0)).result,
      startBot(['--api', `${api()}/not-sotto`, '--ca', caFile, '--stdin'], env(), Buffer.alloc(0)).result,
      startBot(['--api', 'http://127.0.0.1:1', '--stdin'], env(), Buffer.alloc(0)).result,
      startBot(['--api', api(), '--ca', caFile, '--mic'], { ...env(), PATH: dir }).result,
      startBot(['--api', api(), '--stdin', '--mic'], env()).result,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/cannot reach https:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(wrongPath.code).toBe(2);
    expect(wrongPath.stderr).toContain("is --api the Sotto server's public URL?");
    expect(http.code).toBe(2);
    expect(http.stderr).toContain('--api must be an https:// URL');
    expect(noMic.code).toBe(1);
    expect(noMic.stderr).toContain('--mic needs `arecord` (alsa-utils) or `sox` on PATH');
    expect(noMic.stderr).not.toContain('live recording');
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('exactly one of --file FILE, --stdin or --mic');
  }, 120_000);
});
