import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PREFLIGHT_GATES } from './helpers/preflight.js';
import {
  BACKEND_MARK,
  allSpecs,
  classifySpec,
  relativeImports,
  specsByKind,
} from './helpers/spec-backends.js';

/**
 * The rules that keep the suite honest about what it runs: which specs CI runs a second time
 * against PostgreSQL and Redis (test/helpers/spec-backends.ts), and that every condition a spec
 * skips on is either checked by the preflight (test/helpers/preflight.ts, fatal under CI) or is a
 * backend condition that the other run covers.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(path.join(tmpdir(), 'sotto-layout-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(scratch, 'tree-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

describe('which specs run against PostgreSQL and Redis', () => {
  it('follows multi-line, type-only, side-effect and dynamic imports, and `.js` specifiers to `.ts` files', () => {
    const dir = tree({
      'test/a.spec.ts': [
        "import {\n  one,\n  two,\n} from './helpers/one.js';",
        "import type { T } from './helpers/two.js';",
        "import './helpers/three.js';",
        "const m = await import('./helpers/four.js');",
        "export { x } from './helpers/five.js';",
        "import { y } from 'node:fs'; // not relative",
        'const s = \'from "./helpers/not-an-import.js"\';',
      ].join('\n'),
      ...Object.fromEntries(['one', 'two', 'three', 'four', 'five'].map((n) => [`test/helpers/${n}.ts`, ''])),
    });
    const found = relativeImports(path.join(dir, 'test/a.spec.ts')).map((f) => path.basename(f));
    expect(found.sort()).toEqual(['five.ts', 'four.ts', 'one.ts', 'three.ts', 'two.ts']);
  });

  it('classifies by what a spec can see of the environment, through any depth of imports', () => {
    const dir = tree({
      'test/helpers/app.ts': 'export const usingPostgres = Boolean(process.env.DATABASE_URL);',
      'test/helpers/middle.ts': "export { usingPostgres } from './app.js';",
      'test/helpers/spawn.ts': "spawn('sotto', [], { env: { ...process.env, HOME: '/tmp' } });",
      'test/helpers/panel.ts': "export * from './app.js';",
      'test/helpers/pure.ts': 'export const two = 2;',
      'test/direct.spec.ts': "import { usingPostgres } from './helpers/app.js';",
      'test/deep.spec.ts': "import { usingPostgres } from './helpers/middle.js';",
      'test/child.spec.ts': "import './helpers/spawn.js';",
      'test/own-env.spec.ts': 'const url = process.env.REDIS_URL;',
      'test/pure.spec.ts': "import { two } from './helpers/pure.js';",
      'test/browser.spec.ts': "import { startPanel } from './helpers/panel.js';",
      'test/browser-redis.spec.ts':
        "import { startPanel, usingRedis } from './helpers/panel.js';\nif (usingRedis) {}",
    });
    const kind = (name: string) => classifySpec(path.join(dir, 'test', name), dir).kind;
    expect(kind('direct.spec.ts')).toBe('backend');
    expect(kind('deep.spec.ts')).toBe('backend');
    expect(kind('child.spec.ts')).toBe('backend');
    expect(kind('own-env.spec.ts')).toBe('backend');
    expect(kind('pure.spec.ts')).toBe('once');
    expect(kind('browser.spec.ts')).toBe('once');
    expect(kind('browser-redis.spec.ts')).toBe('backend');
  });

  it('in this repository: every spec in exactly one project, and the harnesses that read the backend anchor the rule', () => {
    const specs = specsByKind(root);
    expect([...specs.backend, ...specs.once].sort()).toEqual(allSpecs(root));
    expect(specs.backend.filter((s) => specs.once.includes(s))).toEqual([]);
    for (const harness of ['test/helpers/test-app.ts', 'test/helpers/live-instances.ts']) {
      expect(BACKEND_MARK.test(readFileSync(path.join(root, harness), 'utf8')), harness).toBe(true);
    }
    // Every non-browser spec that builds the test app is a backend spec.
    for (const spec of allSpecs(root)) {
      const text = readFileSync(path.join(root, spec), 'utf8');
      if (/helpers\/test-app\.js/.test(text) && !/helpers\/panel\.js/.test(text)) {
        expect(specs.backend, spec).toContain(spec);
      }
    }
    expect(specs.backend).toContain('test/cross-tenant-sweep.spec.ts');
    expect(specs.once).toContain('src/audio/wav.spec.ts');
  });
});

/**
 * Every name used in a spec's skipIf/runIf condition, and what it stands for: preflight gates
 * (checked before every run, fatal under CI), 'backend' (usingPostgres/usingRedis: the other run
 * covers it), or 'never on CI' (a skip where a CUDA runtime is present), or plain syntax.
 */
