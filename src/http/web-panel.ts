import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../domain/errors.js';

/**
 * The web panel (web/, built by Vite into dist/web) served from the API's own origin, so it runs
 * under the same strict CSP and its cookies stay first-party. Resolved from this module's folder
 * so it is the same directory whether the server runs from src/ (tsx, tests) or dist/.
 */
export const DEFAULT_WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/web');

/** True when a request is a browser navigation (the SPA fallback answers only those). */
function wantsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

/**
 * Registers the panel when it has been built (`npm run build`); without a build the server is
 * API-only and says so in the log. Nothing is ever served under /api.
 */
export async function registerWebPanel(app: FastifyInstance, root: string = DEFAULT_WEB_ROOT): Promise<void> {
  const indexFile = path.join(root, 'index.html');
  if (!existsSync(indexFile)) {
    app.log.info({ webRoot: root }, 'web panel not built; serving the API only');
    return;
  }
  // Read once: the build is immutable while the server runs.
  const indexHtml = readFileSync(indexFile);

  // Vite names every asset by its content hash, so a year of caching is safe.
  await app.register(fastifyStatic, {
    root: path.join(root, 'assets'),
    prefix: '/assets/',
    index: false,
    list: false,
    dotfiles: 'deny',
    maxAge: '365d',
    immutable: true,
    decorateReply: false,
  });

  const sendIndex = async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.url.startsWith('/api/') || req.url === '/api' || !wantsHtml(req)) {
      throw new AppError('not_found', 'No such route');
    }
    // index.html names the current hashed assets: never let a cache keep an old one.
    return reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(indexHtml);
  };
  // The panel's pages are not API: kept out of the OpenAPI document (as @fastify/static's are).
  const page = { schema: { hide: true } };
  app.get('/', page, sendIndex);
  // Client-side routes (/recordings/…, /login): any other GET navigation gets the SPA.
  app.get('/*', page, sendIndex);
}
