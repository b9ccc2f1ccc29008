import type { Actor } from '../../domain/auth-context.js';
import { AppError } from '../../domain/errors.js';
import { actorCan } from '../../domain/api-scopes.js';
import type { Database, Queryable } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import {
  recordingRepository,
  type ListFilter,
  type SearchCandidate,
  type Visibility,
} from '../../repositories/recordings/recording.repository.js';
import { systemClock, type Clock } from '../../adapters/system/clock.adapter.js';
import { searchIndexRepository } from '../../repositories/recordings/search-index.repository.js';
import type { KeyService } from '../keys/key.service.js';
import { requirePermission } from '../orgs/org.service.js';
import { openSearchDoc, queryTokens, type SearchDoc } from './search-index.service.js';
import { SEARCH_SCHEME, foldFast, parseQuery, speakerKey } from './search-tokens.js';
import { speakerName } from '../recordings/export.service.js';
import { speakerNamesLocation } from '../recordings/transcript.service.js';
import {
  titleLocation,
  transcriptLocation,
  listFilter,
  type ListQueryFilter,
  type RecordingService,
  type RecordingView,
} from '../recordings/recording.service.js';

/**
 * Full-text search over the titles and transcripts a caller may see. Titles and transcripts are
 * encrypted per org; the encrypted search index (keyed-hash tokens, search-index.service.ts,
 * docs/search.md) narrows the visible recordings to candidates, and only those are decrypted and
 * confirmed by the matcher below — the index decides nothing on its own. Recordings not indexed
 * yet, and queries the index cannot narrow (only words shorter than 3 characters), are scanned
 * by decrypting as before. Candidates come newest first, at most `scanBudget` of them and for
 * about `timeBudgetMs` (checked between batches); a page therefore may hold fewer hits than asked
 * for (even none) while `next` says where it stopped. `next` is null only when every visible
 * recording has been considered.
 *
 * Matching folds case and accents ("Jose" finds "José"). A query in double quotes is a phrase
 * (its words in order, adjacent); otherwise every word must appear somewhere in the title or
 * transcript. Query words match word starts ("meet" finds "meeting").
 *
 * `speaker` (a display name, folded the same way and compared whole) narrows the search to that
 * speaker's segments: the words must be said by them, the title no longer counts; without `q` it
 * lists the recordings where they speak. The index holds a token per speaker name, so this
 * narrows like a word does.
 */
export interface SearchSnippet {
  segmentId: string;
  start: number;
  text: string;
}

export interface SearchHit extends RecordingView {
  match: { title: boolean; snippets: SearchSnippet[] };
}

export interface SearchPage {
  items: SearchHit[];
  next: string | null;
  /**
   * Recordings decrypted by this request, and how many visible recordings the filters let
   * through in all. With the index, `scanned` is about the hits (the index looked at every
   * recording): summed over pages it is not "searched N of M" (docs/search.md).
   */
  scan: { scanned: number; total: number };
}

interface Body {
  segments: { id: string; start: number; text: string; speaker?: string }[];
}

/** Recordings decrypted per request at most, and wall time spent scanning at most (see docs/search.md). */
const DEFAULT_SCAN_BUDGET = 200;
const DEFAULT_TIME_BUDGET_MS = 2000;
/** Rows decrypted per query: bounds memory for long transcripts. */
const BATCH = 10;
/** Candidates per query from the index: their sealed search text is small (no word timings). */
const INDEXED_BATCH = 25;
const MAX_SNIPPETS = 3;
const SNIPPET_CHARS = 160;

