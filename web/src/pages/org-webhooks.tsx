import { useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import {
  WEBHOOK_EVENTS,
  createWebhook,
  deleteWebhook,
  listDeliveries,
  listWebhooks,
  redeliver,
  rotateWebhookSecret,
  updateWebhook,
  type Delivery,
  type Webhook,
  type WebhookEvent,
} from '../api-integrations';
import { errorText, when } from '../format';
import { Confirm, FieldError, ListStates, SecretOnce, describedBy, useLoad } from './org-common';

const EVENT_TEXT: Record<WebhookEvent, string> = {
  'recording.done': 'Transcript ready (recording.done)',
  'recording.failed': 'Transcription failed (recording.failed)',
  'recording.deleted': 'Recording deleted (recording.deleted)',
};

const DELIVERY_TEXT: Record<Delivery['status'], string> = {
  pending: 'Pending',
  delivered: 'Delivered',
  failed: 'Failed',
};

/**
 * Organization → Webhooks: HTTPS endpoints called when a recording is done, failed or deleted.
 * Payloads carry ids only; the signing secret is shown once (creation, rotation).
 */
export function WebhooksSection() {
  const [load, reload] = useLoad(listWebhooks);
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<WebhookEvent[]>([...WEBHOOK_EVENTS]);
  const [errors, setErrors] = useState<{ url?: string; events?: string }>({});
  const [secret, setSecret] = useState<{ title: string; secret: string; note: string } | null>(null);
  const [status, setStatus] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const urlRef = useRef<HTMLInputElement>(null);
  const secretRef = useRef<HTMLHeadingElement>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);

  async function create(e: FormEvent) {
    e.preventDefault();
    setErrors({});
    setError(null);
    setStatus('');
    if (!/^https:\/\/\S+$/.test(url.trim())) {
      setErrors({ url: 'Enter the https:// address of your receiver.' });
      urlRef.current?.focus();
      return;
    }
    if (events.length === 0) {
      setErrors({ events: 'Choose at least one event.' });
      return;
    }
    setBusy(true);
    try {
      const h = await createWebhook(url.trim(), events);
      setSecret({
        title: `Signing secret for ${h.url}`,
        secret: h.secret,
        note: 'Copy it into your receiver now: it is shown only this once. Use it to check the Sotto-Signature header of every request.',
      });
      setUrl('');
      await reload();
      secretRef.current?.focus();
    } catch (err) {
      // The API's reason (private address, not https, at most 10, …) belongs to the URL.
      setErrors({ url: err instanceof ApiError ? `Not added: ${err.message}` : errorText(err) });
      urlRef.current?.focus();
    } finally {
      setBusy(false);
    }
  }

  const toggle = (ev: WebhookEvent, on: boolean) =>
    setEvents(
      on ? WEBHOOK_EVENTS.filter((x) => x === ev || events.includes(x)) : events.filter((x) => x !== ev),
    );

  return (
    <section className="card" aria-labelledby="webhooks-heading" aria-busy={load.state === 'loading'}>
      <h2 id="webhooks-heading" ref={headingRef} tabIndex={-1}>
        Webhooks
      </h2>
      <p className="hint">
        Sotto calls these HTTPS addresses when a recording finishes, fails or is deleted. Requests carry ids
        only, never titles or transcript text, and are signed with the webhook's secret. Failed calls are
        retried with growing pauses.
      </p>
      <form className="org-webhook-form" onSubmit={(e) => void create(e)}>
        <label htmlFor="webhook-url">Receiver URL</label>
        <input
          id="webhook-url"
          ref={urlRef}
          type="url"
          maxLength={2048}
          autoComplete="off"
          spellCheck={false}
          placeholder="https://example.com/sotto-hook"
          value={url}
          aria-invalid={errors.url ? true : undefined}
          aria-describedby={describedBy(errors.url && 'webhook-url-error')}
          onChange={(e) => setUrl(e.target.value)}
        />
        <FieldError id="webhook-url-error" message={errors.url} />
        <fieldset
          className="org-fieldset"
          aria-describedby={describedBy(errors.events && 'webhook-events-error')}
        >
          <legend>Events</legend>
          {WEBHOOK_EVENTS.map((ev) => (
            <label key={ev} className="org-radio">
              <input
                type="checkbox"
                checked={events.includes(ev)}
                onChange={(e) => toggle(ev, e.target.checked)}
              />
              {EVENT_TEXT[ev]}
            </label>
          ))}
          <FieldError id="webhook-events-error" message={errors.events} />
        </fieldset>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Adding…' : 'Add webhook'}
        </button>
      </form>
      {secret && (
        <SecretOnce
          title={secret.title}
          secret={secret.secret}
          note={secret.note}
          testId="webhook-secret"
          copyLabel="Copy secret"
          headingRef={secretRef}
          onHide={() => setSecret(null)}
        />
      )}
      <ListStates
        status={status}
        error={error}
        load={load}
        what="the webhooks"
        onRetry={() => void reload()}
        empty="No webhooks yet. Add your receiver's address above."
      />
      {load.state === 'ready' && load.data.length > 0 && (
        <ul className="org-list" aria-label="Webhooks">
          {load.data.map((h) => (
            <WebhookRow
              key={`${h.id}-${h.enabled}-${h.events.join()}`}
              hook={h}
              onChanged={async (text) => {
                setError(null);
                setStatus(text);
                await reload();
              }}
              onDeleted={async (text) => {
                setError(null);
                setStatus(text);
                headingRef.current?.focus();
                await reload();
              }}
              onSecret={(s) => {
                setSecret(s);
                // After the render that shows it.
                setTimeout(() => secretRef.current?.focus(), 0);
              }}
              onError={setError}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

function WebhookRow({
  hook,
  onChanged,
  onDeleted,
  onSecret,
  onError,
}: {
  hook: Webhook;
  onChanged: (text: string) => Promise<void>;
  onDeleted: (text: string) => Promise<void>;
  onSecret: (s: { title: string; secret: string; note: string }) => void;
  onError: (message: string) => void;
}) {
  const [confirming, setConfirming] = useState<'delete' | 'rotate' | null>(null);
  const [log, setLog] = useState(false);

  async function run(what: string, fn: () => Promise<void>) {
    try {
      await fn();
    } catch (err) {
      onError(`Could not ${what}: ${errorText(err)}`);
    } finally {
      setConfirming(null);
    }
  }

  return (
    <li className="org-row org-webhook-row">
      <div className="org-row-main">
        <strong className="org-url">{hook.url}</strong>
        <span className={`status ${hook.enabled ? 'org-grant-active' : 'org-webhook-off'}`}>
          {hook.enabled ? 'On' : 'Paused'}
        </span>
        <span className="meta">
          {hook.events.join(', ')} · added {when(hook.createdAt)}
          {hook.rotatedAt && ` · secret rotated ${when(hook.rotatedAt)}`}
        </span>
      </div>
      {confirming === 'delete' ? (
        <Confirm
          label={`Confirm deleting the webhook to ${hook.url}`}
          question="Delete this webhook and its delivery log? Pending deliveries are dropped."
          keepLabel="Keep it"
          doLabel="Delete"
          onKeep={() => setConfirming(null)}
          onDo={() =>
            void run('delete the webhook', async () => {
              await deleteWebhook(hook.id);
              await onDeleted(`The webhook to ${hook.url} was deleted.`);
            })
          }
        />
      ) : confirming === 'rotate' ? (
        <Confirm
          label={`Confirm a new secret for ${hook.url}`}
          question="Make a new signing secret? The old one keeps signing too for 24 hours, time to update your receiver."
          keepLabel="Keep the current one"
          doLabel="New secret"
          onKeep={() => setConfirming(null)}
          onDo={() =>
            void run('rotate the secret', async () => {
              const r = await rotateWebhookSecret(hook.id);
              onSecret({
                title: `New signing secret for ${hook.url}`,
                secret: r.secret,
                note: `Copy it into your receiver now: it is shown only this once. The previous secret also signs until ${when(r.previousValidUntil)}.`,
              });
              await onChanged(`The secret of ${hook.url} was rotated.`);
            })
          }
        />
      ) : (
        <div className="org-actions">
          <button
            type="button"
            aria-expanded={log}
            aria-label={`Delivery log of ${hook.url}`}
            onClick={() => setLog(!log)}
          >
            {log ? 'Hide deliveries' : 'Deliveries'}
          </button>
          <button
            type="button"
            aria-label={`${hook.enabled ? 'Pause' : 'Resume'} the webhook to ${hook.url}`}
            onClick={() =>
              void run(hook.enabled ? 'pause the webhook' : 'resume the webhook', async () => {
                await updateWebhook(hook.id, { enabled: !hook.enabled });
                await onChanged(
                  hook.enabled
                    ? `The webhook to ${hook.url} is paused; its pending deliveries fail.`
                    : `The webhook to ${hook.url} is on again.`,
                );
              })
            }
          >
            {hook.enabled ? 'Pause' : 'Resume'}
          </button>
          <button
            type="button"
            aria-label={`New secret for ${hook.url}`}
            onClick={() => setConfirming('rotate')}
          >
            New secret…
          </button>
          <button
            type="button"
            aria-label={`Delete the webhook to ${hook.url}`}
            onClick={() => setConfirming('delete')}
          >
            Delete…
          </button>
        </div>
      )}
      {log && <DeliveryLog hook={hook} />}
    </li>
  );
}

function DeliveryLog({ hook }: { hook: Webhook }) {
  const [load, reload] = useLoad(() => listDeliveries(hook.id));
  const [status, setStatus] = useState('');
  const [error, setError] = useState<string | null>(null);

  async function again(d: Delivery) {
    setError(null);
    setStatus('');
    try {
      await redeliver(hook.id, d.id);
      setStatus(`The ${d.event} event is queued again; it is sent within a few seconds.`);
      await reload();
    } catch (err) {
      setError(`Could not send it again: ${errorText(err)}`);
    }
  }

  return (
    <div className="org-deliveries">
      <div className="org-actions">
        <h3>Last deliveries</h3>
        <button type="button" onClick={() => void reload()}>
          Refresh
        </button>
      </div>
      <ListStates
        status={status}
        error={error}
        load={load}
        what="the deliveries"
        onRetry={() => void reload()}
        empty="Nothing sent yet. Deliveries appear here when a recording of a chosen event finishes, fails or is deleted."
      />
      {load.state === 'ready' && load.data.length > 0 && (
        <ul className="org-list" aria-label={`Deliveries to ${hook.url}`}>
          {load.data.map((d) => (
            <li key={d.id} className="org-row">
              <div className="org-row-main">
                <strong>{d.event}</strong>
                <span className={`status org-delivery-${d.status}`}>{DELIVERY_TEXT[d.status]}</span>
                <span className="meta">
                  {when(d.createdAt)} · {d.attempts} {d.attempts === 1 ? 'attempt' : 'attempts'}
                  {d.lastStatusCode !== null && ` · HTTP ${d.lastStatusCode}`}
                  {d.lastError && ` · ${d.lastError}`}
                  {d.status === 'pending' && d.nextAttemptAt && ` · next try ${when(d.nextAttemptAt)}`}
                </span>
              </div>
              <div className="org-actions">
                <button
                  type="button"
                  aria-label={`Send the ${d.event} delivery of ${when(d.createdAt)} again`}
                  onClick={() => void again(d)}
                >
                  Send again
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
