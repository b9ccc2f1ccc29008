import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError } from '../api';
import {
  getRecording,
  listRecordings,
  NO_FILTERS,
  ownerChoices,
  PAGE_SIZE,
  type ListedRecording,
  type ListFilters,
  type Member,
} from '../api-recordings';
import { errorText } from '../format';
import { onLinkClick } from '../router';
import { usePhone } from '../media';
import { Drawer } from './drawer';
import { RecordingFilters } from './recordings-filters';
import { usePolling } from './recording-progress';
import { RecordingRow } from './recordings-row';
import { UploadPanel } from './recordings-upload';

/** The most rows one poll re-reads (the API's page limit). */
const MAX_REFRESH = 200;
const moving = (r: ListedRecording) =>
  r.status === 'queued' || r.status === 'processing' || r.status === 'live';

interface ListState {
  items: ListedRecording[];
  next: string | null;
  /**
   * Search only: the recordings the filters let through. Not "searched N of M": with the index
   * each page looks at all of them and decrypts only candidates (docs/search.md, `scan`).
   */
  total: number;
}

export function RecordingsPage() {
  const [filters, setFilters] = useState<ListFilters>(NO_FILTERS);
  const [list, setList] = useState<ListState | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [owners, setOwners] = useState<{ me: string; members: Member[] } | null>(null);
  // Bumped to clear the filter form (its search box keeps its own text until submitted).
  const [formKey, setFormKey] = useState(0);
  // Answers to an older filter arriving late must not overwrite the current one's.
  const generation = useRef(0);
  const searching = filters.q !== '' || filters.speaker !== '';

  const load = useCallback(async (f: ListFilters) => {
    const gen = ++generation.current;
    setError(null);
    try {
      const page = await listRecordings(f);
      if (gen !== generation.current) return;
      setList({
        items: page.items,
        next: page.next,
        total: page.scan?.total ?? 0,
      });
    } catch (err) {
      if (gen !== generation.current) return;
      setError(describe(err));
    }
  }, []);

  useEffect(() => {
    setList(null);
    void load(filters);
  }, [filters, load]);

  useEffect(() => {
    void ownerChoices().then(
      (o) => o.seesAll && setOwners({ me: o.me, members: o.members }),
      () => undefined, // without it the owner filter is simply not offered
    );
  }, []);

  async function more() {
    if (!list?.next) return;
    const gen = generation.current;
    setLoadingMore(true);
    try {
      const page = await listRecordings(filters, list.next);
      if (gen !== generation.current) return;
      setList(
        (l) =>
          l && {
            // A row can only repeat if it was deleted and re-listed meanwhile; keep ids unique.
            items: [...l.items, ...page.items.filter((i) => !l.items.some((x) => x.id === i.id))],
            next: page.next,
            total: page.scan?.total ?? l.total,
          },
      );
    } catch (err) {
      setError(describe(err));
    } finally {
      setLoadingMore(false);
    }
  }

  // Poll only while something shown is still moving: a list re-reads the rows it shows (one
  // request); a search refreshes only the moving rows (a re-scan would cost a full search). The
  // wait grows while nothing changes (usePolling: 1.5 s up to 10 s) and stops when nothing moves.
  const listLength = useRef(0);
  listLength.current = list?.items.length ?? 0;
  const busy = list?.items.filter(moving) ?? [];
  const busyKey = busy.map((r) => r.id).join(',');
  const signature = busy.map((r) => `${r.id}|${r.status}|${r.stage}|${r.progress}`).join(',');
  const refresh = useCallback(async () => {
    const gen = generation.current;
    if (!searching) {
      const n = Math.min(MAX_REFRESH, Math.max(PAGE_SIZE, listLength.current));
      const page = await listRecordings(filters, null, n).catch(() => undefined); // the next round tries again
      if (page && gen === generation.current)
        setList((l) => l && { ...l, items: page.items, next: l.items.length > n ? l.next : page.next });
      return;
    }
    await Promise.all(
      busyKey
        .split(',')
        .slice(0, 10)
        .map((id) =>
          getRecording(id).then(
            (r) =>
              gen === generation.current &&
              setList((l) => l && { ...l, items: l.items.map((x) => (x.id === id ? { ...x, ...r } : x)) }),
            () => undefined,
          ),
        ),
    );
  }, [busyKey, filters, searching]);
  usePolling(busyKey !== '', signature, refresh);

  const phone = usePhone();
  const [drawer, setDrawer] = useState<'upload' | 'filters' | null>(null);
  const close = () => setDrawer(null);
  const names = new Map(owners?.members.map((m) => [m.id, m.name]));
  const filtered = filters !== NO_FILTERS && Object.values(filters).some(Boolean);

  const onUploaded = () => {
    // Show the new upload: whatever filter was on might hide it.
    setFormKey((k) => k + 1);
    setFilters({ ...NO_FILTERS });
    setDrawer(null);
  };
  const filterForm = <RecordingFilters key={formKey} value={filters} onChange={setFilters} owners={owners} />;
  const active = Object.values(filters).filter(Boolean).length;

  return (
    <section>
      <h1 tabIndex={-1}>Recordings</h1>
      {phone ? (
        // A phone shows the list first; upload and the filters open over it.
        <div className="phone-actions">
          <button
            type="button"
            className="primary"
            aria-haspopup="dialog"
            aria-controls="upload-drawer"
            onClick={() => setDrawer('upload')}
          >
            Upload a recording
          </button>
          <button
            type="button"
            aria-haspopup="dialog"
            aria-controls="filters-drawer"
            onClick={() => setDrawer('filters')}
          >
            {active ? `Search and filters (${active} on)` : 'Search and filters'}
          </button>
        </div>
      ) : (
        <UploadPanel onUploaded={onUploaded} />
      )}
      <h2>{owners ? 'Recordings of your organization' : 'Your recordings'}</h2>
      {phone ? (
        <>
          <Drawer id="upload-drawer" title="Upload a recording" open={drawer === 'upload'} onClose={close}>
            <UploadPanel onUploaded={onUploaded} bare />
          </Drawer>
          <Drawer id="filters-drawer" title="Search and filters" open={drawer === 'filters'} onClose={close}>
            {filterForm}
          </Drawer>
        </>
      ) : (
        filterForm
      )}
      {error && (
        <div className="error" role="alert">
          <p>{error}</p>
          <button type="button" onClick={() => void load(filters)}>
            Try again
          </button>
        </div>
      )}
      {list === null && !error && <p aria-busy="true">{searching ? 'Searching…' : 'Loading recordings…'}</p>}
      {list && searching && (
        <p className="scan-progress" role="status">
          {list.next
            ? `${plural(list.items.length, 'match', 'matches')} so far · still searching.`
            : `${list.total === 1 ? 'The only recording' : `All ${plural(list.total, 'recording')}`} searched: ${list.items.length} found.`}
        </p>
      )}
      {list && list.items.length === 0 && !list.next && !filtered && (
        <p className="empty">
          No recordings yet — upload one {phone ? 'with the button above' : 'above'} or{' '}
          <a href="/live" onClick={onLinkClick}>
            start a live recording
          </a>
          .
        </p>
      )}
      {list && list.items.length === 0 && !list.next && filtered && (
        <p className="empty">
          {searching ? 'Nothing matched your search' : 'No recordings match these filters'}. Change or clear
          the filters above.
        </p>
      )}
      {list && list.items.length > 0 && (
        <ul className="recordings" aria-live="polite" aria-label="Recordings">
          {list.items.map((r) => (
            <RecordingRow
              key={r.id}
              r={r}
              owner={owners ? (r.ownerId === owners.me ? 'You' : names.get(r.ownerId)) : undefined}
              query={filters.q}
              onDeleted={(id) => setList((l) => l && { ...l, items: l.items.filter((x) => x.id !== id) })}
            />
          ))}
        </ul>
      )}
      {list?.next && (
        <button type="button" onClick={() => void more()} disabled={loadingMore} aria-busy={loadingMore}>
          {loadingMore ? 'Loading…' : searching ? 'Continue searching' : 'Load more'}
        </button>
      )}
    </section>
  );
}

const plural = (n: number, noun: string, nouns = `${noun}s`) => `${n} ${n === 1 ? noun : nouns}`;

/** What went wrong, and what to do about it. */
function describe(err: unknown): string {
  if (err instanceof ApiError && (err.status === 400 || err.status === 422))
    return `The search or filters were refused: ${err.message}. Check the dates (from before to) and the search words.`;
  if (err instanceof ApiError && err.status === 429)
    return 'Too many requests just now. Wait a moment, then try again.';
  if (err instanceof ApiError && err.status === 0)
    return 'The server could not be reached. Check your connection.';
  return `Could not load your recordings: ${errorText(err)}`;
}
