import { useEffect, useState } from 'react';
import { chooseSupportOrg, listGrantedOrgs, useSupportOrg, type GrantedOrg } from '../api-org';
import { errorText, when } from '../format';
import { navigate } from '../router';
import { LoadStates, type Loaded } from './org-common';

/**
 * Sotto support staff belong to no organization: they pick one whose owners granted access, and
 * every API call then carries it as X-Sotto-Org. Switching remounts the page (the app keys it on
 * the org), so nothing of the previous organization stays on screen.
 */
export function SupportOrgPicker() {
  const current = useSupportOrg();
  const [load, setLoad] = useState<Loaded<GrantedOrg[]>>({ state: 'loading' });

  async function reload() {
    setLoad({ state: 'loading' });
    try {
      setLoad({ state: 'ready', data: await listGrantedOrgs() });
    } catch (err) {
      setLoad({ state: 'error', message: errorText(err) });
    }
  }
  useEffect(() => {
    void reload();
  }, []);

  return (
    <section className="card" aria-labelledby="support-pick" aria-busy={load.state === 'loading'}>
      <h1 id="support-pick" tabIndex={-1}>
        Choose an organization
      </h1>
      <p className="hint">
        As Sotto support you see an organization only while its owners or admins have granted access, and only
        to read. Everything you open is recorded in that organization's audit log.
      </p>
      <LoadStates load={load} what="the organizations" onRetry={() => void reload()} />
      {load.state === 'ready' && load.data.length === 0 && (
        <p className="empty">
          No organization has granted support access right now. Ask the customer to grant it under
          Organization → Support access, then{' '}
          <button type="button" className="link" onClick={() => void reload()}>
            refresh this list
          </button>
          .
        </p>
      )}
      {load.state === 'ready' && load.data.length > 0 && (
        <ul className="org-list" aria-label="Organizations that granted access">
          {load.data.map((o) => (
            <li key={o.id} className="org-row">
              <div className="org-row-main">
                <strong>{o.name}</strong>
                {current?.id === o.id && <span className="badge">Current</span>}
                <span className="meta">access until {when(o.grantExpiresAt)}</span>
              </div>
              <div className="org-actions">
                <button
                  type="button"
                  className="primary"
                  aria-label={`Open ${o.name}`}
                  onClick={() => {
                    chooseSupportOrg({ id: o.id, name: o.name });
                    navigate('/recordings');
                  }}
                >
                  Open
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** The header's reminder of which organization support is in, with the way out. */
export function SupportOrgBadge() {
  const current = useSupportOrg();
  return (
    <span className="org-support-badge">
      <span>
        Support{current ? ' in ' : ''}
        {current && <strong>{current.name}</strong>}
      </span>
      <button
        type="button"
        className="link"
        onClick={() => {
          chooseSupportOrg(null);
          navigate('/support');
        }}
      >
        {current ? 'Switch organization' : 'Choose organization'}
      </button>
    </span>
  );
}
