import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * The one SSRF guard for every outbound request an org admin can aim: webhook URLs and SSO
 * issuers (their discovery, JWKS and token endpoints). Used twice, with the same rules:
 *
 * - at save time (`assertPublicUrlHost`): a literal address or a local name is refused, and a
 *   name is resolved the way the sender will resolve it (getaddrinfo, so /etc/hosts counts) and
 *   refused when any address is blocked. A name that does not resolve (yet) is accepted: it
 *   reaches nothing, and the send-time check still applies when it does resolve;
 * - at send time (`guardedLookup`): the one HTTP client (http-client.adapter.ts) resolves
 *   through this lookup, every address is checked and the socket connects to a checked one, so
 *   DNS rebinding gains nothing; a literal address in the URL is checked before any socket.
 *
 * Blocked: everything but public unicast. ipaddr.js names the special-purpose ranges of the IANA
 * IPv4 and IPv6 registries (private, loopback, link-local, CGNAT, 0/8, multicast, 240/4,
 * broadcast, benchmarking, documentation, 192.0.0/24, AS112, AMT, IPv4-mapped and -translated,
 * 6to4, Teredo, 2001::/23, ORCHID, 3fff::/20, …); on top of that every IPv6 address outside
 * 2000::/3 is refused (IANA allocates no global unicast there: ::, ::1, ::/96, fc00::/7,
 * fe80::/10, fec0::/10, ff00::/8, 100::/64, 64:ff9b:1::/48, 5f00::/16 and anything new). The one
 * exception is the well-known NAT64 prefix 64:ff9b::/96, which DNS64 resolvers of IPv6-only
 * networks hand out for public IPv4 hosts: the embedded IPv4 address is judged instead.
 */
export class SsrfBlockedError extends Error {
  constructor(message = 'the host resolves to a private address') {
    super(message);
    this.name = 'SsrfBlockedError';
  }
}

const LITERAL_REFUSED = 'the URL must not point to a private address';
const GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');
/** Save-time resolution is advice, not the guard: a slow resolver must not hold the request. */
const SAVE_LOOKUP_TIMEOUT_MS = 5000;

/** Whether `address` (an IP literal) is anything but public unicast. Not an address: blocked. */
export function isPrivateAddress(address: string): boolean {
  // node:net's parser first: ipaddr.js also accepts legacy forms (octal, one-number IPv4).
  if (isIP(address) === 0) return true;
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.parse(address);
  } catch {
    return true;
  }
  if (ip.kind() === 'ipv4') return ip.range() !== 'unicast';
  const v6 = ip as ipaddr.IPv6;
  if (v6.match(NAT64_WELL_KNOWN)) {
    const embedded = ipaddr.fromByteArray(v6.toByteArray().slice(12));
    return embedded.range() !== 'unicast';
  }
  if (!v6.match(GLOBAL_UNICAST)) return true;
  return v6.range() !== 'unicast';
}

/** A URL's host without IPv6 brackets. */
export const hostOf = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '');

/**
 * The checks that need no DNS: a literal blocked address, or a name that means this machine
 * whatever DNS says (RFC 6761 localhost, in any case, with or without trailing dots — the URL
 * parser has already turned `%2e` into a dot). Throws SsrfBlockedError.
 */
export function assertPublicLiteral(host: string): void {
  const name = host.toLowerCase().replace(/\.+$/, '');
  if (name === '' || name === 'localhost' || name.endsWith('.localhost'))
    throw new SsrfBlockedError(LITERAL_REFUSED);
  if (isIP(host) !== 0 && isPrivateAddress(host)) throw new SsrfBlockedError(LITERAL_REFUSED);
}

function lookupAll(host: string): Promise<LookupAddress[] | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), SAVE_LOOKUP_TIMEOUT_MS);
    timer.unref();
    dnsLookup(host, { all: true }, (err, addresses: LookupAddress[]) => {
      clearTimeout(timer);
      resolve(err ? undefined : addresses);
    });
  });
}

/**
 * Save-time check of a URL's host: the literal rules, then the name resolved as the sender will
 * resolve it; refused when any address is blocked. Throws SsrfBlockedError.
 */
export async function assertPublicUrlHost(url: URL): Promise<void> {
  const host = hostOf(url);
  assertPublicLiteral(host);
  if (isIP(host) !== 0) return;
  const addresses = await lookupAll(host);
  if (addresses?.some((a) => isPrivateAddress(a.address))) throw new SsrfBlockedError();
}

/** Every address of a name, as getaddrinfo gives them (so /etc/hosts counts). */
export type Resolver = (
  hostname: string,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

const systemResolver: Resolver = (hostname, callback) => dnsLookup(hostname, { all: true }, callback);

/**
 * The send-time guard: a DNS lookup for the HTTP client's connections (http-client.adapter.ts)
 * that refuses a host when any of its addresses is `blocked`, and otherwise hands back only
 * checked addresses to connect to: one resolution per connection, and the socket connects to what
 * it returned, so a name that answers differently the next time gains nothing. (Node skips
 * `lookup` for a literal address: the client checks those itself.) `resolve` is the system's
 * resolver; tests hand a scripted one that plays a rebinding DNS server.
 */
export const guardedLookup =
  (
    blocked: (address: string) => boolean = isPrivateAddress,
    resolve: Resolver = systemResolver,
  ): LookupFunction =>
  (hostname, options, callback) => {
    resolve(hostname, (err, addresses) => {
      if (err) return callback(err, '', 0);
      if (addresses.length === 0 || addresses.some((a) => blocked(a.address)))
        return callback(new SsrfBlockedError(), '', 0);
      if ((options as { all?: boolean }).all)
        return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      return callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
