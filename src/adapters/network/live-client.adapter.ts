import WebSocket from 'ws';
import { apiRoot, diagnose, HttpClient, isTimeout, readCapped } from './http-client.adapter.js';

/**
 * The capture client's side of the live protocol (docs/live.md), as `sotto bot` speaks it: the
 * HTTPS calls (login, refresh, create a live recording) on the one HTTP client
 * (http-client.adapter.ts, shared with `sotto worker`) and the two WSS sockets (ingest, watch)
 * on `ws`. Both take the same TLS trust: a private CA (`--ca`) or `--insecure`.
 *
 * Every failure becomes a LiveClientError whose kind decides what the bot does: `network` is
 * retried with backoff; `auth`, `tls`, `url`, `gone` and `refused` end the run with a message
 * (and an exit status of their own, so scripts can tell them apart).
 */
export type LiveClientErrorKind = 'auth' | 'mfa' | 'tls' | 'url' | 'gone' | 'refused' | 'network';

export class LiveClientError extends Error {
  override name = 'LiveClientError';
  constructor(
    readonly kind: LiveClientErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface LiveClientOptions {
  /** The server's public URL, e.g. https://sotto.example.com (a path prefix is kept). */
  baseUrl: string;
  ca?: string | Buffer | undefined;
  insecure?: boolean | undefined;
  timeoutMs?: number | undefined;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string | undefined;
  expiresIn: number;
}

const MAX_ANSWER_BYTES = 256 * 1024;
export const LIVE_PROTOCOL = 'sotto.live.v1';

export class LiveClient {
  readonly base: URL;
  private readonly client: HttpClient;
  private readonly timeoutMs: number;

  constructor(private readonly opts: LiveClientOptions) {
    const root = apiRoot(opts.baseUrl, 'api/v1/');
    if (!(root instanceof URL)) throw new LiveClientError('url', root.error);
    this.base = root;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.client = new HttpClient({
      timeoutMs: this.timeoutMs,
      ca: opts.ca,
      insecure: opts.insecure,
      tls13Only: true,
    });
  }

  close(): void {
    // Nothing waits on it: the bot is leaving, and in-flight calls end with their own error.
    this.client.close().catch(() => undefined);
  }

  /** Password login; `mfa` when the account needs a one-time code (ask for it, call again). */
  async login(email: string, password: string, code?: string): Promise<Tokens> {
    const res = await this.call('POST', 'auth/login', undefined, {
      email,
      password,
      ...(code ? { code } : {}),
      client: 'api',
    });
    if (res.status === 401 && res.code === 'mfa_required')
      throw new LiveClientError('mfa', 'a one-time code is required');
    if (res.status === 401 || res.status === 423 || res.status === 429)
      throw new LiveClientError('auth', `login refused: ${res.detail ?? `HTTP ${res.status}`}`);
    return this.tokensOf(res);
  }

  async refresh(refreshToken: string): Promise<Tokens> {
    const res = await this.call('POST', 'auth/refresh', undefined, { refreshToken, client: 'api' });
    if (res.status === 401) throw new LiveClientError('auth', 'the session ended: log in again');
    return this.tokensOf(res);
  }

  /** Ends the session a login opened (best effort: the bot is leaving anyway). */
  async logout(token: string, refreshToken: string): Promise<void> {
    await this.call('POST', 'auth/logout', token, { refreshToken }).catch(() => undefined);
  }

  async createLive(token: string, title: string | undefined): Promise<string> {
    const res = await this.call('POST', 'recordings', token, { mode: 'live', ...(title ? { title } : {}) });
    if (res.status === 401)
      throw new LiveClientError(
        'auth',
        'the server refused the access token (expired, revoked or not a token)',
      );
    if (res.status === 429)
      throw new LiveClientError(
        'refused',
        `too many live recordings or requests: ${res.detail ?? 'HTTP 429'}`,
      );
    if (res.status === 400 || res.status === 403)
      throw new LiveClientError('refused', `the server refused: ${res.detail ?? `HTTP ${res.status}`}`);
    const id = (res.body as { id?: unknown } | undefined)?.id;
    if (res.status !== 201 || typeof id !== 'string') throw this.unexpected(res.status);
    return id;
  }

  /**
   * Opens `/recordings/:id/live` or `/watch` with the token in the Authorization header (never in
   * the URL). Resolves once open; a refused handshake rejects with the HTTP status's meaning.
   */
  openSocket(
    kind: 'live' | 'watch',
    token: string,
    id: string,
    onMessage: (data: WebSocket.RawData, isBinary: boolean) => void,
  ): Promise<WebSocket> {
    const url = new URL(`recordings/${encodeURIComponent(id)}/${kind}`, this.base);
    url.protocol = 'wss:';
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, [LIVE_PROTOCOL], {
        ...(this.opts.ca ? { ca: this.opts.ca } : {}),
        rejectUnauthorized: !this.opts.insecure,
        // As the HTTP calls (HttpClient's tls13Only): the server speaks only TLS 1.3.
        minVersion: 'TLSv1.3',
        headers: { authorization: `Bearer ${token}` },
        handshakeTimeout: this.timeoutMs,
        maxPayload: 4 * 1024 * 1024,
      });
      // Listening from the start: no message can arrive before the caller is ready for it.
      ws.on('message', onMessage);
      const fail = (err: LiveClientError) => {
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        reject(err);
      };
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        if (status === 401)
          fail(
            new LiveClientError(
              'auth',
              'the server refused the access token (expired, revoked or not a token)',
            ),
          );
        else if (status === 404)
          fail(new LiveClientError('gone', `recording ${id} not found (or not yours)`));
        else if (status === 409) fail(new LiveClientError('gone', `recording ${id} is no longer live`));
        else if (status === 403)
          fail(new LiveClientError('refused', 'this account may not stream into recordings'));
        else if (status === 429 || status >= 500)
          fail(new LiveClientError('network', `the server answered HTTP ${status}`));
        else fail(this.unexpected(status));
      });
      ws.once('error', (err) => fail(this.networkError(err)));
      ws.once('open', () => {
        ws.removeAllListeners('unexpected-response');
        ws.removeAllListeners('error');
        resolve(ws);
      });
    });
  }

  private tokensOf(res: Answer): Tokens {
    const b = res.body as { accessToken?: unknown; refreshToken?: unknown; expiresIn?: unknown } | undefined;
    if (res.status !== 200 || typeof b?.accessToken !== 'string') {
      if (res.status === 400 || res.status === 422)
        throw new LiveClientError('auth', `login refused: ${res.detail ?? `HTTP ${res.status}`}`);
      throw this.unexpected(res.status);
    }
    return {
      accessToken: b.accessToken,
      refreshToken: typeof b.refreshToken === 'string' ? b.refreshToken : undefined,
      expiresIn: typeof b.expiresIn === 'number' ? b.expiresIn : 600,
    };
  }

  private unexpected(status: number): LiveClientError {
    return new LiveClientError(
      'url',
      `unexpected answer HTTP ${status} from ${this.base.origin}: is --api the Sotto server's public URL?`,
    );
  }

  networkError(err: Error): LiveClientError {
    if (err instanceof LiveClientError) return err;
    if (isTimeout(err))
      return new LiveClientError('network', `no answer from ${this.base.origin} in ${this.timeoutMs} ms`);
    const failure = diagnose(err, this.base);
    // Run by a person: a name that does not resolve or a non-HTTPS port is a wrong --api.
    const kind = failure.kind === 'tls' ? 'tls' : failure.kind === 'unreachable' ? 'network' : 'url';
    return new LiveClientError(kind, failure.message, { cause: err });
  }

  private async call(
    method: string,
    path: string,
    token: string | undefined,
    body: unknown,
  ): Promise<Answer> {
    const payload = JSON.stringify(body);
    let status: number;
    let answer: Buffer | undefined;
    try {
      const res = await this.client.request(new URL(path, this.base), {
        method,
        headers: {
          accept: 'application/json',
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(payload)),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: payload,
      });
      status = res.status;
      answer = await readCapped(res.body, MAX_ANSWER_BYTES);
    } catch (err) {
      throw this.networkError(err as Error);
    }
    if (!answer) throw new LiveClientError('url', 'the server answer is too large: check --api');
    let parsed: unknown;
    try {
      parsed = answer.length ? JSON.parse(answer.toString('utf8')) : undefined;
    } catch {
      // An HTML page or a proxy's error: not the Sotto API.
      throw this.unexpected(status);
    }
    if (status === 404) throw this.unexpected(status);
    const problem = parsed as { code?: unknown; detail?: unknown } | undefined;
    return {
      status,
      body: parsed,
      code: typeof problem?.code === 'string' ? problem.code : undefined,
      detail: typeof problem?.detail === 'string' ? problem.detail : undefined,
    };
  }
}

interface Answer {
  status: number;
  body: unknown;
  code: string | undefined;
  detail: string | undefined;
}
