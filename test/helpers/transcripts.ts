import { randomUUID } from 'node:crypto';
import type { Services } from '../../src/app.js';
import { withTenant } from '../../src/db/tenant.js';
import type { Segment, Word } from '../../src/domain/transcript.js';
import { recordingRepository } from '../../src/repositories/recordings/recording.repository.js';
import { titleLocation, transcriptLocation } from '../../src/services/recordings/recording.service.js';

/** GET /recordings/:id/transcript as the specs read it. */
export interface TranscriptDoc {
  revision: number;
  version: string;
  segments: {
    id: string;
    speaker: string;
    start: number;
    end: number;
    text: string;
    edited: boolean;
    words: { w: string; start: number; end: number; conf: number }[];
  }[];
  speakers: { id: string; name: string }[];
}
/**
 * A finished recording written straight through the repository and the key service, exactly as
 * the worker stores one (encrypted title and body, status done), without running speech
 * recognition. For edit/export/search logic; the end-to-end specs upload real audio instead.
 */
export function seg(n: number, speaker: string, start: number, text: string, step = 0.5): Segment {
  const words: Word[] = text
    .split(' ')
    .filter(Boolean)
    .map((w, i) => ({ w, start: start + i * step, end: start + i * step + step * 0.8, conf: 0.8 }));
  return {
    id: `seg-${String(n).padStart(4, '0')}`,
    speaker,
    start,
    end: words.at(-1)?.end ?? start,
    text,
    words,
  };
}

export async function seedTranscript(
  services: Services,
  owner: { orgId: string; userId: string },
  opts: { title?: string; segments?: Segment[]; createdAt?: Date; done?: boolean } = {},
): Promise<string> {
  const id = randomUUID();
  const segments = opts.segments ?? [];
  const speakers = [...new Set(segments.map((s) => s.speaker))].sort();
  const now = opts.createdAt ?? new Date();
  await withTenant(services.db, owner, async (tx) => {
    await recordingRepository.insert(tx, {
      id,
      orgId: owner.orgId,
      ownerId: owner.userId,
      language: 'en',
      speakersHint: null,
      now,
    });
    if (opts.title)
      await recordingRepository.setTitle(
        tx,
        id,
        await services.keys.encrypt(tx, titleLocation(owner.orgId, id), opts.title),
      );
    if (opts.done === false) return;
    await recordingRepository.upsertTranscript(tx, {
      recordingId: id,
      orgId: owner.orgId,
      bodyEnc: await services.keys.encryptJson(tx, transcriptLocation(owner.orgId, id), {
        segments,
        speakers,
      }),
      now,
    });
    await recordingRepository.markDone(tx, id, {
      durationSeconds: Math.max(1, ...segments.map((s) => s.end + 1)),
      channels: 1,
      engine: 'fixture',
      now,
    });
  });
  return id;
}

/** Every value of every row of every table in the public schema, as bytes (a raw dump). */
export async function rawDump(services: Services): Promise<Buffer[]> {
  const tables = await services.db.query<{ tablename: string }>(
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`,
  );
  const out: Buffer[] = [];
  for (const { tablename } of tables.rows) {
    const rows = (await services.db.query<Record<string, unknown>>(`SELECT * FROM "${tablename}"`)).rows;
    for (const row of rows)
      for (const value of Object.values(row))
        out.push(
          Buffer.isBuffer(value) || value instanceof Uint8Array
            ? Buffer.from(value)
            : Buffer.from(JSON.stringify(value) ?? ''),
        );
  }
  return out;
}

export function dumpContains(dump: Buffer[], word: string): boolean {
  const needles = [word, word.toLowerCase(), word.toUpperCase()].map((w) => Buffer.from(w));
  return dump.some((b) => needles.some((n) => b.includes(n)));
}
