import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * The per-org folders under the data dir (sealed audio, live spools, exports, …), and the org's
 * objects in an object store (SOTTO_STORAGE=s3), removed whole when the organization is deleted.
 * Only a server-chosen UUID reaches a path or a key.
 */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class OrgFiles {
  constructor(
    private readonly roots: readonly string[],
    private readonly stores: readonly { removeOrg(orgId: string): Promise<number> }[] = [],
  ) {}

  /** Removes `<root>/<orgId>` under every root; returns how many files were in them. */
  async removeOrg(orgId: string): Promise<number> {
    const id = orgId.toLowerCase();
    if (!ID.test(id)) throw new Error('invalid org id');
    let files = 0;
    for (const root of this.roots) {
      const dir = path.join(root, id);
      files += await countFiles(dir);
      await rm(dir, { recursive: true, force: true });
    }
    for (const store of this.stores) files += await store.removeOrg(id);
    return files;
  }
}

async function countFiles(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let n = 0;
  for (const e of entries) n += e.isDirectory() ? await countFiles(path.join(dir, e.name)) : 1;
  return n;
}
