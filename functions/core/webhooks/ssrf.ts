import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { FramecastError } from '../errors.ts';

/**
 * The SSRF policy for webhook URLs. A tenant chooses the URL, and our webhook Lambda calls it from inside
 * the production's AWS account, so a URL must never reach the instance metadata service, the VPC or the
 * machine itself. The rules are applied at registration (for a 400 the tenant can act on) and again at
 * every delivery, on the very address the connection then goes to (see functions/adapters/webhook-sender.ts),
 * because DNS can answer differently between the two.
 */

export interface WebhookPolicy {
  /** Local mode only: lets deliveries reach loopback addresses, over plain http too. */
  readonly allowLoopback: boolean;
  /** When non-empty, the only hosts deliveries may go to: `vendor.com` exactly, `.vendor.com` any subdomain. */
  readonly allowedHosts?: readonly string[];
}

export type AddressRefusal =
  | 'loopback address'
  | 'private address'
  | 'shared address'
  | 'link-local address'
  | 'unspecified address'
  | 'multicast address'
  | 'broadcast address'
  | 'reserved address'
  | 'unique-local address'
  | 'site-local address'
  | 'invalid address';

export type UrlRefusal =
  | AddressRefusal
  | 'not a valid URL'
  | 'URL too long'
  | 'not https'
  | 'credentials in URL'
  | 'invalid port'
  | 'host name not fully qualified'
  | 'internal host name'
  | 'host not in allowed hosts'
  | 'host name does not resolve';

export type Refused = { ok: false; reason: UrlRefusal };

/** Same shape as `dns.lookup` with `{all: true}`, so tests can inject answers. */
export type Lookup = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export const MAX_URL_LENGTH = 2048;

// Names that by standard or convention only resolve inside a network (RFC 6762 `.local`, RFC 8375
// `.home.arpa`, ICANN's `.internal`, which AWS and GCP use for instance and metadata names).
const INTERNAL_SUFFIXES = ['.local', '.internal', '.home.arpa', '.localdomain', '.lan'];

const V4_REASONS: Partial<Record<string, AddressRefusal>> = {
  unspecified: 'unspecified address',
  broadcast: 'broadcast address',
  multicast: 'multicast address',
  linkLocal: 'link-local address',
  loopback: 'loopback address',
  carrierGradeNat: 'shared address',
  private: 'private address',
};

const V6_REASONS: Partial<Record<string, AddressRefusal>> = {
  unspecified: 'unspecified address',
  loopback: 'loopback address',
  linkLocal: 'link-local address',
  multicast: 'multicast address',
  uniqueLocal: 'unique-local address',
  deprecatedSiteLocal: 'site-local address',
};

// Only 2000::/3 is allocated as global unicast; everything else (IPv4-compatible ::a.b.c.d, discard-only,
// segment routing...) is not a place a vendor's server lives.
const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');
// The well-known NAT64 prefix maps to the public IPv4 internet (an IPv6-only VPC with DNS64 reaches a
// v4-only vendor through it); the local-use 64:ff9b:1::/48 maps to whatever the network decides.
const WELL_KNOWN_NAT64 = ipaddr.IPv6.parseCIDR('64:ff9b::/96');

function classifyV4(address: ipaddr.IPv4): 'public' | AddressRefusal {
  const range = address.range();
  // as112, amt and the documentation and benchmarking ranges are not "unicast" either: no vendor there.
  return range === 'unicast' ? 'public' : (V4_REASONS[range] ?? 'reserved address');
}

