import type { Actor } from '../domain/auth-context.js';
import { AppError } from '../domain/errors.js';
import { actorCan } from '../domain/api-scopes.js';
import type { Database } from '../db/database.js';
import { withTenant } from '../db/tenant.js';
import { recordingRepository, type Visibility } from '../repositories/recording.repository.js';
import type { KeyService } from './key.service.js';
import { requirePermission } from './org.service.js';
import {
  titleLocation,
  transcriptLocation,
  listFilter,
  type ListQueryFilter,
  type RecordingService,
  type RecordingView,
} from './recording.service.js';

/**
 * Full-text search over the titles and transcripts a caller may see, without any search index:
 * titles and transcripts are encrypted per org, and every index we could keep beside them would
 * leak (see docs/search.md for the alternatives and the measured cost). Each request decrypts and
 * scans the caller's visible recordings newest first, at most `scanBudget` of them and for about
 * `timeBudgetMs` (checked between batches); a page therefore may hold fewer hits than asked for
 * (even none) while `next` says where the scan stopped. `next` is null only when every visible recording has been scanned.
 *
 * Matching folds case and accents ("Jose" finds "José"). A query in double quotes is a phrase
 * (its words in order, adjacent); otherwise every word must appear somewhere in the title or
 * transcript. Query words match word starts ("meet" finds "meeting").
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
   * through in all: a client adds up `scanned` over its pages to show "searched N of M".
   */
  scan: { scanned: number; total: number };
}

interface Body {
  segments: { id: string; start: number; text: string }[];
}

/** Recordings decrypted per request at most, and wall time spent scanning at most (see docs/search.md). */
const DEFAULT_SCAN_BUDGET = 200;
const DEFAULT_TIME_BUDGET_MS = 2000;
/** Rows decrypted per query: bounds memory for long transcripts. */
const BATCH = 10;
const MAX_SNIPPETS = 3;
const SNIPPET_CHARS = 160;

export class RecordingSearchService {
  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly recordings: Pick<RecordingService, 'get'>,
    private readonly scanBudget = DEFAULT_SCAN_BUDGET,
    private readonly timeBudgetMs = DEFAULT_TIME_BUDGET_MS,
  ) {}

  async search(
    actor: Actor,
    query: {
      q: string;
      limit: number;
      after?: string | undefined;
      filter?: ListQueryFilter | undefined;
    },
  ): Promise<SearchPage> {
    requirePermission(actor, 'recordings.read');
    const matcher = compile(query.q);
    if (!matcher) throw new AppError('bad_request', 'The search needs at least one letter or digit');
    const vis = visibility(actor);
    const filter = listFilter(actor, query.filter);
    let scanned = 0;
    let total = 0;
    const found = await withTenant(this.db, actor, async (tx) => {
      let after: { createdAt: Date; id: string } | undefined;
      if (query.after) {
        const last = await recordingRepository.find(tx, query.after, vis);
        if (!last) throw new AppError('bad_request', 'Unknown page cursor');
        after = { createdAt: last.createdAt, id: last.id };
      }
      total = await recordingRepository.count(tx, vis, filter);
      const hits: { id: string; match: SearchHit['match'] }[] = [];
      // Elapsed time of this request's scan (a duration, not a date: no Clock needed).
      const started = performance.now();
      for (;;) {
        const want = Math.min(BATCH, this.scanBudget - scanned);
        const rows = await recordingRepository.listForSearch(tx, vis, { limit: want, after, filter });
        for (const row of rows) {
          scanned++;
          after = { createdAt: row.createdAt, id: row.id };
          const title = row.titleEnc
            ? await this.keys.decryptString(tx, titleLocation(row.orgId, row.id), row.titleEnc)
            : '';
          const body = row.bodyEnc
            ? await this.keys.decryptJson<Body>(tx, transcriptLocation(row.orgId, row.id), row.bodyEnc)
            : { segments: [] };
          const match = matcher(title, body.segments);
          if (match) hits.push({ id: row.id, match });
          // A full page: the next one starts after this recording.
          if (hits.length === query.limit) return { hits, next: row.id };
        }
        if (rows.length < want) return { hits, next: null }; // every visible recording scanned
        if (scanned >= this.scanBudget || performance.now() - started > this.timeBudgetMs)
          return { hits, next: after?.id ?? null };
      }
    });
    // Views after the scan's transaction (PGlite has one connection: no nesting).
    const items: SearchHit[] = [];
    for (const h of found.hits) {
      try {
        items.push({ ...(await this.recordings.get(actor, h.id)), match: h.match });
      } catch (err) {
        // Deleted between the scan and now: it is simply no longer a hit.
        if (!(err instanceof AppError && err.code === 'not_found')) throw err;
      }
    }
    return { items, next: found.next, scan: { scanned, total } };
  }
}

type Matcher = (
  title: string,
  segments: Body['segments'],
) => { title: boolean; snippets: SearchSnippet[] } | undefined;

/** Builds the matcher for a query, or undefined when it has no searchable word. */
export function compile(q: string): Matcher | undefined {
  const trimmed = q.trim();
  const phrase = trimmed.length > 2 && trimmed.startsWith('"') && trimmed.endsWith('"');
  const words = foldFast(phrase ? trimmed.slice(1, -1) : trimmed)
    .split(' ')
    .filter(Boolean);
  if (words.length === 0) return undefined;
  const needles = phrase ? [words.join(' ')] : [...new Set(words)];
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
export function foldFast(text: string): string {
  return ` ${text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')}`;
}

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

function visibility(actor: Actor): Visibility {
  return actorCan(actor, 'recordings.read_all') ? {} : { ownerId: actor.userId };
}
