// After `npm run test:record`: one line per recorded engine answer (several spec processes may
// have recorded the same one), sorted by key so that a re-recording diffs line by line.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../test/fixtures/replay/sphinx.jsonl', import.meta.url);
const byKey = new Map();
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (line) byKey.set(JSON.parse(line).k, line);
}
const keys = [...byKey.keys()].sort();
writeFileSync(file, keys.map((k) => `${byKey.get(k)}\n`).join(''));
console.log(`${keys.length} recorded answers in ${file.pathname}`);
