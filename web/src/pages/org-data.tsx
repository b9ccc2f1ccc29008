import { useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError, endSession } from '../api';
import {
  bytes,
  deleteExport,
  deleteOrganization,
  downloadExport,
  listExports,
  requestExport,
  type OrgExport,
} from '../api-lifecycle';
import type { MeInfo } from '../api-org';
import { errorText, when } from '../format';
import { navigate } from '../router';
import {
  ReauthFields,
  reauthRefusal,
  reauthStart,
  useFocusAfter,
  type ReauthState,
} from './account-deletion-section';
import { Confirm, ErrorLine, FieldError, LoadStates, Status, describedBy, useLoad } from './org-common';
import { ConfirmDialog } from './recordings-confirm';

/** How often a queued or building export is checked again. */
const POLL_MS = 1000;

const STATUS: Record<OrgExport['status'], string> = {
  queued: 'Waiting to start',
  building: 'Preparing',
  ready: 'Ready',
  failed: 'Failed',
  expired: 'Expired',
};

const busyStatus = (e: OrgExport) => e.status === 'queued' || e.status === 'building';

/** Organization → Data: the whole-org export, and (owners) deleting the organization. */
export function DataSection({ me }: { me: MeInfo }) {
  return (
    <>
      <ExportSection />
      <DeleteOrgSection me={me} />
    </>
  );
}

