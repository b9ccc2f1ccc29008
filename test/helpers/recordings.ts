import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import type { Queryable } from '../../src/db/database.js';
import { recordingJobRepository } from '../../src/repositories/transcription/recording-job.repository.js';
import { recordingRepository } from '../../src/repositories/recordings/recording.repository.js';
import type { TestApp } from './test-app.js';
import { bearer } from './fixtures.js';

/** A multipart/form-data body built by hand (what a browser or curl -F sends). */
export function multipart(
  fields: Record<string, string>,
  file?: { field?: string; name?: string; type?: string; data: Buffer },
): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----sotto${randomUUID().replace(/-/g, '')}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields))
    parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file)
    parts.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name="${file.field ?? 'audio'}"; filename="${file.name ?? 'a.wav'}"\r\n` +
          `content-type: ${file.type ?? 'audio/wav'}\r\n\r\n`,
      ),
      file.data,
      Buffer.from('\r\n'),
    );
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return {
    payload: Buffer.concat(parts),
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
  };
}

export function upload(
  t: TestApp,
  token: string,
  ip: string,
  data: Buffer,
  fields: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  const body = multipart(fields, { data });
  return t.app.inject({
    method: 'POST',
    url: '/api/v1/recordings',
    headers: { ...bearer(token), ...body.headers },
    payload: body.payload,
    remoteAddress: ip,
  });
}

/** Env for a test app with its own data dir (uploads are staged under it) and the sphinx engine. */
// Every data dir recordingEnv made goes when the spec's process ends (its app is closed by then).
const made: string[] = [];
process.once('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

export function recordingEnv(extra: Record<string, string> = {}): {
  env: Record<string, string>;
  dataDir: string;
} {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-rec-'));
  made.push(dataDir);
  return {
    dataDir,
    env: { SOTTO_DATA_DIR: dataDir, SOTTO_ASR_ENGINE: 'sphinx', SOTTO_JOB_POLL_MS: '100', ...extra },
  };
}

export function stagedFiles(dataDir: string): string[] {
  const dir = path.join(dataDir, 'tmp', 'uploads');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Polls GET /recordings/:id until `until` holds for the body. */
export async function pollRecording(
  t: TestApp,
  token: string,
  ip: string,
  id: string,
  until: (body: { status: string; progress: number }) => boolean,
  timeoutMs = 120_000,
): Promise<Record<string, unknown> & { status: string; progress: number }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings/${id}`,
      headers: bearer(token),
      remoteAddress: ip,
    });
    if (res.statusCode !== 200) throw new Error(`GET recording: ${res.statusCode} ${res.body}`);
    const body = res.json();
    if (until(body)) return body;
    if (Date.now() > end) throw new Error(`recording did not reach the expected state: ${res.body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A queued recording and its job inserted in `tx` (inside withTenant), as live finalise does:
 * the claim needs no audio. `runAfter` delays the job (a retry's backoff).
 */
export async function insertQueuedRecording(
  tx: Queryable,
  user: { orgId: string; userId: string },
  opts: { id?: string; runAfter?: Date } = {},
): Promise<string> {
  const id = opts.id ?? randomUUID();
  await recordingRepository.insert(tx, {
    id,
    orgId: user.orgId,
    ownerId: user.userId,
    language: null,
    speakersHint: null,
    now: new Date(),
  });
  await recordingJobRepository.enqueue(tx, {
    recordingId: id,
    orgId: user.orgId,
    now: opts.runAfter ?? new Date(),
  });
  return id;
}