export class RecordingSearchService {
  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly recordings: Pick<RecordingService, 'getMany'>,
    private readonly scanBudget = DEFAULT_SCAN_BUDGET,
    private readonly timeBudgetMs = DEFAULT_TIME_BUDGET_MS,
    /** The time budget is behaviour (where a page stops), so it is measured on the injected clock. */
    private readonly clock: Clock = systemClock,
  ) {}

  async search(
    actor: Actor,
    query: {
      q?: string | undefined;
      speaker?: string | undefined;
      limit: number;
      after?: string | undefined;
      filter?: ListQueryFilter | undefined;
    },
  ): Promise<SearchPage> {
    requirePermission(actor, 'recordings.read');
    const speaker = query.speaker === undefined ? undefined : speakerKey(query.speaker);
    if (speaker === '') throw new AppError('bad_request', 'The speaker needs at least one letter or digit');
    const matcher = compile(query.q ?? '', speaker);
    if (!matcher) throw new AppError('bad_request', 'The search needs at least one letter or digit');
    const vis = visibility(actor);
    const filter = listFilter(actor, query.filter);
    let scanned = 0;
    let total = 0;
    const found = await withTenant(this.db, actor, async (tx) => {
      const tokens = await queryTokens(tx, this.keys, actor.orgId, query.q, speaker);
      const indexed = tokens !== undefined && tokens.length > 0;
      const fromIndex = indexed ? indexedCandidates(tx, vis, tokens, filter) : undefined;
      const candidates = async (page: {
        limit: number;
        after?: { createdAt: Date; id: string } | undefined;
      }): Promise<Candidate[]> =>
        fromIndex
          ? fromIndex(page)
          : (await recordingRepository.listForSearch(tx, vis, { ...page, filter })).map(fromScan);
      let after: { createdAt: Date; id: string } | undefined;
      if (query.after) {
        const last = await recordingRepository.find(tx, query.after, vis);
        if (!last) throw new AppError('bad_request', 'Unknown page cursor');
        after = { createdAt: last.createdAt, id: last.id };
      }
      total = await recordingRepository.count(tx, vis, filter);
      const hits: { id: string; match: SearchHit['match'] }[] = [];
      const started = this.clock.now().getTime();
      for (;;) {
        const want = Math.min(indexed ? INDEXED_BATCH : BATCH, this.scanBudget - scanned);
        const rows = await candidates({ limit: want, after });
        for (const row of rows) {
          scanned++;
          after = { createdAt: row.createdAt, id: row.id };
          const doc = await this.open(tx, row, speaker !== undefined);
          const match = matcher(doc.title, doc.segments);
          if (match) hits.push({ id: row.id, match });
          // A full page: the next one starts after this recording.
          if (hits.length === query.limit) return { hits, next: row.id };
        }
        if (rows.length < want) return { hits, next: null }; // every candidate considered
        if (scanned >= this.scanBudget || this.clock.now().getTime() - started > this.timeBudgetMs)
          return { hits, next: after?.id ?? null };
      }
    });
    // Views after the scan's transaction (PGlite has one connection: no nesting), all in one;
    // a recording deleted between the two is simply no longer a hit.
    const matches = new Map(found.hits.map((h) => [h.id, h.match]));
    const views = await this.recordings.getMany(
      actor,
      found.hits.map((h) => h.id),
    );
    const items: SearchHit[] = views.map((v) => ({ ...v, match: matches.get(v.id)! }));
    return { items, next: found.next, scan: { scanned, total } };
  }

  /**
   * A candidate's title and segments: its sealed search text, or (not indexed) the full rows, with
   * the speakers' display names when `named` (a search narrowed to a speaker).
   */
  private async open(tx: Queryable, row: Candidate, named: boolean): Promise<SearchDoc> {
    if (row.docEnc) return openSearchDoc(tx, this.keys, row.orgId, row.id, row.docEnc);
    const title = row.titleEnc
      ? await this.keys.decryptString(tx, titleLocation(row.orgId, row.id), row.titleEnc)
      : '';
    const body = row.bodyEnc
      ? await this.keys.decryptJson<Body>(tx, transcriptLocation(row.orgId, row.id), row.bodyEnc)
      : { segments: [] };
    if (!named) return { title, segments: body.segments };
    const names = row.namesEnc
      ? await this.keys.decryptJson<Record<string, string>>(
          tx,
          speakerNamesLocation(row.orgId, row.id),
          row.namesEnc,
        )
      : {};
    return {
      title,
      segments: body.segments.map((s) => ({ ...s, speaker: speakerName(s.speaker ?? '', names) })),
    };
  }
}

/** A recording to decrypt and match: from the index (its sealed search text) or from the scan. */
type Candidate = Pick<SearchCandidate, 'id' | 'orgId' | 'createdAt'> &
  ({ docEnc: Uint8Array; titleEnc?: never; bodyEnc?: never } | (SearchCandidate & { docEnc?: never }));

const fromScan = (row: SearchCandidate): Candidate => row;

type Matcher = (
  title: string,
  segments: Body['segments'],
) => { title: boolean; snippets: SearchSnippet[] } | undefined;

/**
 * Builds the matcher for a query, or undefined when it has no searchable word. With `speaker` (a
 * speakerKey) only that speaker's segments are searched and the title is not; an empty query then
 * matches any recording where they speak, its first segments as snippets.
 */
export function compile(q: string, speaker?: string): Matcher | undefined {
  const { phrase, words } = parseQuery(q);
  if (words.length === 0 && speaker === undefined) return undefined;
  const needles = phrase ? [words.join(' ')] : [...new Set(words)];
  const match = matchText(needles);
  if (speaker === undefined) return match;
  // A recording has a few speakers over hundreds of segments: fold each name once.
  const keys = new Map<string, string>();
  const keyOf = (name = '') => keys.get(name) ?? keys.set(name, speakerKey(name)).get(name)!;
  return (_title, segments) => {
    const theirs = segments.filter((s) => keyOf(s.speaker) === speaker);
    if (theirs.length === 0) return undefined;
    if (needles.length > 0) return match('', theirs);
    const snippets = theirs
      .slice(0, MAX_SNIPPETS)
      .map((s) => ({ segmentId: s.id, start: s.start, text: excerpt(s.text, 0) }));
    return { title: false, snippets };
  };
}

