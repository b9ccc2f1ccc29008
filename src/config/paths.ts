import path from 'node:path';

/** Whether `child` is `parent` or lies below it (both resolved paths). */
export function isPathInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
