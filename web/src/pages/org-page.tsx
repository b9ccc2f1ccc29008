import { useState } from 'react';
import { canManageOrg, isSupport, useMe, useSupportOrg } from '../api-org';
import { usePhone } from '../media';
import { onLinkClick } from '../router';
import { NotFoundPage } from './not-found-page';
import { ArchiveSection } from './org-archive';
import { AuditSection } from './org-audit';
import { DataSection } from './org-data';
import { InvitationsSection, MembersSection } from './org-members';
import { SettingsSection, SupportAccessSection } from './org-settings';
import { SsoSettingsSection } from './org-sso';
import { WebhooksSection } from './org-webhooks';
import { WorkersSection } from './org-workers';

export const SECTIONS = [
  { id: 'members', label: 'Members' },
  { id: 'invitations', label: 'Invitations' },
  { id: 'settings', label: 'Settings' },
  { id: 'support', label: 'Support access' },
  { id: 'workers', label: 'Workers' },
  { id: 'sso', label: 'Single sign-on' },
  { id: 'webhooks', label: 'Webhooks' },
  { id: 'archive', label: 'Archive' },
  { id: 'data', label: 'Data' },
  { id: 'audit', label: 'Audit log' },
] as const;

/**
 * Organization administration (owners and admins), one section per URL under /org. Sotto support
 * acting through a grant sees the members only (the API lets them read, never change). Members get
 * a plain "no access" screen; the API would refuse them anyway.
 */
export function OrgPage({ section }: { section: string }) {
  const me = useMe();
  const supportOrg = useSupportOrg();
  const phone = usePhone();
  const [open, setOpen] = useState(false);
  if (!me)
    // The same first element as the loaded page: the heading keeps the focus it was given.
    return (
      <>
        <h1 tabIndex={-1}>Organization</h1>
        <p aria-busy="true">Loading…</p>
      </>
    );

  const support = isSupport(me);
  if (!canManageOrg(me) && !support)
    return (
      <section className="card narrow">
        <h1 tabIndex={-1}>No access</h1>
        <p>
          Only the organization's owners and admins manage it. Ask one of them if you need a setting changed,
          or go back to your{' '}
          <a href="/recordings" onClick={onLinkClick}>
            recordings
          </a>
          .
        </p>
      </section>
    );

  const visible = support ? SECTIONS.filter((s) => s.id === 'members') : SECTIONS;
  const current = visible.find((s) => s.id === section);
  if (!current) return <NotFoundPage />;

  return (
    <>
      <h1 tabIndex={-1}>
        Organization{me.organization ? `: ${me.organization.name}` : supportOrg ? `: ${supportOrg.name}` : ''}
        <span className="visually-hidden"> — {current.label}</span>
      </h1>
      {phone && (
        // Ten tabs do not fit a phone: the section you are in, and the others behind a button.
        <button
          type="button"
          className="org-sections-toggle"
          aria-expanded={open}
          aria-controls="org-sections"
          onClick={() => setOpen((o) => !o)}
        >
          Section: {current.label}
        </button>
      )}
      <nav
        id="org-sections"
        className="org-tabs"
        aria-label="Organization sections"
        hidden={phone && !open}
        onClick={(e) => {
          if ((e.target as HTMLElement).closest('a')) setOpen(false);
        }}
      >
        {visible.map((s) => (
          <a
            key={s.id}
            href={`/org/${s.id}`}
            onClick={onLinkClick}
            aria-current={s.id === current.id ? 'page' : undefined}
          >
            {s.label}
          </a>
        ))}
      </nav>
      {current.id === 'members' && <MembersSection me={me} />}
      {current.id === 'invitations' && <InvitationsSection me={me} />}
      {current.id === 'settings' && <SettingsSection />}
      {current.id === 'support' && <SupportAccessSection />}
      {current.id === 'workers' && <WorkersSection />}
      {current.id === 'sso' && <SsoSettingsSection />}
      {current.id === 'webhooks' && <WebhooksSection />}
      {current.id === 'archive' && <ArchiveSection me={me} />}
      {current.id === 'data' && <DataSection me={me} />}
      {current.id === 'audit' && <AuditSection />}
    </>
  );
}
