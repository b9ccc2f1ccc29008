import { useCallback, useEffect, useState } from 'react';
import { listMembers, readAudit, type AuditEntry, type AuditPage } from '../api-org';
import { errorText, when } from '../format';
import { LoadStates, type Loaded } from './org-common';

const ACTOR: Record<AuditEntry['actorKind'], string> = {
  user: 'User',
  support: 'Sotto support',
  system: 'System',
  anonymous: 'Anonymous',
  worker: 'Worker',
};

/** The org's tamper-evident log: newest first, 50 a page, with the whole chain's verification. */
export function AuditSection() {
  const [load, setLoad] = useState<Loaded<AuditPage>>({ state: 'loading' });
  const [pages, setPages] = useState<number[]>([]); // beforeSeq of each page shown, for "Newer"
  const [action, setAction] = useState('');
  const [filter, setFilter] = useState('');
  // Names for actor ids where we know them (the first page of members); otherwise the id alone.
  const [names, setNames] = useState<Map<string, string>>(new Map());
  useEffect(() => {
    listMembers().then(
      (ms) => setNames(new Map(ms.map((m) => [m.id, m.name]))),
      () => undefined,
    );
  }, []);

  const show = useCallback(async (beforeSeq: number | undefined, act: string) => {
    setLoad({ state: 'loading' });
    try {
      setLoad({ state: 'ready', data: await readAudit(beforeSeq, act || undefined) });
    } catch (err) {
      setLoad({ state: 'error', message: errorText(err) });
    }
  }, []);
  useEffect(() => {
    void show(undefined, '');
  }, [show]);

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
      <form
        className="org-form"
        onSubmit={(e) => {
          e.preventDefault();
          const a = action.trim();
          if (a && !/^[a-z0-9_.]{1,100}$/.test(a)) return;
          setFilter(a);
          setPages([]);
          void show(undefined, a);
        }}
      >
        <div className="org-field org-grow">
          <label htmlFor="audit-action">Only this action</label>
          <input
            id="audit-action"
            placeholder="for example member.role_changed"
            value={action}
            aria-describedby="audit-action-hint"
            onChange={(e) => setAction(e.target.value)}
          />
        </div>
        <button type="submit">Filter</button>
      </form>
      <p id="audit-action-hint" className="hint">
        Lower-case action names such as support.access or invitation.created; leave empty for everything.
      </p>
      <LoadStates load={load} what="the audit log" onRetry={() => void show(pages.at(-1), filter)} />
      {load.state === 'ready' && load.data.entries.length === 0 && (
        <p className="empty">No entries{filter ? ` for ${filter}` : ''}.</p>
      )}
      {load.state === 'ready' && load.data.entries.length > 0 && (
        // Focusable and named: on a phone the table scrolls sideways, and keyboard users must reach it.
        <div className="org-table-wrap" tabIndex={0} role="region" aria-label="Audit log entries">
          <table className="report-table org-audit">
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
                  <td>{e.seq}</td>
                  <td>{when(e.at)}</td>
                  <th scope="row">
                    <code>{e.action}</code>
                  </th>
                  <td>
                    {(e.actorKind === 'user' && e.actorId && names.get(e.actorId)) || ACTOR[e.actorKind]}
                    {e.actorId && <code className="org-id"> {e.actorId}</code>}
                  </td>
                  <td>
                    {e.targetType ?? ''}
                    {e.targetId && <code className="org-id"> {e.targetId}</code>}
                  </td>
                  <td>{e.ip ?? ''}</td>
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
              void show(rest.at(-1), filter);
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
              void show(next, filter);
            }}
          >
            Older entries
          </button>
        )}
      </div>
    </section>
  );
}