function ExportSection() {
  const [load, reload] = useLoad(listExports);
  const [items, setItems] = useState<OrgExport[]>([]);
  const [requesting, setRequesting] = useState(false);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [status, setStatus] = useState('');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (load.state === 'ready') setItems(load.data);
  }, [load]);

  // While an export is being prepared, check it again every second; stops when none is.
  const pending = items.some(busyStatus);
  useEffect(() => {
    if (!pending) return;
    let live = true;
    const timer = setTimeout(() => {
      listExports().then(
        (fresh) => {
          if (!live) return;
          setItems(fresh);
          const done = fresh.find(
            (e) => e.status === 'ready' && items.some((o) => o.id === e.id && busyStatus(o)),
          );
          if (done) setStatus('The export is ready to download.');
          const failed = fresh.find(
            (e) => e.status === 'failed' && items.some((o) => o.id === e.id && busyStatus(o)),
          );
          if (failed)
            setError(`The export failed (${failed.errorCode ?? 'unknown error'}). Request a new one.`);
        },
        (err: unknown) => {
          // Keep the rows; a new poll is scheduled by setting the same list again.
          if (!live) return;
          setError(`Could not check the export's progress: ${errorText(err)}. Checking again…`);
          setItems((old) => [...old]);
        },
      );
    }, POLL_MS);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [pending, items]);

  async function request() {
    setRequesting(true);
    setError(null);
    setStatus('');
    try {
      const e = await requestExport();
      setItems((old) => [e, ...old.filter((o) => o.id !== e.id)]);
      setStatus('Export requested: it is being prepared. You can leave this page and come back.');
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 409
          ? 'An export is already being prepared: wait for it to be ready.'
          : `Could not request an export: ${errorText(err)}`,
      );
    } finally {
      setRequesting(false);
    }
  }

  async function download(e: OrgExport) {
    setError(null);
    setStatus('');
    try {
      // The download needs the bearer token, so fetch it and hand the browser a blob: URL.
      const blob = await downloadExport(e.id);
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = `sotto-export-${e.id}.zip`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      setStatus(`Downloaded sotto-export-${e.id}.zip (${bytes(blob.size)}).`);
    } catch (err) {
      setError(`Could not download the export: ${errorText(err)}`);
    }
  }

  async function remove(e: OrgExport) {
    setConfirming(null);
    setError(null);
    try {
      await deleteExport(e.id);
      setItems((old) => old.filter((o) => o.id !== e.id));
      setStatus('The export and its file were deleted.');
    } catch (err) {
      setError(`Could not delete the export: ${errorText(err)}`);
    }
  }

  return (
    <section className="card" aria-labelledby="export-heading" aria-busy={load.state === 'loading'}>
      <h2 id="export-heading">Export all data</h2>
      <p className="hint">
        One zip with everything the organization has: members, recordings, transcripts (current and original),
        reports, kept audio and the verified audit log. It is prepared in the background, kept encrypted on
        the server, and can be downloaded for a limited time once ready. The file holds transcripts in plain
        form: store it as carefully as the recordings themselves.
      </p>
      <button
        type="button"
        className="primary"
        disabled={requesting || pending || load.state !== 'ready'}
        onClick={() => void request()}
      >
        {requesting ? 'Requesting…' : pending ? 'An export is being prepared…' : 'Request an export'}
      </button>
      <Status text={status} />
      <ErrorLine message={error} />
      <LoadStates load={load} what="the exports" onRetry={() => void reload()} />
      {load.state === 'ready' && items.length === 0 && (
        <p className="empty">No exports yet. Request one to take the organization's data with you.</p>
      )}
      {load.state === 'ready' && items.length > 0 && (
        <ul className="org-list" aria-label="Exports">
          {items.map((e) => {
            const name = `the export of ${when(e.createdAt)}`;
            return (
              <li key={e.id} className="org-row">
                <div className="org-row-main">
                  <strong>Export of {when(e.createdAt)}</strong>
                  <span className={`status org-role lifecycle-export-${e.status}`}>{STATUS[e.status]}</span>
                  {busyStatus(e) && (
                    <span className="lifecycle-progress">
                      <progress
                        max={e.progress.total || undefined}
                        value={e.progress.total ? e.progress.done : undefined}
                        aria-label={`Progress of ${name}`}
                      />
                      <span className="meta">
                        {e.progress.total
                          ? `${e.progress.done} of ${e.progress.total} files`
                          : 'Counting the files…'}
                      </span>
                    </span>
                  )}
                  {e.status === 'ready' && (
                    <span className="meta">
                      {e.sizeBytes !== null && `${bytes(e.sizeBytes)} · `}
                      ready {e.readyAt && when(e.readyAt)}
                      {e.expiresAt && ` · downloadable until ${when(e.expiresAt)}`}
                    </span>
                  )}
                  {e.status === 'ready' && e.sha256 && (
                    <span className="meta org-id">SHA-256 {e.sha256}</span>
                  )}
                  {e.status === 'failed' && (
                    <span className="meta">
                      Could not be prepared ({e.errorCode ?? 'unknown error'}). Delete it and request a new
                      one.
                    </span>
                  )}
                  {e.status === 'expired' && (
                    <span className="meta">
                      Its download time is over and its file was deleted; request a new one.
                    </span>
                  )}
                </div>
                {confirming === e.id ? (
                  <Confirm
                    label={`Confirm deleting ${name}`}
                    question="Delete this export and its file?"
                    keepLabel="Keep it"
                    doLabel="Delete"
                    onKeep={() => setConfirming(null)}
                    onDo={() => void remove(e)}
                  />
                ) : (
                  <div className="org-actions">
                    {e.status === 'ready' && (
                      <button
                        type="button"
                        className="primary"
                        aria-label={`Download ${name}`}
                        onClick={() => void download(e)}
                      >
                        Download
                      </button>
                    )}
                    {!busyStatus(e) && (
                      <button type="button" aria-label={`Delete ${name}`} onClick={() => setConfirming(e.id)}>
                        Delete…
                      </button>
                    )}
                  </div>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

/** The owner's danger zone: DELETE /api/v1/org, crypto-shredding first (docs/lifecycle.md). */
function DeleteOrgSection({ me }: { me: MeInfo }) {
  const org = me.organization;
  const [slug, setSlug] = useState('');
  const [slugError, setSlugError] = useState<string | null>(null);
  const [reauth, setReauth] = useState<ReauthState>(reauthStart(me.mfaEnabled));
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [dialogError, setDialogError] = useState<string | null>(null);
  const slugRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);
  const codeRef = useRef<HTMLInputElement>(null);
  const focusLater = useFocusAfter({ password: passwordRef, code: codeRef });

  if (!org) return null;
  if (me.role !== 'owner')
    return (
      <section className="card" aria-labelledby="delete-org-heading">
        <h2 id="delete-org-heading">Delete the organization</h2>
        <p>Only an owner of the organization can delete it. Ask an owner if it should be deleted.</p>
      </section>
    );

  function ask(e: FormEvent) {
    e.preventDefault();
    setSlugError(null);
    if (slug.trim() !== org!.slug) {
      setSlugError(`Type the organization's slug exactly: ${org!.slug}`);
      slugRef.current?.focus();
      return;
    }
    if (!reauth.password) {
      setReauth({ ...reauth, errors: { password: 'Enter your password to confirm it is you.' } });
      passwordRef.current?.focus();
      return;
    }
    if (reauth.needsCode && !reauth.code.trim()) {
      setReauth({ ...reauth, errors: { code: 'Enter a code from your authenticator app.' } });
      codeRef.current?.focus();
      return;
    }
    setReauth({ ...reauth, errors: {} });
    setDialogError(null);
    setAsking(true);
  }

  async function remove() {
    setBusy(true);
    setDialogError(null);
    try {
      await deleteOrganization({
        confirm: slug.trim(),
        currentPassword: reauth.password,
        ...(reauth.needsCode && reauth.code.trim() ? { code: reauth.code.replace(/\s+/g, '') } : {}),
      });
      endSession(
        `${org!.name} was deleted: its keys were destroyed and its data can no longer be read anywhere. Everyone in it was signed out.`,
      );
      navigate('/login');
    } catch (err) {
      const refused = reauthRefusal(err, reauth);
      if (refused) {
        setAsking(false);
        setReauth(refused.state);
        focusLater(refused.focus);
      } else if (err instanceof ApiError && err.code === 'bad_request') {
        setAsking(false);
        setSlugError(err.message);
        setTimeout(() => slugRef.current?.focus(), 0);
      } else setDialogError(`Not deleted: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card lifecycle-danger" aria-labelledby="delete-org-heading">
      <h2 id="delete-org-heading">Delete the organization</h2>
      <p>
        Deleting <strong>{org.name}</strong> first destroys its encryption keys (crypto-shredding). From that
        moment nothing of it can be read anywhere: not on this server, not on other servers, not in database
        backups taken earlier. Then every member account, recording, transcript, report, audio file, export,
        archive item and the audit log are removed, and everyone in the organization is signed out.
      </p>
      <p className="warning">
        This is irreversible: nobody, Sotto support included, can bring any of it back. Take an export first
        (above) if you may need the data.
      </p>
      <form onSubmit={ask}>
        <label htmlFor="delete-org-slug">Type the organization's slug to confirm</label>
        <input
          id="delete-org-slug"
          ref={slugRef}
          autoComplete="off"
          spellCheck={false}
          required
          value={slug}
          aria-invalid={slugError ? true : undefined}
          aria-describedby={describedBy('delete-org-slug-hint', slugError && 'delete-org-slug-error')}
          onChange={(e) => setSlug(e.target.value)}
        />
        <p id="delete-org-slug-hint" className="hint">
          The slug is <code className="org-id lifecycle-slug">{org.slug}</code>
        </p>
        <FieldError id="delete-org-slug-error" message={slugError} />
        <ReauthFields
          prefix="delete-org"
          state={reauth}
          onChange={setReauth}
          passwordRef={passwordRef}
          codeRef={codeRef}
        />
        <ErrorLine message={reauth.errors.form ?? null} />
        <button type="submit" className="danger">
          Delete the organization…
        </button>
      </form>
      {asking && (
        <ConfirmDialog
          title={`Delete ${org.name} for good?`}
          confirmLabel={busy ? 'Deleting…' : 'Delete the organization'}
          cancelLabel="Keep the organization"
          busy={busy}
          error={dialogError}
          onConfirm={() => void remove()}
          onCancel={() => setAsking(false)}
        >
          <p>
            Its keys are destroyed at once and all of its data becomes unreadable everywhere, backups
            included. There is no undo.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}
