import { useEffect, useRef, useState } from 'react';
import type { MeInfo } from '../api-org';
import {
  bytes,
  deleteArchived,
  listArchive,
  restoreArchived,
  type ArchiveItem,
  type ArchivePage,
  type DeletionReceipt,
} from '../api-lifecycle';
import { errorText, when } from '../format';
import { onLinkClick } from '../router';
import { Confirm, ErrorLine, LoadStates, useLoad } from './org-common';

const titleOf = (i: ArchiveItem) => i.title ?? `Untitled recording of ${when(i.recordingCreatedAt)}`;

/**
 * The cold archive (owners and admins): recordings the retention task took out of the active
 * tables. Each can come back under its own id, or be destroyed for good, which answers with a
 * deletion receipt (also kept in the audit log as archive.deleted).
 */
export function ArchiveSection({ me }: { me: MeInfo }) {
  const [load, reload] = useLoad(() => listArchive());
  const [items, setItems] = useState<ArchiveItem[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [restored, setRestored] = useState<{ title: string; recordingId: string } | null>(null);
  const [receipt, setReceipt] = useState<{ title: string; receipt: DeletionReceipt } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (load.state !== 'ready') return;
    setItems(load.data.items);
    setNext(load.data.next);
  }, [load]);

  async function more() {
    if (!next) return;
    setLoadingMore(true);
    setError(null);
    try {
      const page: ArchivePage = await listArchive(next);
      setItems((old) => [...old, ...page.items]);
      setNext(page.next);
    } catch (err) {
      setError(`Could not load older items: ${errorText(err)}. Try again.`);
    } finally {
      setLoadingMore(false);
    }
  }

  async function restore(i: ArchiveItem) {
    setBusy(i.id);
    setError(null);
    setRestored(null);
    setReceipt(null);
    try {
      const { recordingId } = await restoreArchived(i.id);
      setItems((old) => old.filter((x) => x.id !== i.id));
      setRestored({ title: titleOf(i), recordingId });
    } catch (err) {
      setError(`Could not restore ${titleOf(i)}: ${errorText(err)}`);
    } finally {
      setBusy(null);
    }
  }

  async function destroy(i: ArchiveItem) {
    setConfirming(null);
    setBusy(i.id);
    setError(null);
    setRestored(null);
    try {
      const r = await deleteArchived(i.id);
      setItems((old) => old.filter((x) => x.id !== i.id));
      setReceipt({ title: titleOf(i), receipt: r });
    } catch (err) {
      setError(`Could not delete ${titleOf(i)}: ${errorText(err)}`);
    } finally {
      setBusy(null);
    }
  }

  return (
    <section className="card" aria-labelledby="archive-heading" aria-busy={load.state === 'loading'}>
      <h2 id="archive-heading">Archive</h2>
      <p className="hint">
        Finished recordings older than the retention period (see{' '}
        <a href="/org/settings" onClick={onLinkClick}>
          Settings
        </a>
        ) leave Recordings and search and are kept here, sealed with the organization's key. Restore one to
        bring it back with its transcript, edits, speaker names and audio, or delete it for good.
      </p>
      {restored && (
        <p className="notice" role="status">
          {restored.title} is back in Recordings.{' '}
          <a href={`/recordings/${restored.recordingId}`} onClick={onLinkClick}>
            Open it
          </a>
        </p>
      )}
      {receipt && (
        <ReceiptView
          title={receipt.title}
          receipt={receipt.receipt}
          me={me}
          onDone={() => setReceipt(null)}
        />
      )}
      <ErrorLine message={error} />
      <LoadStates load={load} what="the archive" onRetry={() => void reload()} />
      {load.state === 'ready' && items.length === 0 && (
        <p className="empty">
          The archive is empty: no recording has passed the retention period yet (or all were restored or
          deleted).
        </p>
      )}
      {load.state === 'ready' && items.length > 0 && (
        <ul className="org-list" aria-label="Archived recordings">
          {items.map((i) => (
            <li key={i.id} className="org-row">
              <div className="org-row-main">
                <strong>{titleOf(i)}</strong>
                {i.hasAudio && <span className="org-role">with audio</span>}
                <span className="meta">
                  recorded {when(i.recordingCreatedAt)} · archived {when(i.archivedAt)}{' '}
                  {i.reason === 'retention' ? 'by the retention period' : 'by hand'} · {bytes(i.sizeBytes)}
                </span>
              </div>
              {confirming === i.id ? (
                <Confirm
                  label={`Confirm deleting ${titleOf(i)}`}
                  question="Delete it for good? It cannot be restored; no copy is kept."
                  keepLabel="Keep it"
                  doLabel="Delete for good"
                  onKeep={() => setConfirming(null)}
                  onDo={() => void destroy(i)}
                />
              ) : (
                <div className="org-actions">
                  <button
                    type="button"
                    disabled={busy !== null}
                    aria-label={`Restore ${titleOf(i)}`}
                    onClick={() => void restore(i)}
                  >
                    {busy === i.id ? 'Working…' : 'Restore'}
                  </button>
                  <button
                    type="button"
                    disabled={busy !== null}
                    aria-label={`Delete ${titleOf(i)} for good`}
                    onClick={() => setConfirming(i.id)}
                  >
                    Delete…
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
      {load.state === 'ready' && next && (
        <button type="button" disabled={loadingMore} onClick={() => void more()}>
          {loadingMore ? 'Loading…' : 'Show older items'}
        </button>
      )}
    </section>
  );
}

/** The receipt of a destroyed archive item, with a JSON copy to keep. */
function ReceiptView({
  title,
  receipt,
  me,
  onDone,
}: {
  title: string;
  receipt: DeletionReceipt;
  me: MeInfo;
  onDone: () => void;
}) {
  const heading = useRef<HTMLHeadingElement>(null);
  const [href] = useState(() =>
    URL.createObjectURL(new Blob([JSON.stringify(receipt, null, 2)], { type: 'application/json' })),
  );
  useEffect(() => () => URL.revokeObjectURL(href), [href]);
  useEffect(() => heading.current?.focus(), []);
  return (
    <div className="org-secret lifecycle-receipt">
      <h3 ref={heading} tabIndex={-1}>
        Deleted for good: {title}
      </h3>
      <p>Deletion receipt (also kept in the audit log as archive.deleted):</p>
      <dl className="lifecycle-facts" aria-label="Deletion receipt">
        <dt>Deleted</dt>
        <dd>{when(receipt.deletedAt)}</dd>
        <dt>By</dt>
        <dd>{receipt.deletedBy === me.user.id ? `you (${me.user.email})` : receipt.deletedBy}</dd>
        <dt>Recording id</dt>
        <dd className="org-id">{receipt.recordingId}</dd>
        <dt>Archive id</dt>
        <dd className="org-id">{receipt.archiveId}</dd>
        <dt>SHA-256 of the sealed content</dt>
        <dd className="org-id" data-testid="receipt-content-sha">
          {receipt.contentSha256}
        </dd>
        <dt>SHA-256 of the sealed audio</dt>
        <dd className="org-id">{receipt.audioSha256 ?? 'no audio was kept'}</dd>
      </dl>
      <p className="hint">
        The digests are of the encrypted bytes that were destroyed, never of the text itself.
      </p>
      <div className="org-actions">
        <a className="button" href={href} download={`sotto-deletion-receipt-${receipt.archiveId}.json`}>
          Download the receipt
        </a>
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}
