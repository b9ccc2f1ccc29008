import { deflateSync, inflateSync } from 'node:zlib';
import type { Logger } from 'pino';
import type { Database, Queryable } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import { searchIndexRepository } from '../../repositories/recordings/search-index.repository.js';
import type { KeyService } from '../keys/key.service.js';
import { speakerName } from '../recordings/export.service.js';
import { titleLocation, transcriptLocation } from '../recordings/recording.service.js';
import type { ScheduledTask } from '../lifecycle/scheduler.service.js';
import { SEARCH_SCHEME, documentTerms, queryTerms, speakerTerm, tokensOf } from './search-tokens.js';
import { speakerNamesLocation } from '../recordings/transcript.service.js';

/**
 * The encrypted search index kept in step with what it indexes (docs/search.md). Every write of
 * a title or a transcript calls `indexRecording` inside its own transaction — the job that stores
 * a transcript, a transcript edit, an upload or live recording created with a title, a restore
 * from the archive — so the tokens commit or roll back with the text. Deletion, archiving and
 * the org purge need no call: the row cascades with its recording. Recordings written before the
 * index existed are indexed by the backfill task; until then search decrypts them as it always did.
 */
export type SearchKeys = Pick<KeyService, 'searchKey' | 'decryptString' | 'decryptJson' | 'encrypt'>;

/**
 * What search confirms candidates against and cuts snippets from: the title and each segment's
 * id, start, text and speaker's display name at indexing time (a rename re-indexes: it is a
 * transcript edit) — the transcript without word timings, about a tenth of its size — sealed
 * in the index row under the org's data key (its own AAD location), so a hit costs a small
 * decryption instead of the whole transcript's.
 */
export interface SearchDoc {
  title: string;
  segments: { id: string; start: number; text: string; speaker?: string }[];
}

export const searchDocLocation = (orgId: string, id: string) =>
  ({ orgId, table: 'search_index', rowId: id, field: 'doc' }) as const;

/**
 * The sealed form of a SearchDoc: JSON compressed with zlib (a third of the size or less: every
 * hit's text is read from the database and decrypted per query, and on PGlite reading dominates),
 * then sealed. Compression before encryption makes the ciphertext length follow the compressed
 * size; no party can add chosen text to a document and watch its length per query, so this tells
 * no more than the raw length would (docs/search.md).
 */
export async function sealSearchDoc(
  tx: Queryable,
  keys: Pick<KeyService, 'encrypt'>,
  orgId: string,
  recordingId: string,
  doc: SearchDoc,
): Promise<Buffer> {
  const packed = deflateSync(Buffer.from(JSON.stringify(doc), 'utf8'), { level: 1 });
  return keys.encrypt(tx, searchDocLocation(orgId, recordingId), packed);
}

/** Opens a sealed SearchDoc (plain JSON, starting with "{", is read too: rows sealed without compression). */
export async function openSearchDoc(
  tx: Queryable,
  keys: Pick<KeyService, 'decrypt'>,
  orgId: string,
  recordingId: string,
  docEnc: Uint8Array,
): Promise<SearchDoc> {
  const plain = await keys.decrypt(tx, searchDocLocation(orgId, recordingId), docEnc);
  const json = plain[0] === 0x7b ? plain : inflateSync(plain, { maxOutputLength: MAX_DOC_BYTES });
  const doc = JSON.parse(json.toString('utf8')) as Partial<SearchDoc>;
  return { title: doc.title ?? '', segments: doc.segments ?? [] };
}

/** Bound on an inflated search document (a transcript's text is a few megabytes at most). */
const MAX_DOC_BYTES = 256 * 1024 * 1024;

/**
 * (Re)computes one recording's tokens from its stored title and transcript, in the caller's
 * tenant transaction. `replace` false (the backfill) leaves a row a write path put there first.
 * False when the recording is gone.
 */
