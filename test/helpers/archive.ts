import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestApp } from './test-app.js';

/**
 * Flips one byte of a sealed archive part where it is stored: in the dir store, `fromEnd` bytes
 * before the end of its file; in the database store, at byte `dbOffset`, as the login role (the
 * application role may not UPDATE archive objects at all).
 */
export async function flipArchiveByte(o: {
  t: TestApp;
  store: 'dir' | 'database';
  dataDir: string;
  orgId: string;
  archiveId: string;
  part: 'audio' | 'object';
  fromEnd: number;
  dbOffset: number;
}): Promise<void> {
  if (o.store === 'dir') {
    const file = path.join(o.dataDir, 'archive', o.orgId, `${o.archiveId}.${o.part}`);
    const bytes = readFileSync(file);
    bytes[bytes.length - o.fromEnd]! ^= 0x01;
    writeFileSync(file, bytes);
  } else {
    await o.t.db.query(
      `UPDATE archive_objects SET data = set_byte(data, $3, get_byte(data, $3) # 1)
        WHERE archive_id = $1 AND part = $2`,
      [o.archiveId, o.part, o.dbOffset],
    );
  }
}
