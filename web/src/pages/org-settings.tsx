import { useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { createGrant, listGrants, revokeGrant, type SupportGrant } from '../api-org';
import {
  getSettingsWithPolicy,
  updateSettingsWithPolicy,
  type DepartedPolicy,
  type SettingsWithPolicy,
} from '../api-lifecycle';
import { errorText, when } from '../format';
import {
  Confirm,
  ErrorLine,
  FieldError,
  ListStates,
  LoadStates,
  Status,
  describedBy,
  useLoad,
  useSectionState,
} from './org-common';

const MAX_WORDS = 1000;

/** One word or phrase per line, blanks dropped, duplicates kept once. */
const wordsOf = (text: string) => [
  ...new Set(
    text
      .split('\n')
      .map((w) => w.trim())
      .filter(Boolean),
  ),
];

export function SettingsSection() {
  const [load, reload] = useLoad(getSettingsWithPolicy);
  return (
    <section className="card" aria-labelledby="settings-heading" aria-busy={load.state === 'loading'}>
      <h2 id="settings-heading">Settings</h2>
      <LoadStates load={load} what="the settings" onRetry={() => void reload()} />
      {load.state === 'ready' && <SettingsForm initial={load.data} />}
    </section>
  );
}

function SettingsForm({ initial }: { initial: SettingsWithPolicy }) {
  const [saved, setSaved] = useState(initial);
  const [days, setDays] = useState(String(initial.retentionDays));
  const [storeAudio, setStoreAudio] = useState(initial.storeAudio);
  const [vocabulary, setVocabulary] = useState(initial.vocabulary.join('\n'));
  const [departed, setDeparted] = useState<DepartedPolicy>(initial.departedUserRecordings);
  const [errors, setErrors] = useState<{ days?: string; vocabulary?: string; form?: string }>({});
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState(false);
  const daysRef = useRef<HTMLInputElement>(null);
  const vocabRef = useRef<HTMLTextAreaElement>(null);

  async function save(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    setStatus('');
    const n = Number(days);
    if (!/^\d+$/.test(days.trim()) || n < 1 || n > 3650) {
      setErrors({ days: 'Enter a whole number of days from 1 to 3650.' });
      daysRef.current?.focus();
      return;
    }
    const words = wordsOf(vocabulary);
    if (words.length > MAX_WORDS || words.some((w) => w.length > 100)) {
      setErrors({ vocabulary: `At most ${MAX_WORDS} entries, each up to 100 characters.` });
      vocabRef.current?.focus();
      return;
    }
    const patch: Partial<SettingsWithPolicy> = {};
    if (n !== saved.retentionDays) patch.retentionDays = n;
    if (storeAudio !== saved.storeAudio) patch.storeAudio = storeAudio;
    if (words.join('\n') !== saved.vocabulary.join('\n')) patch.vocabulary = words;
    if (departed !== saved.departedUserRecordings) patch.departedUserRecordings = departed;
    if (Object.keys(patch).length === 0) {
      setStatus('Nothing to save: no setting was changed.');
      return;
    }
    setBusy(true);
    try {
      const next = await updateSettingsWithPolicy(patch);
      setSaved(next);
      setDays(String(next.retentionDays));
      setStoreAudio(next.storeAudio);
      setVocabulary(next.vocabulary.join('\n'));
      setDeparted(next.departedUserRecordings);
      setStatus('Settings saved.');
    } catch (err) {
      setErrors({ form: err instanceof ApiError ? `Not saved: ${err.message}` : errorText(err) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={(e) => void save(e)}>
      <label htmlFor="retention-days">Keep recordings for (days)</label>
      <input
        id="retention-days"
        ref={daysRef}
        className="org-number"
        inputMode="numeric"
        required
        value={days}
        aria-invalid={errors.days ? true : undefined}
        aria-describedby={describedBy('retention-hint', errors.days && 'retention-error')}
        onChange={(e) => setDays(e.target.value)}
      />
      <p id="retention-hint" className="hint">
        1 to 3650 days. Finished recordings older than this, with their transcripts, reports and any kept
        audio, are taken out of the organization automatically by the retention task. Lowering the number
        applies to recordings you already have, counted from when each was made.
      </p>
      <FieldError id="retention-error" message={errors.days} />

      <fieldset className="org-fieldset">
        <legend>Audio</legend>
        <label className="org-radio">
          <input
            type="radio"
            name="store-audio"
            checked={!storeAudio}
            onChange={() => setStoreAudio(false)}
          />
          Destroy the audio once it is transcribed (only the transcript is kept)
        </label>
        <label className="org-radio">
          <input type="radio" name="store-audio" checked={storeAudio} onChange={() => setStoreAudio(true)} />
          Keep the audio (encrypted), so it can be played back beside the transcript
        </label>
        <p className="hint">
          Applies to recordings whose transcription finishes after you save; audio already destroyed cannot
          come back.
        </p>
      </fieldset>

      <label htmlFor="vocabulary">Custom vocabulary</label>
      <textarea
        id="vocabulary"
        ref={vocabRef}
        rows={6}
        value={vocabulary}
        aria-invalid={errors.vocabulary ? true : undefined}
        aria-describedby={describedBy('vocabulary-hint', errors.vocabulary && 'vocabulary-error')}
        onChange={(e) => setVocabulary(e.target.value)}
      />
      <p id="vocabulary-hint" className="hint">
        One word or phrase per line (names, drugs, product terms) that transcription should expect. Stored
        encrypted. Up to {MAX_WORDS}.
      </p>
      <FieldError id="vocabulary-error" message={errors.vocabulary} />

      <fieldset className="org-fieldset">
        <legend>When someone deletes their account</legend>
        <label className="org-radio">
          <input
            type="radio"
            name="departed-recordings"
            checked={departed === 'transfer'}
            onChange={() => setDeparted('transfer')}
          />
          Transfer their recordings to an owner (or, if there is none, an admin)
        </label>
        <label className="org-radio">
          <input
            type="radio"
            name="departed-recordings"
            checked={departed === 'delete'}
            onChange={() => setDeparted('delete')}
          />
          Delete their recordings, with a receipt for each in the audit log
        </label>
        <p className="hint">
          A deleted account is removed within 24 hours; this decides what happens to the recordings it owned.
          When nobody can receive them they are deleted either way.
        </p>
      </fieldset>
      <ErrorLine message={errors.form ?? null} />
      <Status text={status} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Saving…' : 'Save settings'}
      </button>
    </form>
  );
}

const GRANT_STATUS: Record<SupportGrant['status'], string> = {
  active: 'Active',
  expired: 'Expired',
  revoked: 'Revoked',
};

const DURATIONS = [
  { hours: 1, label: '1 hour' },
  { hours: 4, label: '4 hours' },
  { hours: 24, label: '1 day' },
  { hours: 72, label: '3 days' },
  { hours: 168, label: '7 days (the longest)' },
];

export function SupportAccessSection() {
  const [load, reload] = useLoad(listGrants);
  const [hours, setHours] = useState(24);
  const [busy, setBusy] = useState(false);
  const { status, setStatus, error, setError, confirming, setConfirming, confirmed } =
    useSectionState<string>();

  async function grant(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const g = await createGrant(hours);
      setStatus(`Sotto support can see this organization until ${when(g.expiresAt)}.`);
      await reload();
    } catch (err) {
      setError(`Could not grant access: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  }

  const revoke = (g: SupportGrant) =>
    confirmed(() => revokeGrant(g.id), {
      done: 'Support access was revoked; it ended at once.',
      failed: 'Could not revoke',
      reload,
    });

  const active = load.state === 'ready' ? load.data.filter((g) => g.status === 'active') : [];

  return (
    <section className="card" aria-labelledby="support-heading" aria-busy={load.state === 'loading'}>
      <h2 id="support-heading">Support access</h2>
      <p>
        Sotto support sees <strong>nothing</strong> of this organization unless you grant access here. A grant
        lets support read (never change) your recordings, transcripts and members until it expires or you
        revoke it, and every request they make appears in the audit log.
      </p>
      <p className={active.length > 0 ? 'org-state org-state-on' : 'org-state'}>
        {load.state !== 'ready'
          ? ''
          : active.length > 0
            ? `Support access is ON until ${when(active[0]!.expiresAt)}.`
            : 'Support access is off.'}
      </p>
      <form className="org-form" onSubmit={(e) => void grant(e)}>
        <div className="org-field">
          <label htmlFor="grant-hours">Duration</label>
          <select id="grant-hours" value={hours} onChange={(e) => setHours(Number(e.target.value))}>
            {DURATIONS.map((d) => (
              <option key={d.hours} value={d.hours}>
                {d.label}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Granting…' : 'Grant support access'}
        </button>
      </form>
      <ListStates
        status={status}
        error={error}
        load={load}
        what="the support grants"
        onRetry={() => void reload()}
        empty="No grants yet: support has never had access."
      />
      {load.state === 'ready' && load.data.length > 0 && (
        <ul className="org-list" aria-label="Support grants">
          {load.data.map((g) => (
            <li key={g.id} className="org-row">
              <div className="org-row-main">
                <span className={`status org-grant-${g.status}`}>{GRANT_STATUS[g.status]}</span>
                <span className="meta">
                  granted {when(g.createdAt)} ·{' '}
                  {g.status === 'revoked' && g.revokedAt
                    ? `revoked ${when(g.revokedAt)}`
                    : `${g.status === 'active' ? 'until' : 'ended'} ${when(g.expiresAt)}`}
                </span>
              </div>
              {g.status === 'active' &&
                (confirming === g.id ? (
                  <Confirm
                    label="Confirm revoking support access"
                    question="End support access now?"
                    keepLabel="Keep it"
                    doLabel="Revoke"
                    onKeep={() => setConfirming(null)}
                    onDo={() => void revoke(g)}
                  />
                ) : (
                  <div className="org-actions">
                    <button
                      type="button"
                      aria-label={`Revoke support access granted ${when(g.createdAt)}`}
                      onClick={() => setConfirming(g.id)}
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
