import { statfs } from 'node:fs/promises';
import path from 'node:path';

/**
 * Free space on the file system holding a directory (the data directory: uploads staged, sealed
 * audio, live spools, the embedded database). What an unprivileged process may still use
 * (`bavail`), not what root could. A directory not created yet is measured where it will be
 * (its nearest existing parent).
 */
export class DiskSpace {
  constructor(private readonly dir: string) {}

  async freeBytes(): Promise<number> {
    let dir = path.resolve(this.dir);
    for (;;) {
      try {
        const s = await statfs(dir);
        return s.bavail * s.bsize;
      } catch (err) {
        const parent = path.dirname(dir);
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === dir) throw err;
        dir = parent;
      }
    }
  }
}
