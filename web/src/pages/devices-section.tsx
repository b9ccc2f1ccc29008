import { useEffect, useRef, useState } from 'react';
import { endSession } from '../api';
import { listDevices, revokeAllDevices, revokeDevice, type Device } from '../api-account';
import { errorText, when } from '../format';

/** "Chrome on Linux" from a user agent; the raw string stays available as a tooltip. */
export function deviceName(ua: string): string {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : /sotto|node|curl/i.test(ua)
            ? 'API client'
            : 'Browser';
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Windows/.test(ua)
        ? 'Windows'
        : /Mac OS X/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : '';
  return os ? `${browser} on ${os}` : browser;
}

type Load =
  { state: 'loading' } | { state: 'error'; message: string } | { state: 'ready'; devices: Device[] };

export function DevicesSection() {
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [confirming, setConfirming] = useState<string | null>(null);
  const [status, setStatus] = useState('');
  const [error, setError] = useState<string | null>(null);
  const keepRef = useRef<HTMLButtonElement>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);

  async function reload() {
    try {
      const devices = await listDevices();
      // This device first, then the most recently active.
      devices.sort(
        (x, y) => Number(y.current) - Number(x.current) || y.lastSeenAt.localeCompare(x.lastSeenAt),
      );
      setLoad({ state: 'ready', devices });
    } catch (err) {
      setLoad({ state: 'error', message: errorText(err) });
    }
  }
  useEffect(() => {
    void reload();
  }, []);
  // The safe choice has focus when a confirmation opens, as for deleting a recording.
  useEffect(() => {
    if (confirming) keepRef.current?.focus();
  }, [confirming]);

  async function revoke(d: Device) {
    setError(null);
    try {
      await revokeDevice(d.id);
      setConfirming(null);
      if (d.current) {
        endSession('You signed this device out.');
        return;
      }
      setStatus(`${deviceName(d.userAgent)} was signed out.`);
      headingRef.current?.focus();
      await reload();
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function everywhere() {
    setError(null);
    try {
      const n = await revokeAllDevices();
      endSession(
        `You signed out everywhere (${n} ${n === 1 ? 'session' : 'sessions'}). Log in again to continue.`,
      );
    } catch (err) {
      setError(errorText(err));
    }
  }

  return (
    <section className="card" aria-labelledby="devices-heading" aria-busy={load.state === 'loading'}>
      <h2 id="devices-heading" ref={headingRef} tabIndex={-1}>
        Devices
      </h2>
      <p className="hint">
        Where you are logged in. Sign out any device you do not recognise, then change your password.
      </p>
      <p className="notice" role="status">
        {status}
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {load.state === 'loading' && <p>Loading devices…</p>}
      {load.state === 'error' && (
        <>
          <p className="error" role="alert">
            Could not load your devices: {load.message}
          </p>
          <button type="button" onClick={() => void reload()}>
            Try again
          </button>
        </>
      )}
      {load.state === 'ready' && load.devices.length === 0 && <p className="empty">No active sessions.</p>}
      {load.state === 'ready' && load.devices.length > 0 && (
        <ul className="devices">
          {load.devices.map((d) => (
            <li key={d.id} className="device" data-current={d.current ? 'true' : undefined}>
              <div className="device-main">
                <strong title={d.userAgent}>{deviceName(d.userAgent)}</strong>
                {d.current && <span className="badge">This device</span>}
                <span className="meta">
                  {d.ip} · last active {when(d.lastSeenAt)} · signed in {when(d.createdAt)}
                </span>
              </div>
              {confirming === d.id ? (
                <div className="device-actions" role="group" aria-label="Confirm sign out">
                  <span>{d.current ? 'Sign out this device?' : 'Sign out that device?'}</span>
                  <button type="button" ref={keepRef} onClick={() => setConfirming(null)}>
                    Keep it
                  </button>
                  <button type="button" className="danger" onClick={() => void revoke(d)}>
                    Sign out
                  </button>
                </div>
              ) : (
                <div className="device-actions">
                  <button
                    type="button"
                    aria-label={`Sign out ${deviceName(d.userAgent)}${d.current ? ' (this device)' : ''}, last active ${when(d.lastSeenAt)}`}
                    onClick={() => setConfirming(d.id)}
                  >
                    Sign out
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
      {confirming === 'all' ? (
        <div className="toolbar" role="group" aria-label="Confirm sign out everywhere">
          <span>Sign out every device, this one included?</span>
          <button type="button" ref={keepRef} onClick={() => setConfirming(null)}>
            Keep them
          </button>
          <button type="button" className="danger" onClick={() => void everywhere()}>
            Sign out everywhere
          </button>
        </div>
      ) : (
        <button type="button" className="danger" onClick={() => setConfirming('all')}>
          Sign out everywhere…
        </button>
      )}
    </section>
  );
}
