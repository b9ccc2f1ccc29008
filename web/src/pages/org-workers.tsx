import { useRef, useState, type FormEvent } from 'react';
import { createWorker, listWorkers, revokeWorker, type WorkerToken } from '../api-org';
import { errorText, when } from '../format';
import {
  Confirm,
  FieldError,
  HASH_ONLY_NOTE,
  ListStates,
  SecretOnce,
  describedBy,
  useLoad,
  useSectionState,
} from './org-common';

/** Remote transcription workers' tokens: the token itself is in the creation answer only. */
export function WorkersSection() {
  const [load, reload] = useLoad(listWorkers);
  const [name, setName] = useState('');
  const [nameError, setNameError] = useState<string | null>(null);
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const { status, setStatus, error, setError, confirming, setConfirming, confirmed } =
    useSectionState<string>();
  const [busy, setBusy] = useState(false);
  const nameRef = useRef<HTMLInputElement>(null);
  const tokenRef = useRef<HTMLHeadingElement>(null);

  async function create(e: FormEvent) {
    e.preventDefault();
    setNameError(null);
    setError(null);
    setStatus('');
    if (!name.trim()) {
      setNameError('Give the worker a name, such as the machine it runs on.');
      nameRef.current?.focus();
      return;
    }
    setBusy(true);
    try {
      const t = await createWorker(name.trim());
      setCreated({ name: t.name, token: t.token });
      setName('');
      await reload();
      tokenRef.current?.focus();
    } catch (err) {
      setNameError(errorText(err));
      nameRef.current?.focus();
    } finally {
      setBusy(false);
    }
  }

  const revoke = (t: WorkerToken) =>
    confirmed(() => revokeWorker(t.id), {
      done: `The token of ${t.name} was revoked; that worker can no longer take jobs.`,
      failed: `Could not revoke ${t.name}`,
      reload,
    });

  return (
    <section className="card" aria-labelledby="workers-heading" aria-busy={load.state === 'loading'}>
      <h2 id="workers-heading">Worker tokens</h2>
      <p className="hint">
        A remote worker (<code>sotto worker</code> on your own machine) transcribes this organization's
        recordings with its token, given as <code>SOTTO_WORKER_TOKEN</code>. Revoke a token when a machine is
        retired or the token may have leaked.
      </p>
      <form className="org-form" onSubmit={(e) => void create(e)}>
        <div className="org-field org-grow">
          <label htmlFor="worker-name">Worker name</label>
          <input
            id="worker-name"
            ref={nameRef}
            maxLength={100}
            value={name}
            aria-invalid={nameError ? true : undefined}
            aria-describedby={describedBy(nameError && 'worker-name-error')}
            onChange={(e) => setName(e.target.value)}
          />
        </div>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create token'}
        </button>
      </form>
      <FieldError id="worker-name-error" message={nameError} />
      {created && (
        <SecretOnce
          title={`Token for ${created.name}`}
          secret={created.token}
          note={HASH_ONLY_NOTE}
          testId="worker-token"
          copyLabel="Copy token"
          headingRef={tokenRef}
          onHide={() => setCreated(null)}
        />
      )}
      <ListStates
        status={status}
        error={error}
        load={load}
        what="the worker tokens"
        onRetry={() => void reload()}
        empty="No worker tokens. Jobs run on the server's own workers."
      />
      {load.state === 'ready' && load.data.length > 0 && (
        <ul className="org-list" aria-label="Worker tokens">
          {load.data.map((t) => (
            <li key={t.id} className="org-row">
              <div className="org-row-main">
                <strong>{t.name}</strong>
                <span className={`status org-grant-${t.status}`}>
                  {t.status === 'active' ? 'Active' : 'Revoked'}
                </span>
                <span className="meta">
                  created {when(t.createdAt)} ·{' '}
                  {t.lastUsedAt ? `last used ${when(t.lastUsedAt)}` : 'never used'}
                  {t.revokedAt && ` · revoked ${when(t.revokedAt)}`}
                </span>
              </div>
              {t.status === 'active' &&
                (confirming === t.id ? (
                  <Confirm
                    label={`Confirm revoking ${t.name}`}
                    question={`Revoke ${t.name}'s token? The worker stops at its next request.`}
                    keepLabel="Keep it"
                    doLabel="Revoke"
                    onKeep={() => setConfirming(null)}
                    onDo={() => void revoke(t)}
                  />
                ) : (
                  <div className="org-actions">
                    <button type="button" aria-label={`Revoke ${t.name}`} onClick={() => setConfirming(t.id)}>
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