export async function indexRecording(
  tx: Queryable,
  keys: SearchKeys,
  orgId: string,
  recordingId: string,
  replace = true,
): Promise<boolean> {
  const src = await searchIndexRepository.source(tx, recordingId);
  if (!src) return false;
  const title = src.titleEnc
    ? await keys.decryptString(tx, titleLocation(orgId, recordingId), src.titleEnc)
    : '';
  const body = src.bodyEnc
    ? await keys.decryptJson<{
        segments?: { id?: unknown; start?: unknown; text?: unknown; speaker?: unknown }[];
      }>(tx, transcriptLocation(orgId, recordingId), src.bodyEnc)
    : { segments: [] };
  const names = src.namesEnc
    ? await keys.decryptJson<Record<string, string>>(
        tx,
        speakerNamesLocation(orgId, recordingId),
        src.namesEnc,
      )
    : {};
  const doc: SearchDoc = {
    title,
    segments: (body.segments ?? []).map((s) => ({
      id: String(s.id),
      start: Number(s.start),
      text: typeof s.text === 'string' ? s.text : '',
      // The name the panel shows (a user's rename, a live participant, else "Speaker N").
      speaker: speakerName(typeof s.speaker === 'string' ? s.speaker : '', names),
    })),
  };
  const tokens = tokensOf(
    await keys.searchKey(tx, orgId),
    documentTerms(
      title,
      doc.segments.map((s) => s.text),
      new Set(doc.segments.map((s) => s.speaker ?? '')),
    ),
  );
  const docEnc = await sealSearchDoc(tx, keys, orgId, recordingId, doc);
  await searchIndexRepository.put(tx, { recordingId, orgId, scheme: SEARCH_SCHEME, tokens, docEnc }, replace);
  return true;
}

/**
 * The tokens a query's matches must all hold, under the org's index key: undefined when the query
 * has no searchable word, [] when none of its words narrows the search (shorter than 3 characters).
 * A speaker (already checked to have a letter or digit) adds that speaker's token, so a search or
 * list narrowed to a speaker always narrows through the index, even with no word or short ones.
 */
export async function queryTokens(
  tx: Queryable,
  keys: Pick<KeyService, 'searchKey'>,
  orgId: string,
  q: string | undefined,
  speaker?: string,
) {
  const terms = q === undefined ? [] : queryTerms(q);
  if (!terms) return undefined;
  if (speaker !== undefined) terms.push(speakerTerm(speaker));
  return terms.length === 0 ? [] : tokensOf(await keys.searchKey(tx, orgId), terms);
}

/** Recordings indexed per backfill transaction, and per run at most (the next run continues). */
const BACKFILL_BATCH = 20;
const BACKFILL_PER_RUN = 2000;

export class SearchIndexService {
  constructor(
    private readonly db: Database,
    private readonly keys: SearchKeys,
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
  ) {}

  /** The maintenance task this service registers with the scheduler. */
  tasks(): ScheduledTask[] {
    return [{ name: 'search-index-backfill', run: async () => void (await this.backfill()) }];
  }

  /**
   * Indexes recordings that have a title or transcript but no index row of the current scheme,
   * oldest first, a small batch per tenant transaction so requests keep running between them.
   * One that cannot be decrypted (its org shredded mid-run, a damaged row) is skipped and left
   * to the scan; ids and codes only reach the log. Returns how many were indexed.
   */
  async backfill(perRun = BACKFILL_PER_RUN, batch = BACKFILL_BATCH): Promise<number> {
    let indexed = 0;
    let skipped = 0;
    let after: { createdAt: Date; id: string } | undefined;
    while (indexed + skipped < perRun) {
      const todo = await withSystem(this.db, (tx) =>
        searchIndexRepository.listUnindexed(
          tx,
          SEARCH_SCHEME,
          Math.min(batch, perRun - indexed - skipped),
          after,
        ),
      );
      if (todo.length === 0) break;
      for (const r of todo) {
        after = { createdAt: r.createdAt, id: r.id };
        try {
          const done = await withTenant(this.db, { orgId: r.orgId, userId: null }, (tx) =>
            indexRecording(tx, this.keys, r.orgId, r.id, false),
          );
          if (done) indexed++;
        } catch (err) {
          if (!(err instanceof AppError && err.code === 'decryption_failed')) throw err;
          skipped++;
          this.logger.warn(
            { recordingId: r.id, code: err.code },
            'search index backfill skipped a recording',
          );
        }
      }
    }
    if (indexed > 0 || skipped > 0) this.logger.info({ indexed, skipped }, 'search index backfill');
    return indexed;
  }
}