const CONDITIONS: Record<string, readonly string[]> = {
  hasCorpus: ['corpus'],
  corpusReady: ['corpus', 'pocketsphinx'],
  skipReason: ['corpus', 'chromium', 'pocketsphinx'],
  sphinxAvailability: ['pocketsphinx'],
  installed: ['pocketsphinx'],
  available: ['pocketsphinx', 'ffmpeg'],
  hasSphinx: ['pocketsphinx'],
  missing: ['pocketsphinx'],
  skip: ['pocketsphinx', 'sphinx-helper', 'corpus', 'backend'],
  decoder: ['ffmpeg'],
  decoderStatus: ['ffmpeg'],
  soffice: ['libreoffice'],
  hasChromium: ['chromium'],
  hasRedisServer: ['redis-server'],
  mounted: ['tmpfs'],
  existsSync: ['/dev/full'],
  hasScript: ['script'],
  usingPostgres: ['backend'],
  usingRedis: ['backend'],
  cudaLoads: ['never on CI'],
  Boolean: [],
  undefined: [],
};

function skipConditions(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(/\.(?:skipIf|runIf)\(/g)) {
    let i = m.index + m[0].length;
    let depth = 1;
    let arg = '';
    while (depth > 0 && i < text.length) {
      const c = text[i++]!;
      if (c === '(') depth++;
      if (c === ')') depth--;
      if (depth > 0) arg += c;
    }
    const code = arg.replace(/'[^']*'|"[^"]*"|`[^`]*`/g, '');
    names.push(...(code.match(/[A-Za-z_$][\w$]*/g) ?? []));
  }
  return names;
}

describe('skips', () => {
  it('every condition a spec skips on is known, and each tool it needs is checked by the preflight', () => {
    const unknown: string[] = [];
    // (This file is left out: its scanner test below holds example conditions.)
    for (const spec of allSpecs(root).filter((s) => s !== 'test/test-layout.spec.ts')) {
      for (const name of skipConditions(readFileSync(path.join(root, spec), 'utf8'))) {
        if (!(name in CONDITIONS)) unknown.push(`${spec}: ${name}`);
      }
    }
    // A new name here means a new way to skip: add what it stands for to CONDITIONS and, if it is
    // a tool or file the machine must provide, a check to test/helpers/preflight.ts.
    expect(unknown).toEqual([]);
    const gates = new Set<string>([...PREFLIGHT_GATES, 'backend', 'never on CI']);
    expect(
      Object.values(CONDITIONS)
        .flat()
        .filter((g) => !gates.has(g)),
    ).toEqual([]);
  });

  it('the condition scanner sees nested calls and ignores strings', () => {
    expect(skipConditions("it.skipIf(!a.available || f(b))('x (skipped: c)', () => {})")).toEqual([
      'a',
      'available',
      'f',
      'b',
    ]);
    expect(skipConditions('describe.runIf(usingRedis)(`t ${d}`, () => {})')).toEqual(['usingRedis']);
  });
});

/**
 * Spec files share one worker process (vitest.config.ts, `isolate: false`): what one file changes
 * in the process outlives it. So no spec or helper mocks modules, stubs globals or the environment,
 * installs fake timers or writes process.env.
 */
const PROCESS_WIDE = [
  /\bvi\.(?:mock|doMock|stubEnv|stubGlobal|useFakeTimers)\(/,
  /\bprocess\.env(?:\.\w+|\[[^\]]+\])\s*(?:=(?!=)|\+=|\?\?=|\|\|=)/,
  /\bdelete\s+process\.env\b/,
  /\bObject\.assign\(\s*process\.env\b/,
];

describe('specs that share a worker process', () => {
  it('the rule catches each kind of process-wide change', () => {
    for (const line of [
      "vi.mock('../src/app.js');",
      "vi.stubEnv('TZ', 'UTC');",
      'vi.useFakeTimers();',
      "process.env.SOTTO_ENV = 'test';",
      "process.env['X'] ??= '1';",
      'delete process.env.DATABASE_URL;',
      'Object.assign(process.env, extra);',
    ])
      expect(
        PROCESS_WIDE.some((r) => r.test(line)),
        line,
      ).toBe(true);
    for (const line of ["const url = process.env.DATABASE_URL ?? '';", 'if (process.env.CI === "true") {}'])
      expect(
        PROCESS_WIDE.some((r) => r.test(line)),
        line,
      ).toBe(false);
  });

  it('in this repository: no spec or test helper changes the worker process for the files after it', () => {
    const config = readFileSync(path.join(root, 'vitest.config.ts'), 'utf8');
    const globalSetup = [...(/globalSetup: \[([^\]]*)\]/.exec(config)?.[1] ?? '').matchAll(/'([^']+)'/g)].map(
      (m) => m[1]!,
    );
    expect(globalSetup).toContain('test/helpers/db-template.ts');
    const files = [
      // This file names the forbidden calls in its own examples.
      ...allSpecs(root).filter((f) => f !== 'test/test-layout.spec.ts'),
      ...readdirSync(path.join(root, 'test/helpers'))
        .filter((f) => f.endsWith('.ts'))
        .map((f) => `test/helpers/${f}`)
        // globalSetup files run once in vitest's own process, before any worker: they hand the
        // workers what they made through process.env (inherited by the workers), by design.
        .filter((f) => !globalSetup.includes(f)),
    ];
    const offenders = files.filter((f) => {
      const text = readFileSync(path.join(root, f), 'utf8');
      return PROCESS_WIDE.some((r) => r.test(text));
    });
    expect(offenders).toEqual([]);
  });
});
