import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  API_SCHEMA_TS,
  OPENAPI_JSON,
  documentText,
  routesDocument,
  schemaTypes,
} from '../scripts/openapi.js';

/**
 * The drift check of the generated API description (docs/panel.md#api-types): openapi.json must
 * be what the routes' zod schemas produce now, and web/src/api-schema.d.ts (the panel's types)
 * what openapi-typescript makes of it. A route change without `npm run openapi` fails here, so
 * the panel cannot be type-checked against an API that no longer exists.
 */
describe('the committed OpenAPI document and panel types', () => {
  let doc: Record<string, unknown>;
  beforeAll(async () => {
    doc = await routesDocument();
  });

  it('openapi.json is what the routes produce (run `npm run openapi` after changing a route)', () => {
    const committed = readFileSync(OPENAPI_JSON, 'utf8');
    expect(committed, 'openapi.json is stale: run `npm run openapi` and commit it').toBe(documentText(doc));
  });

  it('web/src/api-schema.d.ts is what openapi-typescript makes of openapi.json', async () => {
    const committed = readFileSync(API_SCHEMA_TS, 'utf8');
    expect(committed, 'web/src/api-schema.d.ts is stale: run `npm run openapi` and commit it').toBe(
      await schemaTypes(doc),
    );
  });

  it('names every route as clients call it: a module root without its trailing slash', () => {
    const paths = Object.keys(doc.paths as Record<string, unknown>);
    expect(paths.length).toBeGreaterThan(50);
    expect(paths.filter((p) => p.endsWith('/'))).toEqual([]);
    for (const root of ['/api/v1/recordings', '/api/v1/org', '/api/v1/tokens', '/api/v1/org/webhooks']) {
      expect(paths).toContain(root);
    }
  });

  it('describes every answer the panel reads: each 2xx JSON answer has a schema', () => {
    const missing: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const [method, op] of Object.entries(ops)) {
        const responses = (op as { responses?: Record<string, { content?: unknown }> }).responses ?? {};
        const ok = Object.keys(responses).filter((s) => s.startsWith('2'));
        // Redirects (single sign-on) answer no 2xx; the rest name theirs.
        if (!/\/auth\/sso\//.test(path) && ok.length === 0) missing.push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
