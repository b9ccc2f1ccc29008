import path from 'node:path';

/** Whether `child` is `parent` or lies below it (both resolved paths). */
export function isPathInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The master key file when SOTTO_MASTER_KEY_FILE is not set: `<dataDir>/keys/master.key`. */
export function defaultMasterKeyFile(dataDir: string): string {
  return path.join(dataDir, 'keys', 'master.key');
}
