import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

/**
 * Which spec files CI runs a second time, against PostgreSQL and Redis (vitest project
 * `backend`), and which run once, on the embedded default (project `once`). The rule is
 * computed from the code, so a new spec cannot fall out of the PostgreSQL run by forgetting a
 * convention:
 *
 * - a spec is a backend spec when it, or a test file it imports (directly or through other
 *   imports), reads DATABASE_URL or REDIS_URL, or hands the environment to a child process
 *   (`...process.env`, `env: process.env`) — the test app harness (test/helpers/test-app.ts)
 *   and the server-process helpers do, so every spec that builds an app or spawns `sotto` is one;
 * - except the browser specs (they import test/helpers/panel.ts): they re-test the panel, whose
 *   API calls the API specs already prove on both backends, and they are the slowest files. A
 *   browser spec that names usingPostgres/usingRedis itself tests something backend-specific and
 *   stays a backend spec.
 *
 * Everything else — unit tests of pure code, the recognizer, diarization and audio specs — never
 * sees DATABASE_URL or REDIS_URL, so a second run could not differ. test/test-layout.spec.ts
 * checks this classifier on known cases.
 */
const IMPORT =
  /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|(?:^|[\s;])import\s+['"](\.{1,2}\/[^'"]+)['"]/g;
/** What makes a test file see the backend the run was given. */
export const BACKEND_MARK = /\b(?:DATABASE_URL|REDIS_URL)\b|\.\.\.process\.env\b|\benv:\s*process\.env\b/;
const BROWSER_MARK = /from\s*['"][./]*helpers\/panel\.js['"]|from\s*['"]playwright-core['"]/;
const BACKEND_SPECIFIC = /\b(?:usingPostgres|usingRedis)\b/;

/** Relative imports of a TypeScript file, resolved to files (`.js` specifiers name `.ts` sources). */
export function relativeImports(file: string, text = readFileSync(file, 'utf8')): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec) continue;
    const base = path.resolve(path.dirname(file), spec);
    const candidates = [base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), base];
    const found = candidates.find((c) => /\.tsx?$/.test(c) && existsSync(c));
    if (found) out.push(found);
  }
  return out;
}

/** The spec and every TypeScript file it imports, transitively, that lies under `within`. */
export function importClosure(spec: string, within: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const dep of relativeImports(file)) if (dep.startsWith(within)) visit(dep);
  };
  visit(path.resolve(spec));
  return [...seen];
}

export type SpecKind = 'backend' | 'once';

/** The kind of one spec file, and why. */
export function classifySpec(spec: string, root: string): { kind: SpecKind; because: string } {
  const testDir = path.join(root, 'test') + path.sep;
  const text = readFileSync(spec, 'utf8');
  const marked = importClosure(spec, testDir).find((f) => BACKEND_MARK.test(readFileSync(f, 'utf8')));
  if (!marked) return { kind: 'once', because: 'no test file it imports sees DATABASE_URL or REDIS_URL' };
  const because = `${path.relative(root, marked)} sees the backend`;
  if (BROWSER_MARK.test(text) && !BACKEND_SPECIFIC.test(text)) {
    return { kind: 'once', because: `browser spec (${because}, but the API specs cover that)` };
  }
  return { kind: 'backend', because };
}

/** Every spec file (repository-relative, `/`-separated), the way vitest's include finds them. */
export function allSpecs(root: string): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) return e.name === 'fixtures' ? [] : walk(rel);
      return e.name.endsWith('.spec.ts') ? [rel] : [];
    });
  return [...walk('src'), ...walk('test')].sort();
}

/** The spec files of each project. */
export function specsByKind(root: string): Record<SpecKind, string[]> {
  const out: Record<SpecKind, string[]> = { backend: [], once: [] };
  for (const spec of allSpecs(root)) out[classifySpec(path.join(root, spec), root).kind].push(spec);
  return out;
}
