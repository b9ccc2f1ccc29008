import { useCallback, useEffect, useState } from 'react';
import { readAudit, type AuditEntry, type AuditFilters, type AuditPage } from '../api-org';
import { errorText, when } from '../format';
import { LoadStates, type Loaded } from './org-common';

const ACTOR: Record<AuditEntry['actorKind'], string> = {
  user: 'User',
  support: 'Sotto support',
  system: 'System',
  anonymous: 'Anonymous',
  worker: 'Worker',
};
const NO_FILTERS: AuditFilters = { action: '', from: '', to: '' };
// The id's first block: enough to tell two unnamed ones apart, the whole id in the tooltip.
const short = (id: string) => id.split('-')[0] ?? id;

/** Who acted: a person by name (email below), else the kind of actor and a short id. */
function Actor({ e }: { e: AuditEntry }) {
  if (e.actorName)
    return (
      <>
        {e.actorName}
        {e.actorEmail && <span className="org-id"> {e.actorEmail}</span>}
      </>
    );
  return (
    <>
      {ACTOR[e.actorKind]}
      {e.actorId && (
        <code className="org-id" title={e.actorId}>
          {' '}
          {short(e.actorId)}
        </code>
      )}
    </>
  );
}

/** What it was done to: a person or a recording title when known, else the kind and a short id. */
function Target({ e }: { e: AuditEntry }) {
  if (!e.targetType && !e.targetId) return null;
  const kind = (e.targetType ?? '').replace(/_/g, ' ');
  if (e.targetLabel)
    return (
      <>
        <span className="org-id">{kind}</span> {e.targetLabel}
      </>
    );
  return (
    <>
      {kind}
      {e.targetId && (
        <code className="org-id" title={e.targetId}>
          {' '}
          {short(e.targetId)}
        </code>
      )}
    </>
  );
}

/** The org's tamper-evident log: newest first, 50 a page, with the whole chain's verification. */
export function AuditSection() {
  const [load, setLoad] = useState<Loaded<AuditPage>>({ state: 'loading' });
  const [pages, setPages] = useState<number[]>([]); // beforeSeq of each page shown, for "Newer"
  const [filters, setFilters] = useState<AuditFilters>(NO_FILTERS);
  // The picker's choices: every action of the log, kept from the last answer.
  const [actions, setActions] = useState<string[]>([]);

  const show = useCallback(async (beforeSeq: number | undefined, f: AuditFilters) => {
    setLoad({ state: 'loading' });
    try {
      const data = await readAudit(beforeSeq, f);
      setActions(data.actions);
      setLoad({ state: 'ready', data });
    } catch (err) {
      setLoad({ state: 'error', message: errorText(err) });
    }
  }, []);
  useEffect(() => {
    void show(undefined, NO_FILTERS);
  }, [show]);

  // A range that ends before it starts is said under "To" and not sent.
  const badRange = Boolean(filters.from && filters.to && filters.to < filters.from);
  const apply = (patch: Partial<AuditFilters>) => {
    const next = { ...filters, ...patch };
    setFilters(next);
    setPages([]);
    if (!(next.from && next.to && next.to < next.from)) void show(undefined, next);
  };
  const filtered = Boolean(filters.action || filters.from || filters.to);
  const v = load.state === 'ready' ? load.data.verification : null;

  return (
    <section className="card" aria-labelledby="audit-heading" aria-busy={load.state === 'loading'}>
      <h2 id="audit-heading">Audit log</h2>
      {v && (
        <div className={v.ok ? 'org-verify org-verify-ok' : 'org-verify org-verify-broken'} role="status">
          {v.ok ? (
            <>
              <strong>Chain verified</strong>: all {v.entries} entries are intact and in order (each entry's
              hash covers the one before it).
            </>
          ) : (
            <>
              <strong>Chain broken at entry {v.problem?.seq ?? '?'}</strong>: {v.problem?.reason ?? 'unknown'}
              . Entries from there on may have been altered or removed outside Sotto. Keep this page and
              contact your administrator or Sotto support.
            </>
          )}
        </div>
      )}
      {/* Filters apply at once, like the recordings list's. */}
      <form
        className="org-form audit-filters"
        aria-label="Filter the audit log"
        onSubmit={(e) => e.preventDefault()}
      >
        <div className="org-field">
          <label htmlFor="audit-action">Action</label>
          <select
            id="audit-action"
            value={filters.action}
            onChange={(e) => apply({ action: e.target.value })}
          >
            <option value="">All actions</option>
            {actions.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </div>
        <div className="org-field">
          <label htmlFor="audit-from">From</label>
          <input
            id="audit-from"
            type="date"
            value={filters.from}
            onChange={(e) => apply({ from: e.target.value })}
          />
        </div>
        <div className="org-field">
          <label htmlFor="audit-to">To (included)</label>
          <input
            id="audit-to"
            type="date"
            value={filters.to}
            aria-invalid={badRange || undefined}
            aria-describedby={badRange ? 'audit-to-error' : undefined}
            onChange={(e) => apply({ to: e.target.value })}
          />
        </div>
        {filtered && (
          <button type="button" onClick={() => apply(NO_FILTERS)}>
            Clear filters
          </button>
        )}
      </form>
      {badRange && (
        <p id="audit-to-error" className="error" role="alert">
          The end date is before the start date. Pick an end date on or after {filters.from}.
        </p>
      )}
      <LoadStates load={load} what="the audit log" onRetry={() => void show(pages.at(-1), filters)} />
      {load.state === 'ready' && load.data.entries.length === 0 && (
        <p className="empty">{filtered ? 'No entries match these filters.' : 'No entries yet.'}</p>
      )}
      {load.state === 'ready' && load.data.entries.length > 0 && (
        // Focusable and named: on a phone the table scrolls sideways, and keyboard users must reach it.
        <div className="org-table-wrap" tabIndex={0} role="region" aria-label="Audit log entries">
          <table className="report-table org-audit stack">
            <caption className="visually-hidden">Audit log entries, newest first</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Actor</th>
                <th scope="col">Target</th>
                <th scope="col">IP</th>
              </tr>
            </thead>
            <tbody>
              {load.data.entries.map((e) => (
                <tr key={e.seq}>
                  <td data-label="#">{e.seq}</td>
                  <td data-label="When">{when(e.at)}</td>
                  <th scope="row" data-label="Action">
                    <code>{e.action}</code>
                  </th>
                  <td data-label="Actor">
                    <Actor e={e} />
                  </td>
                  <td data-label="Target">
                    <Target e={e} />
                  </td>
                  <td data-label="IP">{e.ip ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div className="toolbar">
        {pages.length > 0 && (
          <button
            type="button"
            onClick={() => {
              const rest = pages.slice(0, -1);
              setPages(rest);
              void show(rest.at(-1), filters);
            }}
          >
            Newer entries
          </button>
        )}
        {load.state === 'ready' && load.data.nextBeforeSeq !== null && (
          <button
            type="button"
            onClick={() => {
              const next = load.data.nextBeforeSeq!;
              setPages([...pages, next]);
              void show(next, filters);
            }}
          >
            Older entries
          </button>
        )}
      </div>
    </section>
  );
}
