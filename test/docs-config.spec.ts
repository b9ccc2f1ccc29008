/**
 * Every environment variable the config schema accepts is documented for operators: in README's
 * configuration table or in the docs/ page of its topic (engines, workers…). A variable added
 * without a line of documentation fails here, not in a user's deployment.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (p: string) => readFileSync(path.join(root, p), 'utf8');

describe('configuration documentation', () => {
  it('names every SOTTO_* variable of src/config/ in README.md or docs/', () => {
    // The whole folder: the schema (env-schema.ts) and the settings read beside it (object
    // storage, key store, tool configs) declare variables config.ts never names.
    const source = readdirSync(path.join(root, 'src/config'))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))
      .map((f) => read(`src/config/${f}`))
      .join('\n');
    const vars = [...new Set([...source.matchAll(/\b(SOTTO_[A-Z0-9_]*[A-Z0-9])\b/g)].map((m) => m[1]!))];
    expect(vars.length).toBeGreaterThan(90);
    const docs = [
      read('README.md'),
      ...readdirSync(path.join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => read(`docs/${f}`)),
    ].join('\n');
    const undocumented = vars.filter((v) => !docs.includes(`\`${v}\``));
    expect(undocumented).toEqual([]);
  });
});
