import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/**
 * The executable a shell would run for `binary`: the name itself when it holds a slash, else the
 * first executable file of that name along `searchPath` (PATH, which config/ reads with the rest
 * of the environment and hands down).
 */
export function findExecutable(binary: string, searchPath: string): string | undefined {
  const candidates = binary.includes('/')
    ? [binary]
    : searchPath
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, binary));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* try the next one */
    }
  }
  return undefined;
}
