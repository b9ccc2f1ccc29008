import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Services } from '../app.js';
import { buildServer } from './server.js';

/**
 * Puts the application on the network. Two shapes:
 *
 * - Direct: HTTPS (TLS 1.3 only, enforced by buildServer) on SOTTO_HTTPS_PORT, plus an optional
 *   plain-HTTP listener on SOTTO_HTTP_PORT that serves nothing but a body-less 308 to the public
 *   HTTPS URL.
 * - Behind a TLS proxy (SOTTO_TRUST_PROXY): plain HTTP on SOTTO_HTTPS_PORT, reachable by the proxy
 *   only. A request that did not arrive over HTTPS (per X-Forwarded-Proto, believed only from a
 *   trusted proxy address) gets the same 308; HSTS and every other header stay as in direct mode.
 */
export interface TransportOptions {
  services: Services;
  /** Required in direct mode, ignored behind a proxy. */
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
}

export interface Transport {
  app: FastifyInstance;
  mode: 'direct' | 'proxy';
  /** Address of the application listener (HTTPS in direct mode, HTTP behind a proxy). */
  address: AddressInfo;
  /** Address of the redirect-only listener, when one runs. */
  redirectAddress: AddressInfo | undefined;
  close(): Promise<void>;
}

/** Load balancers probe these directly over plain HTTP; they reveal nothing and carry no data. */
const PROBE_PATHS = new Set(['/healthz', '/readyz']);

/**
 * Where a plain-HTTP request is sent: the public HTTPS URL plus the request's path and query.
 * Only the path is taken from the client (never a host), so this cannot redirect off-site.
 */
export function redirectTarget(publicUrl: string, rawUrl: string | undefined): string {
  let target = rawUrl ?? '/';
  if (!target.startsWith('/')) {
    // Absolute-form request targets (proxies): keep the path, drop the client's host.
    try {
      const u = new URL(target);
      target = `${u.pathname}${u.search}`;
    } catch {
      target = '/';
    }
  }
  // A leading '//' would read as scheme-relative to anyone who strips the origin; collapse it.
  target = target.replace(/^\/{2,}/, '/');
  return `${publicUrl.replace(/\/$/, '')}${target}`;
}

function createRedirectServer(publicUrl: string): Server {
  const server = createServer((req, res) => {
    let location: string;
    try {
      location = redirectTarget(publicUrl, req.url);
      res.setHeader('location', location);
    } catch {
      // Characters Node refuses in a header value: answer without echoing anything back.
      res.writeHead(400, { 'content-length': '0', connection: 'close' }).end();
      return;
    }
    // Body-less on purpose: nothing is served over plain HTTP, not even an error page.
    res.writeHead(308, { 'content-length': '0', connection: 'close' }).end();
  });
  // Slow or idle clients must not hold sockets open on a port that has nothing to offer.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 1_000;
  return server;
}

function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startTransport({ services, tls }: TransportOptions): Promise<Transport> {
  const { config, logger } = services;
  const proxied = config.trustProxy !== undefined;
  if (!proxied && !tls) throw new Error('TLS material is required unless running behind a trusted proxy');

  const app = await buildServer({ services, https: proxied ? undefined : tls });
  if (proxied) {
    app.addHook('onRequest', async (req, reply) => {
      // req.protocol honours X-Forwarded-Proto only when the peer is in SOTTO_TRUST_PROXY.
      if (req.protocol === 'https' || PROBE_PATHS.has(req.url.split('?')[0] ?? '')) return;
      return reply.code(308).header('location', redirectTarget(config.publicUrl, req.url)).send();
    });
  }
  await app.listen({ host: config.host, port: config.httpsPort });
  const address = app.server.address() as AddressInfo;

  let redirect: Server | undefined;
  let redirectAddress: AddressInfo | undefined;
  if (!proxied && config.httpPort !== 0) {
    redirect = createRedirectServer(config.publicUrl);
    try {
      redirectAddress = await listenOn(redirect, config.host, config.httpPort);
    } catch (err) {
      await app.close();
      throw err;
    }
  }
  logger.info(
    {
      mode: proxied ? 'proxy' : 'direct',
      address: `${proxied ? 'http' : 'https'}://${address.address}:${address.port}`,
      redirect: redirectAddress ? `http://${redirectAddress.address}:${redirectAddress.port}` : null,
      publicUrl: config.publicUrl,
      trustProxy: config.trustProxy ?? null,
    },
    proxied ? 'listening behind a TLS-terminating proxy' : 'listening (TLS 1.3 only)',
  );

  return {
    app,
    mode: proxied ? 'proxy' : 'direct',
    address,
    redirectAddress,
    async close() {
      if (redirect) await closeServer(redirect);
      await app.close();
    },
  };
}
