import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/**
 * The executable a shell would run for `binary`: the name itself when it holds a slash, else the
 * first executable file of that name along PATH. PATH is the operating system's executable
 * search path, not Sotto configuration, so it is read here rather than in config/.
 */
export function findExecutable(binary: string, envPath = process.env.PATH ?? ''): string | undefined {
  const candidates = binary.includes('/')
    ? [binary]
    : envPath
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