function matchText(needles: string[]): Matcher {
  return (title, segments) => {
    const foldedTitle = foldFast(title);
    const inTitle = needles.filter((n) => findWordStart(foldedTitle, n) >= 0);
    // Cheap rejection first (most recordings do not match): the whole transcript folded at once.
    const all = `${foldedTitle} ${foldFast(segments.map((s) => s.text).join(' '))}`;
    if (needles.some((n) => findWordStart(all, n) < 0)) return undefined;
    const found = new Set(inTitle);
    const snippets: SearchSnippet[] = [];
    for (const seg of segments) {
      // Every needle is looked for in every segment (all-words may be spread over segments);
      // a phrase has to be inside one segment.
      const folded = foldFast(seg.text);
      const hits = needles.filter((n) => findWordStart(folded, n) >= 0);
      if (hits.length === 0) continue;
      for (const n of hits) found.add(n);
      if (snippets.length < MAX_SNIPPETS) {
        // The exact position (mapped back to the original text) only for the few snippets.
        const mapped = fold(seg.text);
        const at = Math.min(...hits.map((n) => findWordStart(mapped.text, n)).filter((i) => i >= 0));
        const origin = Number.isFinite(at) ? (mapped.origin[at] ?? 0) : 0;
        snippets.push({ segmentId: seg.id, start: seg.start, text: excerpt(seg.text, origin) });
      }
      if (found.size === needles.length && snippets.length >= MAX_SNIPPETS) break;
    }
    if (found.size < needles.length) return undefined;
    return { title: inTitle.length > 0, snippets };
  };
}

/** The folding of fold() without the index map, on a whole string at once (the hot path). */
export { foldFast };

/**
 * Case- and accent-folded text where every run of non-letters/digits is one space, with the
 * index in the original string of each folded character (to cut snippets from the original).
 */
export function fold(text: string): { text: string; origin: number[] } {
  let out = ' ';
  const origin: number[] = [0];
  let i = 0;
  for (const ch of text) {
    const f = ch
      .normalize('NFKD')
      .replace(/\p{M}+/gu, '')
      .toLowerCase();
    // A lone combining mark (decomposed input) folds to nothing and does not split the word.
    for (const c of f) {
      const keep = /[\p{L}\p{N}]/u.test(c);
      if (!keep && out.endsWith(' ')) continue;
      out += keep ? c : ' ';
      origin.push(i);
    }
    i += ch.length;
  }
  // The leading space makes "a word start" simply "after a space", also at index 1.
  return { text: out, origin };
}

function findWordStart(haystack: string, needle: string): number {
  const at = haystack.indexOf(` ${needle}`);
  return at < 0 ? -1 : at + 1;
}

function excerpt(text: string, at: number): string {
  if (text.length <= SNIPPET_CHARS) return text;
  const from = Math.max(0, Math.min(at - SNIPPET_CHARS / 4, text.length - SNIPPET_CHARS));
  const cut = text.slice(from, from + SNIPPET_CHARS);
  return `${from > 0 ? '…' : ''}${cut}${from + SNIPPET_CHARS < text.length ? '…' : ''}`;
}

/**
 * Pages of candidates after a cursor: index rows holding every token, merged (newest first) with
 * the visible recordings that have no index row yet — those are decrypted like the scan did, so
 * a recording written before the index, or not yet reached by the backfill, is never missed.
 * Both lists are keyset pages in the same order, so the first `limit` of their merge are the
 * first `limit` of their union. Once the list of unindexed ones comes back short it is complete
 * (the cursor only moves on), and later pages take it from memory instead of asking again.
 */
function indexedCandidates(
  tx: Queryable,
  vis: Visibility,
  tokens: number[],
  filter: ListFilter,
): (page: { limit: number; after?: { createdAt: Date; id: string } | undefined }) => Promise<Candidate[]> {
  let rest: SearchCandidate[] | undefined;
  let planned = false;
  return async (page) => {
    if (!planned) await searchIndexRepository.preferIndex(tx);
    planned = true;
    const hits = await searchIndexRepository.matching(tx, vis, tokens, SEARCH_SCHEME, { ...page, filter });
    let pending: SearchCandidate[];
    if (rest) pending = rest.filter((r) => !page.after || newer(page.after, r) < 0).slice(0, page.limit);
    else {
      pending = await searchIndexRepository.unindexed(tx, vis, SEARCH_SCHEME, { ...page, filter });
      if (pending.length < page.limit) rest = pending;
    }
    return [...hits, ...pending.map(fromScan)].sort(newer).slice(0, page.limit);
  };
}

/** Newest first: negative when `a` comes before `b` (created later, or same time and larger id). */
function newer(a: { createdAt: Date; id: string }, b: { createdAt: Date; id: string }): number {
  return b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function visibility(actor: Actor): Visibility {
  return actorCan(actor, 'recordings.read_all') ? {} : { ownerId: actor.userId };
}
