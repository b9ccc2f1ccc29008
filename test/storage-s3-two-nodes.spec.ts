import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { corpusFile } from './helpers/corpus.js';
import { bearer, createOrgWithUser } from './helpers/fixtures.js';
import { instanceFactory, serve, serveEnv, twoNodeSpecs } from './helpers/live-instances.js';
import { multipart } from './helpers/recordings.js';
import { S3_SECRET_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { backendLabel, freshDatabase, testMasterKey } from './helpers/test-app.js';

/**
 * Several nodes on object storage (docs/deployment.md#several-nodes-step-by-step): two real
 * `sotto serve` processes, each with its own data directory, sharing only PostgreSQL, Redis and
 * object storage: one bucket for the data, one of its own for the per-org keys (SOTTO_KEY_STORE=s3). An upload accepted by node A is transcribed (by whichever node
 * claims the job), played back with a range and deleted through node B; neither node's disk ever
 * holds the audio. A third node pointed at a missing bucket says so at start and in /readyz.
 */
const { skip, why } = twoNodeSpecs;

interface Answer {
  status: number;
  body: Buffer;
}

/** HTTPS to one node, trusting the self-signed certificate in its own data directory. */
function call(
  node: { port: number; dataDir: string },
  method: string,
  urlPath: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: node.port,
        method,
        path: urlPath,
        headers: { host: 'sotto.test', ...headers },
        ca: readFileSync(path.join(node.dataDir, 'tls', 'cert.pem')),
        servername: 'sotto.test',
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe.skipIf(skip)(`object storage across two server processes (${backendLabel})${why}`, () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  let s3: S3TestServer | undefined;
  let drop: (() => Promise<void>) | undefined;
  const tempDir = (name: string) => {
    const dir = mkdtempSync(path.join(tmpdir(), `sotto-s3-${name}-`));
    dirs.push(dir);
    return dir;
  };

  afterAll(async () => {
    for (const ch of children) if (ch.exitCode === null) ch.kill('SIGTERM');
    await Promise.all(
      children.map((ch) => (ch.exitCode === null ? new Promise((res) => ch.on('close', res)) : undefined)),
    );
    await drop?.();
    await s3?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('upload on A, transcribe anywhere, play and delete on B; a node without its bucket is not ready', async () => {
    const database = await freshDatabase();
    drop = database.drop;
    s3 = await startS3Server({ buckets: ['sotto-nodes', 'sotto-node-keys'] });
    const prefix = `run-${randomUUID().slice(0, 8)}/`;
    const shared = {
      ...s3.env({ prefix }),
      SOTTO_MASTER_KEY: testMasterKey(),
      SOTTO_KEY_STORE: 's3',
      SOTTO_KEY_S3_BUCKET: 'sotto-node-keys',
      SOTTO_REDIS_PREFIX: `sotto-s3-two-${randomUUID()}:`,
      SOTTO_ASR_ENGINE: 'sphinx',
      SOTTO_JOB_POLL_MS: '200',
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
    };
    // The org and its owner, made through the services before the servers start.
    const local = await instanceFactory(database.db, { ...shared, SOTTO_DATA_DIR: tempDir('setup') })();
    const owner = await createOrgWithUser(local.services, { role: 'owner' });
    const stranger = await createOrgWithUser(local.services, { role: 'owner' });
    await local.close();
    // The orgs' keys are in the key bucket, nowhere near the data bucket.
    expect(await s3.keys('', 'sotto-node-keys')).toEqual(
      [`org-${owner.orgId}.kek`, `org-${stranger.orgId}.kek`].sort(),
    );

    const nodeEnv = (dataDir: string) =>
      serveEnv({ ...shared, SOTTO_DATA_DIR: dataDir }, database.url!, process.env.REDIS_URL!);
    const [dirA, dirB] = [tempDir('node-a'), tempDir('node-b')];
    const [a, b] = await Promise.all([serve(nodeEnv(dirA)), serve(nodeEnv(dirB))]);
    children.push(a.child, b.child);
    expect(a.output()).toMatch(/"storage":"s3:ok".*"msg":"sotto started"/);
    const A = { port: a.port, dataDir: dirA };
    const B = { port: b.port, dataDir: dirB };
    const auth = (token: string) => bearer(token);

    expect(
      (
        await call(
          A,
          'PATCH',
          '/api/v1/org/settings',
          { ...auth(owner.accessToken), 'content-type': 'application/json' },
          Buffer.from('{"storeAudio":true}'),
        )
      ).status,
    ).toBe(200);
    const original = readFileSync(corpusFile('solo-03', 'wav'));
    const form = multipart({ title: 'Two nodes' }, { data: original });
    const up = await call(
      A,
      'POST',
      '/api/v1/recordings',
      { ...auth(owner.accessToken), ...form.headers },
      form.payload,
    );
    expect(up.status, up.body.toString()).toBe(202);
    const id = (JSON.parse(up.body.toString()) as { id: string }).id;
    expect(await s3.keys(prefix)).toEqual([`${prefix}audio/${owner.orgId}/${id}.bin`]);

    // Done, whichever node's worker took the job; B reads the status and the transcript.
    const deadline = Date.now() + 240_000;
    let status = '';
    while (Date.now() < deadline) {
      const res = await call(B, 'GET', `/api/v1/recordings/${id}`, auth(owner.accessToken));
      status = (JSON.parse(res.body.toString()) as { status: string }).status;
      if (status === 'done' || status === 'failed') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(status).toBe('done');
    expect(
      (await call(B, 'GET', `/api/v1/recordings/${id}/transcript`, auth(owner.accessToken))).status,
    ).toBe(200);

    // Played back through B (range and whole), never through another org.
    const part = await call(B, 'GET', `/api/v1/recordings/${id}/audio`, {
      ...auth(owner.accessToken),
      range: 'bytes=70000-70999',
    });
    expect(part.status).toBe(206);
    expect(part.body.equals(original.subarray(70_000, 71_000))).toBe(true);
    const whole = await call(B, 'GET', `/api/v1/recordings/${id}/audio`, auth(owner.accessToken));
    expect(whole.body.equals(original)).toBe(true);
    expect((await call(B, 'GET', `/api/v1/recordings/${id}/audio`, auth(stranger.accessToken))).status).toBe(
      404,
    );
    // Neither node's disk holds the audio.
    for (const dir of [dirA, dirB]) expect(existsSync(path.join(dir, 'audio'))).toBe(false);

    // Deleted through B: the object is gone, and A answers 404 too.
    expect((await call(B, 'DELETE', `/api/v1/recordings/${id}`, auth(owner.accessToken))).status).toBe(204);
    expect(await s3.keys(prefix)).toEqual([]);
    expect((await call(A, 'GET', `/api/v1/recordings/${id}/audio`, auth(owner.accessToken))).status).toBe(
      404,
    );

    // A third node whose bucket does not exist: it starts, logs the fix, and is not ready.
    const dirC = tempDir('node-c');
    const c = await serve({ ...nodeEnv(dirC), SOTTO_S3_BUCKET: 'sotto-missing' });
    children.push(c.child);
    expect(c.output()).toContain('object storage unusable: the bucket does not exist');
    expect(c.output()).not.toContain(S3_SECRET_KEY);
    const ready = await call({ port: c.port, dataDir: dirC }, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect((JSON.parse(ready.body.toString()) as { checks: { storage: string } }).checks.storage).toBe(
      'no_bucket',
    );
  }, 400_000);
});
