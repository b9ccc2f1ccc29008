import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * The layer table of docs/architecture.md is enforced by eslint.config.js (eslint-plugin-boundaries,
 * rule boundaries/dependencies). These specs lint in-memory sources through ESLint's Node API with
 * the project's real configuration: nothing is written to the tree. Each source is linted as if it
 * were an existing file of the layer under test (typed linting only accepts files its tsconfig
 * covers), found at run time so that moving files around does not break the spec.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RULE = 'boundaries/dependencies';

/** The first TypeScript file (sorted, recursive) under `dir` whose name passes `test`. */
function findFile(dir: string, test: (name: string) => boolean): string {
  const found = readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts') && test(path.basename(f)))
    .sort();
  if (!found[0]) throw new Error(`no file in ${dir} for this check`);
  return path.join(root, dir, found[0]);
}

const files = {
  route: () => findFile('src/http/routes', () => true),
  plugin: () => findFile('src/http/plugins', () => true),
  service: () => findFile('src/services', (n) => n.endsWith('.service.ts')),
  domain: () => findFile('src/domain', () => true),
  repository: () => findFile('src/repositories', (n) => n === 'recording.repository.ts'),
  rateLimitAdapter: () => findFile('src/adapters', (n) => n === 'rate-limit.adapter.ts'),
  adapter: () => findFile('src/adapters', (n) => n === 'ffmpeg.adapter.ts'),
  database: () => findFile('src/db', (n) => n === 'tenant.ts'),
  config: () => findFile('src/config', (n) => n === 'config.ts'),
  errors: () => findFile('src/domain', (n) => n === 'errors.ts'),
};

/** An import specifier from `from` to `to`, written as the code writes them (`.js`). */
function spec(from: string, to: string): string {
  const rel = path.relative(path.dirname(from), to).replace(/\.ts$/, '.js');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

let eslint: ESLint;

/** Lints `code` as the file `as`; returns the layer-rule messages, after checking it parsed. */
async function layerErrors(as: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: as });
  expect(result!.messages.filter((m) => m.fatal)).toEqual([]);
  return result!.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
}

/** The layer-rule messages for a file `from` that imports the module `to` and uses it. */
function importErrors(from: string, to: string): Promise<string[]> {
  return layerErrors(from, `import * as m from '${spec(from, to)}';\nexport const probe = m;\n`);
}

beforeAll(async () => {
  eslint = new ESLint({ cwd: root });
  // The first typed lint builds the TypeScript program; later ones reuse it.
  await layerErrors(files.domain(), 'export const warm = 1;\n');
}, 120_000);

describe('the layer rule (docs/architecture.md, "Layers")', () => {
  it('fails a route that imports a repository', async () => {
    const route = files.route();
    const errors = await layerErrors(
      route,
      `import { recordingRepository } from '${spec(route, files.repository())}';\nexport const probe = recordingRepository;\n`,
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/routes may not import repositories/);
    expect(errors[0]).toContain('recording.repository.js');
  });

  it('lets a route import a service, and name a repository type', async () => {
    const route = files.route();
    const service = files.service();
    expect(
      await layerErrors(
        route,
        [
          `import * as svc from '${spec(route, service)}';`,
          `import type { RecordingRow } from '${spec(route, files.repository())}';`,
          'export const probe: [unknown, RecordingRow | null] = [svc, null];',
          '',
        ].join('\n'),
      ),
    ).toEqual([]);
  });

  it('keeps the edge-plugin exception narrow: a plugin may use the rate-limit adapter, not another', async () => {
    const plugin = files.plugin();
    const ok = await importErrors(plugin, files.rateLimitAdapter());
    expect(ok).toEqual([]);
    const route = files.route();
    const fromRoute = await importErrors(route, files.rateLimitAdapter());
    expect(fromRoute).toHaveLength(1);
    const other = await importErrors(plugin, files.repository());
    expect(other).toHaveLength(1);
    expect(other[0]).toMatch(/http may not import repositories/);
    const otherAdapter = await importErrors(plugin, files.adapter());
    expect(otherAdapter).toHaveLength(1);
    expect(otherAdapter[0]).toMatch(/http may not import adapters/);
  });

  it('keeps adapters off the database and the SQL repositories; services and repositories may use them', async () => {
    const adapter = files.adapter();
    const toDb = await importErrors(adapter, files.database());
    expect(toDb).toHaveLength(1);
    expect(toDb[0]).toMatch(/adapters may not import db/);
    const toRepository = await importErrors(adapter, files.repository());
    expect(toRepository).toHaveLength(1);
    expect(toRepository[0]).toMatch(/adapters may not import repositories/);
    for (const from of [files.service(), files.repository()]) {
      expect(await importErrors(from, adapter)).toEqual([]);
    }
  });

  it('fails upward imports further down: a service reading the config, the domain importing anything', async () => {
    const service = files.service();
    const fromService = await importErrors(service, files.config());
    expect(fromService).toHaveLength(1);
    expect(fromService[0]).toMatch(/services may not import config/);
    // Naming the config's types is how a service is told what it receives.
    expect(
      await layerErrors(
        service,
        `import type { Config } from '${spec(service, files.config())}';\nexport type Probe = Config;\n`,
      ),
    ).toEqual([]);
    const domain = files.domain();
    const fromDomain = await importErrors(domain, service);
    expect(fromDomain).toHaveLength(1);
    expect(fromDomain[0]).toMatch(/domain may not import services/);
  });

  it("keeps the panel off the server's code: it talks to the API over HTTP", async () => {
    const panel = path.join(root, 'web/src/format.ts');
    const errors = await layerErrors(
      panel,
      `import { AppError } from '${spec(panel, files.errors())}';\nexport const probe = AppError;\n`,
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/web may not import domain/);
  });
});

describe('one clock (eslint.config.js, CONTRIBUTING.md)', () => {
  /** The clock-rule messages for `code` linted as a file of `as`. */
  async function clockErrors(as: string, code: string): Promise<string[]> {
    const [result] = await eslint.lintText(code, { filePath: as });
    expect(result!.messages.filter((m) => m.fatal)).toEqual([]);
    return result!.messages
      .filter((m) => m.ruleId === 'no-restricted-properties' || m.ruleId === 'no-restricted-syntax')
      .map((m) => m.message);
  }

  it('refuses the wall clock and performance.now() in a service; the injected Clock passes', async () => {
    const service = files.service();
    expect(await clockErrors(service, 'export const a = Date.now();\n')).toEqual([
      expect.stringMatching(/injected Clock/),
    ]);
    expect(await clockErrors(service, 'export const b = performance.now();\n')).toEqual([
      expect.stringMatching(/monotonicMs/),
    ]);
    expect(await clockErrors(service, 'export const c = new Date();\n')).toEqual([
      expect.stringMatching(/injected Clock/),
    ]);
    // A date made from a value is not a clock read.
    expect(await clockErrors(service, 'export const d = new Date(0);\n')).toEqual([]);
    // Adapters are where the system clock lives.
    expect(await clockErrors(files.adapter(), 'export const e = Date.now();\n')).toEqual([]);
  });
});
