import { useCallback, useEffect, useRef, useState, type ReactNode, type RefObject } from 'react';
import { errorText } from '../format';

/** Small pieces the organization sections share: loading a list, its states, inline confirmation. */

export type Loaded<T> =
  { state: 'loading' } | { state: 'error'; message: string } | { state: 'ready'; data: T };

export function useLoad<T>(fetcher: () => Promise<T>): [Loaded<T>, () => Promise<void>] {
  const [load, setLoad] = useState<Loaded<T>>({ state: 'loading' });
  const ref = useRef(fetcher);
  ref.current = fetcher;
  const reload = useCallback(async () => {
    try {
      setLoad({ state: 'ready', data: await ref.current() });
    } catch (err) {
      setLoad({ state: 'error', message: errorText(err) });
    }
  }, []);
  useEffect(() => {
    void reload();
  }, [reload]);
  return [load, reload];
}

/** The loading and error states of a list; "what" reads as "Could not load the members". */
export function LoadStates({
  load,
  what,
  onRetry,
}: {
  load: Loaded<unknown>;
  what: string;
  onRetry: () => void;
}) {
  if (load.state === 'loading') return <p aria-busy="true">Loading {what}…</p>;
  if (load.state === 'error')
    return (
      <div className="error" role="alert">
        <p className="org-error-text">
          Could not load {what}: {load.message}
        </p>
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      </div>
    );
  return null;
}

/** An error tied to a field with aria-describedby. */
export function FieldError({ id, message }: { id: string; message: string | null | undefined }) {
  if (!message) return null;
  return (
    <p id={id} className="error-inline" role="alert">
      {message}
    </p>
  );
}

export const describedBy = (...ids: (string | false | null | undefined)[]) =>
  ids.filter(Boolean).join(' ') || undefined;

/**
 * The inline "are you sure" of a destructive action; the safe choice has focus, as for deleting
 * a recording or signing a device out.
 */
export function Confirm({
  question,
  keepLabel,
  doLabel,
  label,
  onKeep,
  onDo,
}: {
  question: string;
  keepLabel: string;
  doLabel: string;
  label: string;
  onKeep: () => void;
  onDo: () => void;
}) {
  const keep = useRef<HTMLButtonElement>(null);
  useEffect(() => keep.current?.focus(), []);
  return (
    <div className="org-confirm" role="group" aria-label={label}>
      <span>{question}</span>
      <button type="button" ref={keep} onClick={onKeep}>
        {keepLabel}
      </button>
      <button type="button" className="danger" onClick={onDo}>
        {doLabel}
      </button>
    </div>
  );
}

/** Saves and results announced to screen readers (and shown) in one place per section. */
export function Status({ text }: { text: string }) {
  return (
    <p className="notice" role="status">
      {text}
    </p>
  );
}

export function ErrorLine({ message }: { message: string | null }) {
  if (!message) return null;
  return (
    <p className="error" role="alert">
      {message}
    </p>
  );
}

/** Copy a secret to the clipboard, saying whether it worked. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [said, setSaid] = useState('');
  return (
    <>
      <button
        type="button"
        onClick={() => {
          navigator.clipboard.writeText(text).then(
            () => setSaid('Copied to the clipboard.'),
            () => setSaid('The browser refused to copy: select the text and copy it by hand.'),
          );
        }}
      >
        {label}
      </button>
      <span className="notice org-copied" role="status">
        {said}
      </span>
    </>
  );
}

export const HASH_ONLY_NOTE =
  'Copy it now: it is shown only this once and cannot be shown again (Sotto keeps only a hash).';

/** A secret shown once (a new token, a signing secret), with its copy button and a way to hide it. */
export function SecretOnce({
  title,
  secret,
  note,
  testId,
  copyLabel,
  headingRef,
  onHide,
}: {
  title: string;
  secret: string;
  note: string;
  testId: string;
  copyLabel: string;
  headingRef: RefObject<HTMLHeadingElement | null>;
  onHide: () => void;
}) {
  return (
    <div className="org-secret">
      <h3 ref={headingRef} tabIndex={-1}>
        {title}
      </h3>
      <p className="warning">{note}</p>
      <code className="secret" data-testid={testId}>
        {secret}
      </code>
      <div>
        <CopyButton text={secret} label={copyLabel} />
        <button type="button" onClick={onHide}>
          Done, hide it
        </button>
      </div>
    </div>
  );
}

/**
 * Under a list's form: the section's status and error lines, then the list's loading, error and
 * empty states. The list itself is drawn by the caller once `load` is ready and not empty.
 */
export function ListStates({
  status,
  error,
  load,
  what,
  onRetry,
  empty,
}: {
  status: string;
  error: string | null;
  load: Loaded<readonly unknown[]>;
  what: string;
  onRetry: () => void;
  empty: ReactNode;
}) {
  return (
    <>
      <Status text={status} />
      <ErrorLine message={error} />
      <LoadStates load={load} what={what} onRetry={onRetry} />
      {load.state === 'ready' && load.data.length === 0 && <p className="empty">{empty}</p>}
    </>
  );
}

/**
 * The status line, error line and open confirmation of a section, and `confirmed`, which runs
 * the action a confirmation asked for: it closes the confirmation whether or not it worked, says
 * what happened, and on success moves focus (when given) and reloads.
 */
export function useSectionState<K>() {
  const [status, setStatus] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<K | null>(null);
  async function confirmed(
    action: () => Promise<unknown>,
    o: {
      done: string;
      failed: string;
      reload: () => Promise<unknown>;
      focus?: RefObject<HTMLElement | null>;
      /** Clear the status line first, so a failure does not stand under an older success. */
      clearStatus?: boolean;
    },
  ) {
    setError(null);
    if (o.clearStatus) setStatus('');
    try {
      await action();
      setConfirming(null);
      setStatus(o.done);
      o.focus?.current?.focus();
      await o.reload();
    } catch (err) {
      setConfirming(null);
      setError(`${o.failed}: ${errorText(err)}`);
    }
  }
  return { status, setStatus, error, setError, confirming, setConfirming, confirmed };
}
