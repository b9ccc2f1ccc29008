import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshIp } from './helpers/auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { createLive, listenTls, mustOpen, openWs, streamPcm, type Listening } from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Personal API tokens on the live path: the WSS ingest handshake over real TLS, the socket's
 * periodic re-check (a revoked token is cut off), and `sotto bot` run with SOTTO_TOKEN=sotto_pat_….
 */
const MAIN = path.resolve('src/cli/main.ts');

function runBot(args: string[], env: Record<string, string>, stdin: Buffer) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'bot', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(stdin);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sotto bot did not finish\n${stdout}\n${stderr}`));
    }, 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** One second of a quiet 440 Hz tone, PCM16 16 kHz mono. */
function tone(seconds = 1): Int16Array {
  const pcm = new Int16Array(16_000 * seconds);
  for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(2000 * Math.sin((2 * Math.PI * 440 * i) / 16_000));
  return pcm;
}

describe(`API tokens on the live path (${backendLabel})`, () => {
  let t: TestApp;
  let server: Listening;
  let owner: TestUser;
  let dir: string;
  let caFile: string;
  const ip = freshIp();

  beforeAll(async () => {
    const { env } = recordingEnv({
      SOTTO_LIVE_MAX_PER_ORG: '20',
      SOTTO_LIVE_RECHECK_SECONDS: '1',
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
    });
    t = await startTestApp({ env });
    server = await listenTls(t.services);
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-pat-'));
    caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, server.ca);
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function token(scopes: string[]): Promise<{ id: string; token: string }> {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: bearer(owner.accessToken),
      payload: { name: 'live', scopes },
      remoteAddress: ip,
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; token: string };
  }

  it('live:ingest creates a live recording and streams into it; it cannot upload or read', async () => {
    const pat = await token(['live:ingest']);
    const id = await createLive(t, pat.token, ip);
    const c = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: pat.token });
    await streamPcm(c, tone());
    c.ws.close();
    const read = await t.app.inject({
      url: `/api/v1/recordings/${id}`,
      headers: bearer(pat.token),
      remoteAddress: ip,
    });
    expect(read.statusCode).toBe(403);
    const upload = await t.app.inject({
      method: 'POST',
      url: '/api/v1/recordings',
      headers: { ...bearer(pat.token), 'content-type': 'multipart/form-data; boundary=x' },
      payload:
        '--x\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\nRIFF\r\n--x--\r\n',
      remoteAddress: ip,
    });
    expect(upload.statusCode).toBe(403);
  });

  it('a token without live:ingest is refused at the handshake; a revoked token loses its socket', async () => {
    const readOnly = await token(['recordings:read']);
    const ingest = await token(['live:ingest']);
    const id = await createLive(t, owner.accessToken, ip);
    expect(await openWs(server, `/api/v1/recordings/${id}/live`, { token: readOnly.token })).toBe(403);
    // A ticket minted with a read-only token carries its scopes: it cannot ingest either.
    const ticket = await t.app.inject({
      method: 'POST',
      url: `/api/v1/recordings/${id}/live-ticket`,
      headers: bearer(readOnly.token),
      remoteAddress: ip,
    });
    expect(ticket.statusCode).toBe(201);
    const viaTicket = await openWs(server, `/api/v1/recordings/${id}/live`, {
      protocols: [`sotto.ticket.${(ticket.json() as { ticket: string }).ticket}`],
    });
    expect(viaTicket).toBe(403);

    const c = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: ingest.token });
    c.ws.send(JSON.stringify({ type: 'start' }));
    const revoke = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/tokens/${ingest.id}`,
      headers: bearer(owner.accessToken),
      remoteAddress: ip,
    });
    expect(revoke.statusCode).toBe(204);
    const closed = await Promise.race([
      c.closed,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000)),
    ]);
    expect(closed, 'the socket of a revoked token is closed by the re-check').toBeDefined();
    expect(await openWs(server, `/api/v1/recordings/${id}/live`, { token: ingest.token })).toBe(401);
  });

  // The bot streams (live:ingest) and prints the live transcript (watch: recordings:read).
  it('sotto bot streams with SOTTO_TOKEN=sotto_pat_… (live:ingest + recordings:read)', async () => {
    const pat = await token(['live:ingest', 'recordings:read']);
    const pcm = tone(2);
    const run = await runBot(
      ['--api', `https://127.0.0.1:${server.port}`, '--ca', caFile, '--stdin', '--fast'],
      { SOTTO_TOKEN: pat.token },
      Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/live recording [0-9a-f-]{36}/);
    expect(run.stderr + run.stdout).not.toContain(pat.token.slice(20));
  }, 150_000);
});
