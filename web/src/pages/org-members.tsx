import { useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import {
  MEMBERS_PAGE,
  changeRole,
  createInvitation,
  listInvitations,
  listMembers,
  removeMember,
  revokeInvitation,
  type Invitation,
  type Member,
  type MeInfo,
  type OrgRole,
} from '../api-org';
import { errorText, when } from '../format';
import {
  Confirm,
  CopyButton,
  ErrorLine,
  FieldError,
  ListStates,
  LoadStates,
  Status,
  describedBy,
  useLoad,
  useSectionState,
} from './org-common';

const ROLE_TEXT: Record<OrgRole, string> = { owner: 'Owner', admin: 'Admin', member: 'Member' };

/** What the API allows (src/domain/roles.ts): owners assign any role, admins never touch owners. */
function assignable(me: MeInfo, target: OrgRole): boolean {
  if (me.role === 'owner') return true;
  return me.role === 'admin' && target !== 'owner';
}

async function allMembers(): Promise<{ members: Member[]; more: boolean }> {
  const members = await listMembers();
  return { members, more: members.length === MEMBERS_PAGE };
}

export function MembersSection({ me }: { me: MeInfo }) {
  const [load, reload] = useLoad(allMembers);
  const [extra, setExtra] = useState<Member[]>([]);
  const [more, setMore] = useState<boolean | null>(null);
  const [roles, setRoles] = useState<Record<string, OrgRole>>({});
  const { status, setStatus, error, setError, confirming, setConfirming, confirmed } =
    useSectionState<string>();
  const headingRef = useRef<HTMLHeadingElement>(null);
  const manage = me.role === 'owner' || me.role === 'admin';

  const members = load.state === 'ready' ? [...load.data.members, ...extra] : [];
  const hasMore = more ?? (load.state === 'ready' && load.data.more);

  async function refresh() {
    setExtra([]);
    setMore(null);
    await reload();
  }

  async function loadMore() {
    try {
      const next = await listMembers(members.at(-1)?.id);
      setExtra([...extra, ...next]);
      setMore(next.length === MEMBERS_PAGE);
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function saveRole(m: Member) {
    const role = roles[m.id];
    if (!role || role === m.role) return;
    setError(null);
    setStatus('');
    try {
      await changeRole(m.id, role);
      setStatus(`${m.name} is now ${ROLE_TEXT[role].toLowerCase()}.`);
      setRoles({});
      await refresh();
    } catch (err) {
      // The API's own reason: last owner, admins and owners, and so on.
      setError(`Could not change ${m.name}'s role: ${errorText(err)}`);
    }
  }

  const remove = (m: Member) =>
    confirmed(() => removeMember(m.id), {
      done: `${m.name} was removed from the organization.`,
      failed: `Could not remove ${m.name}`,
      reload: refresh,
      focus: headingRef,
      clearStatus: true,
    });

  return (
    <section className="card" aria-labelledby="members-heading" aria-busy={load.state === 'loading'}>
      <h2 id="members-heading" ref={headingRef} tabIndex={-1}>
        Members
      </h2>
      <p className="hint">
        {manage
          ? 'Owners manage everything, including other owners. Admins manage members, invitations, settings, support access, workers and the audit log, but cannot touch owners. Members use recordings only.'
          : 'The people in this organization (read only).'}
      </p>
      <Status text={status} />
      <ErrorLine message={error} />
      <LoadStates load={load} what="the members" onRetry={() => void refresh()} />
      {load.state === 'ready' && members.length === 0 && <p className="empty">No members.</p>}
      {members.length > 0 && (
        <ul className="org-list" aria-label="Members">
          {members.map((m) => {
            const self = m.id === me.user.id;
            const canEdit = manage && !self && assignable(me, m.role);
            const selected = roles[m.id] ?? m.role;
            return (
              <li key={m.id} className="org-row">
                <div className="org-row-main">
                  <strong>{m.name}</strong>
                  {self && <span className="badge">You</span>}
                  <span className={`org-role org-role-${m.role}`}>{ROLE_TEXT[m.role]}</span>
                  <span className="meta">
                    {m.email} · two-step {m.mfaEnabled ? 'on' : 'off'} · joined {when(m.createdAt)}
                  </span>
                </div>
                {canEdit &&
                  (confirming === m.id ? (
                    <Confirm
                      label={`Confirm removing ${m.name}`}
                      question={`Remove ${m.name}? They lose access at once; their recordings stay with the organization.`}
                      keepLabel="Keep them"
                      doLabel="Remove"
                      onKeep={() => setConfirming(null)}
                      onDo={() => void remove(m)}
                    />
                  ) : (
                    <div className="org-actions">
                      <label className="visually-hidden" htmlFor={`role-${m.id}`}>
                        Role of {m.name}
                      </label>
                      <select
                        id={`role-${m.id}`}
                        value={selected}
                        onChange={(e) => setRoles({ ...roles, [m.id]: e.target.value as OrgRole })}
                      >
                        {(['owner', 'admin', 'member'] as const).map((r) => (
                          <option key={r} value={r} disabled={!assignable(me, r)}>
                            {ROLE_TEXT[r]}
                          </option>
                        ))}
                      </select>
                      <button
                        type="button"
                        disabled={selected === m.role}
                        aria-label={`Change role of ${m.name}`}
                        onClick={() => void saveRole(m)}
                      >
                        Change role
                      </button>
                      <button
                        type="button"
                        aria-label={`Remove ${m.name}`}
                        onClick={() => setConfirming(m.id)}
                      >
                        Remove…
                      </button>
                    </div>
                  ))}
              </li>
            );
          })}
        </ul>
      )}
      {hasMore && (
        <button type="button" onClick={() => void loadMore()}>
          Show more members
        </button>
      )}
    </section>
  );
}

const INVITE_STATUS: Record<Invitation['status'], string> = {
  pending: 'Waiting',
  accepted: 'Accepted',
  revoked: 'Revoked',
  expired: 'Expired',
};

export function InvitationsSection({ me }: { me: MeInfo }) {
  const [load, reload] = useLoad(listInvitations);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<'admin' | 'member'>('member');
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<{ email: string; url: string; emailSent: boolean } | null>(null);
  const { status, setStatus, error, setError, confirming, setConfirming, confirmed } =
    useSectionState<string>();
  const emailRef = useRef<HTMLInputElement>(null);

  async function invite(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setFieldError(null);
    setError(null);
    setCreated(null);
    setStatus('');
    try {
      const inv = await createInvitation(email.trim(), role);
      setCreated({ email: inv.email, url: inv.inviteUrl, emailSent: inv.emailSent });
      setEmail('');
      await reload();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 400 || err.code === 'conflict')) {
        setFieldError(err.status === 400 ? 'Enter a valid email address.' : err.message);
        emailRef.current?.focus();
      } else setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  const revoke = (inv: Invitation) =>
    confirmed(() => revokeInvitation(inv.id), {
      done: `The invitation to ${inv.email} was revoked; its link no longer works.`,
      failed: `Could not revoke the invitation to ${inv.email}`,
      reload,
    });

  return (
    <section className="card" aria-labelledby="invitations-heading" aria-busy={load.state === 'loading'}>
      <h2 id="invitations-heading">Invitations</h2>
      <form className="org-form" onSubmit={(e) => void invite(e)}>
        <div className="org-field">
          <label htmlFor="invite-email">Email</label>
          <input
            id="invite-email"
            ref={emailRef}
            type="email"
            required
            maxLength={320}
            autoComplete="off"
            value={email}
            aria-invalid={fieldError ? true : undefined}
            aria-describedby={describedBy('invite-hint', fieldError && 'invite-email-error')}
            onChange={(e) => setEmail(e.target.value)}
          />
        </div>
        <div className="org-field">
          <label htmlFor="invite-role">Role</label>
          <select
            id="invite-role"
            value={role}
            onChange={(e) => setRole(e.target.value as 'admin' | 'member')}
          >
            <option value="member">Member</option>
            <option value="admin" disabled={!assignable(me, 'admin')}>
              Admin
            </option>
          </select>
        </div>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Inviting…' : 'Invite'}
        </button>
      </form>
      <p id="invite-hint" className="hint">
        The link works once and for 7 days. A new invitation to the same address replaces the old link. To
        make someone an owner, invite them and then change their role.
      </p>
      <FieldError id="invite-email-error" message={fieldError} />
      {created && (
        <div className="org-secret" role="status">
          <p>
            {/* "Sent" only when the mail server took the email; otherwise the link is the way. */}
            {created.emailSent ? (
              <>
                <strong>Invitation sent to {created.email}.</strong> An email with this link is on its way.
              </>
            ) : (
              <>
                <strong>Link created — copy it</strong> and give it to {created.email} yourself: no email was
                sent (mail is not set up on this server, or it could not be sent).
              </>
            )}{' '}
            It is shown only now.
          </p>
          <code className="secret" data-testid="invite-url">
            {created.url}
          </code>
          <div>
            <CopyButton text={created.url} label="Copy link" />
          </div>
        </div>
      )}
      <ListStates
        status={status}
        error={error}
        load={load}
        what="the invitations"
        onRetry={() => void reload()}
        empty="No invitations yet. Invite someone by email above."
      />
      {load.state === 'ready' && load.data.length > 0 && (
        <ul className="org-list" aria-label="Invitations">
          {load.data.map((inv) => (
            <li key={inv.id} className="org-row">
              <div className="org-row-main">
                <strong>{inv.email}</strong>
                <span className={`org-role org-role-${inv.role}`}>{ROLE_TEXT[inv.role]}</span>
                <span className={`status org-inv-${inv.status}`}>{INVITE_STATUS[inv.status]}</span>
                <span className="meta">
                  created {when(inv.createdAt)}
                  {inv.status === 'pending' && ` · expires ${when(inv.expiresAt)}`}
                  {/* Stored by the server from the mail server's answer, so it holds after a reload. */}
                  {inv.emailSentAt ? ' · email sent' : ' · no email sent'}
                </span>
              </div>
              {inv.status === 'pending' &&
                assignable(me, inv.role) &&
                (confirming === inv.id ? (
                  <Confirm
                    label={`Confirm revoking the invitation to ${inv.email}`}
                    question="Revoke this invitation? Its link stops working."
                    keepLabel="Keep it"
                    doLabel="Revoke"
                    onKeep={() => setConfirming(null)}
                    onDo={() => void revoke(inv)}
                  />
                ) : (
                  <div className="org-actions">
                    <button
                      type="button"
                      aria-label={`Revoke the invitation to ${inv.email}`}
                      onClick={() => setConfirming(inv.id)}
                    >
                      Revoke…
                    </button>
                  </div>
                ))}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
