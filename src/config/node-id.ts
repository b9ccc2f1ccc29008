import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * The node id of a `sotto serve` process (docs/live.md, "Multiple nodes"): the name its live
 * ingest claims are held under. A node that comes back under the id its killed process had takes
 * that process's claims over at once (a claim held under one's own id is renewed, not refused),
 * so its capture clients resume without the 409s of a claim that must lapse first.
 *
 * The one rule: two live processes never share an id. Two holders of one id would both pass the
 * claim and the spool fence, both ingest one recording and seal two partial copies of it.
 */

/** What SOTTO_NODE_ID accepts: it is written into Redis values and logs as it is. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const NODE_ID_RULE = '1 to 64 characters of A-Z, a-z, 0-9, ".", "_" and "-"';

/** Where this process runs, as far as the default id needs it; read by `hostIdentity`. */
export interface HostIdentity {
  hostname: string;
  /** The running kernel's random boot id (Linux); undefined elsewhere. */
  bootId: string | undefined;
  /** The network namespace this process listens in (Linux, e.g. `net:[4026531840]`). */
  netns: string | undefined;
}

export function hostIdentity(): HostIdentity {
  const read = (f: () => string): string | undefined => {
    try {
      return f().trim() || undefined;
    } catch {
      return undefined;
    }
  };
  return {
    hostname: hostname(),
    bootId: read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
    netns: read(() => readlinkSync('/proc/self/ns/net')),
  };
}

/**
 * The default id of a `sotto serve` process that listens on `host:httpsPort`: stable across its
 * restarts, `<hostname>-<port>-<hash>`. Undefined for port 0 (an ephemeral port is another one
 * after a restart, and two processes could both ask for 0): the caller takes a random id then.
 *
 * Why no two live processes share it: the hash covers the kernel's boot id, the network
 * namespace and the listen address and port. Processes on different machines differ in the boot
 * id (random per boot), containers with one hostname in the namespace; in one namespace only one
 * process at a time can listen on an address and port, and `sotto serve` also holds the id itself
 * (node-id-lock.adapter.ts) from before its services start until it exits, so a second process
 * that derives the same id stops before it acts on any claim. It is not stored in the data
 * directory, because processes may share one (the two-process tests do). Only `sotto serve`
 * takes this default: other commands, and in-process test servers, never bind the port, so a
 * port in their configuration proves nothing; they keep a random id.
 */
export function defaultNodeId(
  listen: { host: string; httpsPort: number },
  host: HostIdentity = hostIdentity(),
): string | undefined {
  if (listen.httpsPort === 0) return undefined;
  const hash = createHash('sha256')
    .update(
      JSON.stringify([host.hostname, host.bootId ?? '', host.netns ?? '', listen.host, listen.httpsPort]),
    )
    .digest('hex')
    .slice(0, 12);
  // Readable in logs and in Redis; the hash alone tells ids apart (a long hostname is cut).
  const name = host.hostname.replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 40) || 'node';
  return `${name}-${listen.httpsPort}-${hash}`;
}
