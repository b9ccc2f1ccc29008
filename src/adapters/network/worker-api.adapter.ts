import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import {
  apiRoot,
  diagnose,
  HttpClient,
  type HttpResponse,
  isTimeout,
  readCapped,
} from './http-client.adapter.js';

/**
 * The remote worker's HTTPS client for /api/v1/worker (the only thing `sotto worker` talks to),
 * on the one HTTP client (http-client.adapter.ts), which it shares with `sotto bot`: the API
 * root, the TLS trust (--ca, --insecure), the capped read and the failure diagnosis.
 *
 * Every failure becomes a WorkerApiError with a kind the runner acts on: `auth` (token refused:
 * stop), `tls` and `protocol` (wrong certificate or URL: stop with a clear message), `network`
 * (retry with backoff), `lost` (this worker no longer holds the job: drop it), `rejected` (the
 * server refused this one request's body, e.g. a result out of bounds: the job fails, the worker
 * goes on).
 */
export type WorkerApiErrorKind = 'auth' | 'tls' | 'protocol' | 'network' | 'lost' | 'rejected';

export class WorkerApiError extends Error {
  override name = 'WorkerApiError';
  constructor(
    readonly kind: WorkerApiErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface WorkerApiOptions {
  /** The server's public URL, e.g. https://sotto.example.com */
  baseUrl: string;
  token: string;
  /** PEM of the CA (or self-signed certificate) to trust instead of the system store. */
  ca?: string | Buffer | undefined;
  /** Skip certificate verification entirely (testing only; the CLI warns loudly). */
  insecure?: boolean | undefined;
  /** Per-request inactivity timeout: connect, headers, and silence inside a body. */
  timeoutMs?: number | undefined;
}

export interface RemoteClaim {
  id: string;
  leaseId: string;
  leaseSeconds: number;
  language: string | null;
  speakersHint: number | null;
}

export interface RemoteResult {
  segments: unknown[];
  speakers: string[];
  durationSeconds: number;
  channels: number;
  engine: string;
}

const MAX_ANSWER_BYTES = 1024 * 1024;

export class WorkerApiClient {
  private readonly base: URL;
  private readonly client: HttpClient;
  private readonly timeoutMs: number;

  constructor(private readonly opts: WorkerApiOptions) {
    const root = apiRoot(opts.baseUrl, 'api/v1/worker/');
    if (!(root instanceof URL)) throw new WorkerApiError('protocol', root.error);
    this.base = root;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.client = new HttpClient({
      timeoutMs: this.timeoutMs,
      ca: opts.ca,
      insecure: opts.insecure,
      tls13Only: true,
      connections: 16,
    });
  }

  close(): void {
    // Nothing waits on it: the worker is stopping, and in-flight calls end with their own error.
    this.client.close().catch(() => undefined);
  }

  /** Start-up check of URL, certificate and token: who the server says this worker is. */
  async whoami(): Promise<{ id: string; name: string; orgId: string | null }> {
    const res = await this.call('GET', 'whoami', undefined);
    if (res.status === 401) throw this.statusError(401);
    const me = res.body as { id?: unknown; name?: unknown; orgId?: unknown } | undefined;
    if (res.status !== 200 || typeof me?.id !== 'string' || typeof me.name !== 'string')
      throw this.unexpected(res.status);
    return { id: me.id, name: me.name, orgId: typeof me.orgId === 'string' ? me.orgId : null };
  }

  /** null when the queue has nothing due for this worker. */
  async claim(): Promise<RemoteClaim | null> {
    const res = await this.call('POST', 'jobs/claim', {});
    if (res.status === 204) return null;
    if (res.status !== 200) throw this.statusError(res.status);
    const job = (res.body as { job?: RemoteClaim } | undefined)?.job;
    if (!job || typeof job.id !== 'string' || typeof job.leaseId !== 'string')
      throw this.unexpected(res.status);
    return job;
  }

  /** Streams the job's audio into `file` (created 0600, must not exist). */
  async downloadAudio(id: string, leaseId: string, file: string): Promise<void> {
    const res = await this.send('GET', `jobs/${id}/audio?lease=${encodeURIComponent(leaseId)}`);
    if (res.status !== 200) {
      res.body.destroy();
      throw this.statusError(res.status);
    }
    try {
      await pipeline(res.body, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      const reason = isTimeout(err) ? this.silence().message : (err as Error).message;
      throw new WorkerApiError('network', `audio download interrupted: ${reason}`, { cause: err });
    }
  }

  async heartbeat(id: string, leaseId: string, progress: number): Promise<void> {
    await this.expectOk('POST', `jobs/${id}/heartbeat`, { leaseId, progress });
  }

  async complete(id: string, leaseId: string, result: RemoteResult): Promise<void> {
    await this.expectOk('POST', `jobs/${id}/complete`, { leaseId, ...result });
  }

  async fail(id: string, leaseId: string, code: string): Promise<void> {
    await this.expectOk('POST', `jobs/${id}/fail`, { leaseId, code });
  }

  /** Hands the job back, due again after `delaySeconds` (an outage's backoff) or at once. */
  async release(id: string, leaseId: string, delaySeconds = 0): Promise<void> {
    await this.expectOk('POST', `jobs/${id}/release`, {
      leaseId,
      ...(delaySeconds > 0 ? { delaySeconds: Math.min(600, Math.round(delaySeconds)) } : {}),
    });
  }

  private async expectOk(method: string, path: string, body: unknown): Promise<void> {
    const res = await this.call(method, path, body);
    if (res.status !== 200) throw this.statusError(res.status);
  }

  private statusError(status: number): WorkerApiError {
    if (status === 401)
      return new WorkerApiError(
        'auth',
        'the server refused the worker token (revoked, or not a valid token)',
      );
    if (status === 404 || status === 409)
      return new WorkerApiError('lost', `the job is no longer held by this worker (HTTP ${status})`);
    if (status === 400 || status === 413)
      return new WorkerApiError('rejected', `the server refused the request (HTTP ${status})`);
    if (status === 429 || status >= 500)
      return new WorkerApiError('network', `the server answered HTTP ${status}; retrying`);
    return this.unexpected(status);
  }

  private unexpected(status: number): WorkerApiError {
    return new WorkerApiError(
      'protocol',
      `unexpected answer HTTP ${status} from ${this.base.origin}: is --api the Sotto server's public URL?`,
    );
  }

  private async call(
    method: string,
    path: string,
    body: unknown,
  ): Promise<{ status: number; body: unknown }> {
    const res = await this.send(method, path, body === undefined ? undefined : JSON.stringify(body));
    let answer: Buffer | undefined;
    try {
      answer = await readCapped(res.body, MAX_ANSWER_BYTES);
    } catch (err) {
      throw this.networkError(err as Error);
    }
    if (!answer) throw new WorkerApiError('protocol', 'the server answer is too large');
    const text = answer.toString('utf8');
    const status = res.status;
    // The route answers JSON; anything else (an HTML page, a proxy's error) means a wrong URL.
    if (status === 404 && (path === 'jobs/claim' || path === 'whoami')) throw this.unexpected(status);
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      if (status === 200) throw this.unexpected(status);
    }
    return { status, body: parsed };
  }

  private async send(method: string, path: string, body?: string): Promise<HttpResponse> {
    try {
      return await this.client.request(new URL(path, this.base), {
        method,
        headers: {
          authorization: `Bearer ${this.opts.token}`,
          accept: 'application/json',
          ...(body !== undefined
            ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }
            : {}),
        },
        body,
      });
    } catch (err) {
      throw this.networkError(err as Error);
    }
  }

  private silence(): WorkerApiError {
    return new WorkerApiError('network', `no answer from ${this.base.origin} in ${this.timeoutMs} ms`);
  }

  private networkError(err: Error): WorkerApiError {
    if (err instanceof WorkerApiError) return err;
    if (isTimeout(err)) return this.silence();
    const failure = diagnose(err, this.base);
    // Unattended: a name that does not resolve may come back with the network (retry); a
    // certificate or a non-HTTPS port will not (stop and say so).
    const kind = failure.kind === 'tls' ? 'tls' : failure.kind === 'not_https' ? 'protocol' : 'network';
    return new WorkerApiError(kind, failure.message, { cause: err });
  }
}
