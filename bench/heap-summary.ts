/**
 * What a V8 heap snapshot holds, by kind of object, and what one snapshot holds more than
 * another per unit (bench/fanout.ts: per idle viewer). Kinds are `type:name` — the constructor
 * for objects, the function for closures; strings are counted together, never printed (a
 * snapshot of a server holds tokens and transcript text).
 *
 *   npx tsx bench/heap-summary.ts BASE.heapsnapshot IDLE.heapsnapshot 1000   # per 1,000 units
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Kind {
  count: number;
  bytes: number;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self sizes by kind, and the total (every node's self size: the heap after the snapshot's GC). */
export function summarise(file: string): { kinds: Map<string, Kind>; total: number } {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const types = s.snapshot.meta.node_types[0];
  const kinds = new Map<string, Kind>();
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt!]!]!;
    const size = s.nodes[i + sizeAt!]!;
    total += size;
    // Strings by their text would print secrets: one kind for all of them.
    const name =
      type === 'string' || type === 'concatenated string' || type === 'sliced string'
        ? ''
        : (s.strings[s.nodes[i + nameAt!]!] ?? '').slice(0, 60).replace(/\s+/g, ' ');
    const key = `${type}:${name}`;
    const k = kinds.get(key) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += size;
    kinds.set(key, k);
  }
  return { kinds, total };
}

/** Kinds that grew the most from `base` to `after`, per `units` (count and bytes per unit). */
export function growth(
  base: ReturnType<typeof summarise>,
  after: ReturnType<typeof summarise>,
  units: number,
  top = 25,
): { total: number; rows: { kind: string; count: number; bytes: number }[] } {
  const rows = [...after.kinds].map(([kind, k]) => {
    const b = base.kinds.get(kind) ?? { count: 0, bytes: 0 };
    return { kind, count: (k.count - b.count) / units, bytes: (k.bytes - b.bytes) / units };
  });
  rows.sort((a, b) => b.bytes - a.bytes);
  return { total: (after.total - base.total) / units, rows: rows.slice(0, top) };
}

export function printGrowth(g: ReturnType<typeof growth>, unit: string, note = ''): void {
  console.log(`\nheap per ${unit}${note}: ${g.total.toFixed(0)} bytes (self sizes after GC); largest kinds:`);
  console.log(`| kind | objects per ${unit} | bytes per ${unit} |\n| ---- | ---: | ---: |`);
  for (const r of g.rows) console.log(`| \`${r.kind}\` | ${r.count.toFixed(2)} | ${r.bytes.toFixed(0)} |`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [base, after, units] = process.argv.slice(2);
  if (!base || !after) throw new Error('usage: heap-summary.ts BASE.heapsnapshot AFTER.heapsnapshot [units]');
  printGrowth(growth(summarise(base), summarise(after), Number(units ?? 1), 40), 'unit');
}