function v4At(parts: number[], index: number): ipaddr.IPv4 {
  const high = parts[index] ?? 0;
  const low = parts[index + 1] ?? 0;
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

function classifyV6(address: ipaddr.IPv6): 'public' | AddressRefusal {
  const range = address.range();
  // These spellings carry an IPv4 address and reach it (dual-stack sockets, NAT64, 6to4 relays), so
  // they are exactly as allowed as the IPv4 address inside.
  if (
    range === 'ipv4Mapped' ||
    range === 'rfc6145' ||
    (range === 'rfc6052' && address.match(WELL_KNOWN_NAT64))
  ) {
    return classifyV4(v4At(address.parts, 6));
  }
  if (range === '6to4') return classifyV4(v4At(address.parts, 1));
  const reason = V6_REASONS[range];
  if (reason) return reason;
  // Teredo, NAT64 local-use, ORCHID, documentation, benchmarking and the rest of 2001::/23.
  if (range !== 'unicast' || !address.match(GLOBAL_UNICAST)) return 'reserved address';
  return 'public';
}

const NUMERIC_HOST = /^[0-9a-fx.]+$/i;

/**
 * 'public' when a webhook may be delivered to `ip`, else why not. Anything that is not an IP address
 * is refused; IPv4 in any numeric spelling (`0177.0.0.1`, `0x7f.1`, `2130706433`) is read the way a URL
 * and the operating system read it.
 */
export function classifyAddress(ip: string): 'public' | AddressRefusal {
  if (ipaddr.IPv6.isValid(ip)) return classifyV6(ipaddr.IPv6.parse(ip));
  if (ipaddr.IPv4.isValidFourPartDecimal(ip)) return classifyV4(ipaddr.IPv4.parse(ip));
  if (!NUMERIC_HOST.test(ip)) return 'invalid address';
  // One parser for the odd spellings: the WHATWG URL one, which the URL checks below rely on too.
  try {
    const host = new URL(`http://${ip}/`).hostname;
    return ipaddr.IPv4.isValidFourPartDecimal(host) ? classifyV4(ipaddr.IPv4.parse(host)) : 'invalid address';
  } catch {
    return 'invalid address';
  }
}

/** The host of a parsed URL as a connection needs it: no IPv6 brackets, no trailing root dot. */
export function hostOf(url: URL): string {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

function isAllowedHost(host: string, allowedHosts: readonly string[]): boolean {
  return allowedHosts.some((raw) => {
    const entry = raw
      .trim()
      .toLowerCase()
      .replace(/^\[|\]$/g, '')
      .replace(/\.$/, '');
    return entry.startsWith('.') ? host.endsWith(entry) && host.length > entry.length : host === entry;
  });
}

/** Why `verdict` keeps a delivery away under `policy`, or undefined when it does not. */
function refusal(verdict: 'public' | UrlRefusal, policy: WebhookPolicy): UrlRefusal | undefined {
  if (verdict === 'public' || (verdict === 'loopback address' && policy.allowLoopback)) return undefined;
  return verdict;
}

/** What the host name alone says about where it leads, before any DNS. */
function classifyHost(
  host: string,
): 'public' | AddressRefusal | 'internal host name' | 'host name not fully qualified' {
  if (isIP(host)) return classifyAddress(host);
  // RFC 6761: localhost and its subdomains are loopback whatever a resolver says.
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback address';
  if (INTERNAL_SUFFIXES.some((suffix) => host.endsWith(suffix))) return 'internal host name';
  // A bare name is completed by the resolver's search domains: that is, inside the network.
  if (!host.includes('.')) return 'host name not fully qualified';
  return 'public';
}

/**
 * The checks that need no DNS: https (http only to loopback, and only with `allowLoopback`), no
 * credentials, a port other than 0 (any other port is allowed: the address checks are what keep a
 * delivery off internal services), an allowed host, and a host that is not, by its spelling, internal.
 */
export function checkUrlSyntax(url: string, policy: WebhookPolicy): { ok: true; url: URL } | Refused {
  if (url.length > MAX_URL_LENGTH) return { ok: false, reason: 'URL too long' };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, reason: 'not a valid URL' };
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return { ok: false, reason: 'not https' };
  if (parsed.username !== '' || parsed.password !== '') return { ok: false, reason: 'credentials in URL' };
  if (parsed.port === '0') return { ok: false, reason: 'invalid port' };
  const host = hostOf(parsed);
  if (host === '') return { ok: false, reason: 'not a valid URL' };

  const verdict = classifyHost(host);
  if (parsed.protocol === 'http:' && !(verdict === 'loopback address' && policy.allowLoopback)) {
    return { ok: false, reason: 'not https' };
  }
  const refused = refusal(verdict, policy);
  if (refused) return { ok: false, reason: refused };
  const allowedHosts = policy.allowedHosts ?? [];
  if (allowedHosts.length > 0 && !isAllowedHost(host, allowedHosts)) {
    return { ok: false, reason: 'host not in allowed hosts' };
  }
  return { ok: true, url: parsed };
}

function lookupAll(lookup: Lookup, host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    lookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });
}

export type CheckedUrl = { ok: true; url: URL; address: string; family: 4 | 6 };

/**
 * The syntax checks, then one DNS resolution whose every address must be allowed (a host with one
 * public and one private address is refused: the client could pick either). Returns the address to
 * connect to; the caller must connect to that address and no other (no second lookup).
 * IPv4 is preferred because Lambda only has IPv6 egress in a dual-stack VPC.
 */
export async function resolveAndCheck(
  url: string | URL,
  policy: WebhookPolicy,
  lookup: Lookup = dnsLookup,
): Promise<CheckedUrl | Refused> {
  const syntax = checkUrlSyntax(typeof url === 'string' ? url : url.href, policy);
  if (!syntax.ok) return syntax;
  const host = hostOf(syntax.url);
  const literal = isIP(host);
  if (literal === 4 || literal === 6) return { ok: true, url: syntax.url, address: host, family: literal };

  let answers: LookupAddress[];
  try {
    answers = await lookupAll(lookup, host);
  } catch {
    return { ok: false, reason: 'host name does not resolve' };
  }
  const addresses = answers.map((answer) => answer.address);
  if (addresses.length === 0) return { ok: false, reason: 'host name does not resolve' };
  for (const address of addresses) {
    const verdict = classifyAddress(address);
    const refused = refusal(verdict, policy);
    if (refused) return { ok: false, reason: refused };
    if (syntax.url.protocol === 'http:' && verdict !== 'loopback address') {
      return { ok: false, reason: 'not https' };
    }
  }
  const address = addresses.find((a) => isIP(a) === 4) ?? addresses[0]!;
  return { ok: true, url: syntax.url, address, family: isIP(address) === 4 ? 4 : 6 };
}

/** The policy from the parsed configuration (FRAMECAST_WEBHOOK_ALLOW_LOOPBACK, FRAMECAST_WEBHOOK_ALLOWED_HOSTS). */
export function policyFromSettings(settings: {
  readonly webhookAllowLoopback: boolean;
  readonly webhookAllowedHosts: readonly string[];
}): WebhookPolicy {
  return { allowLoopback: settings.webhookAllowLoopback, allowedHosts: settings.webhookAllowedHosts };
}

/**
 * For registration: the URL if it may receive webhooks, else a 400 naming `field` and the reason
 * (`details: {field, reason}`).
 */
export async function requireDeliverableUrl(
  field: string,
  url: string,
  policy: WebhookPolicy,
  lookup: Lookup = dnsLookup,
): Promise<URL> {
  const checked = await resolveAndCheck(url, policy, lookup);
  if (!checked.ok) {
    throw new FramecastError('invalid_request', `${field}: ${checked.reason}`, {
      field,
      reason: checked.reason,
    });
  }
  return checked.url;
}
