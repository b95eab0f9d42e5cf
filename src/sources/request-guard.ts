/**
 * Who may talk to a cao-events HTTP endpoint that accepts events (the plugin ingest port), as
 * pure checks on request headers:
 *
 * - Host: only loopback names and addresses, the address the server is bound to, and the names
 *   an operator allows. A page on another site that rebinds its DNS name to 127.0.0.1 (DNS
 *   rebinding) sends its own name as Host and is refused.
 * - Origin: a browser sends one with every cross-site POST (and fetch); no browser origin is
 *   allowed unless configured, so a web page can never post events or read metrics. The CAO
 *   plugin (urllib) sends none.
 * - Authorization: the shared secret, compared in constant time.
 */
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** The host name of a Host header value (port and IPv6 brackets removed, lower-cased). */
export function hostName(hostHeader: string): string {
  const value = hostHeader.trim().toLowerCase();
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    return end === -1 ? value : value.slice(1, end);
  }
  const colon = value.indexOf(':');
  const name = colon === -1 || value.indexOf(':', colon + 1) !== -1 ? value : value.slice(0, colon);
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** localhost (and *.localhost), 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackName(name: string): boolean {
  const n = name.toLowerCase().replace(/^\[|\]$/g, '');
  if (n === 'localhost' || n.endsWith('.localhost')) return true;
  if (isIP(n) === 4) return n.startsWith('127.');
  if (isIP(n) === 6) return n === '::1' || /^(0+:){7}0*1$/.test(n) || /^::ffff:127\./.test(n);
  return false;
}

/** Addresses that listen on every interface. */
export function isWildcardAddress(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '');
  return a === '0.0.0.0' || a === '::' || a === '';
}

export interface GuardOptions {
  /** The address the server is bound to (allowed as Host when it is a specific one). */
  boundHost: string;
  /** Further Host names allowed ('*' allows any). */
  allowedHosts?: readonly string[];
  /** Browser origins allowed (exact `scheme://host[:port]`; '*' allows any). */
  allowedOrigins?: readonly string[];
  token?: string;
}

export type GuardVerdict = { ok: true } | { ok: false; status: 401 | 403; error: string };

export function hostAllowed(hostHeader: string | undefined, options: GuardOptions): boolean {
  if (hostHeader === undefined || hostHeader === '') return true; // HTTP/1.0 clients; a browser always sends Host
  const name = hostName(hostHeader);
  if (isLoopbackName(name)) return true;
  const bound = options.boundHost.toLowerCase().replace(/^\[|\]$/g, '');
  if (!isWildcardAddress(bound) && name === bound) return true;
  return (options.allowedHosts ?? []).some((h) => h === '*' || hostName(h) === name);
}

export function originAllowed(origin: string | undefined, options: GuardOptions): boolean {
  if (origin === undefined) return true;
  const given = origin.trim().toLowerCase().replace(/\/$/, '');
  return (options.allowedOrigins ?? []).some((o) => o === '*' || o.trim().toLowerCase().replace(/\/$/, '') === given);
}

export function tokenAccepted(authorization: string | undefined, token: string | undefined): boolean {
  if (!token) return true;
  const expected = Buffer.from(`Bearer ${token}`);
  const given = Buffer.from(authorization ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** All three checks, in order: Host, Origin, token. */
export function guardRequest(
  headers: { host?: string; origin?: string; authorization?: string },
  options: GuardOptions,
): GuardVerdict {
  if (!hostAllowed(headers.host, options)) {
    return { ok: false, status: 403, error: `Host ${JSON.stringify(headers.host)} is not allowed (loopback only; allow others with ingest.allowedHosts)` };
  }
  if (!originAllowed(headers.origin, options)) {
    return { ok: false, status: 403, error: `cross-site request from origin ${JSON.stringify(headers.origin)} refused (allow an origin with ingest.allowedOrigins)` };
  }
  if (!tokenAccepted(headers.authorization, options.token)) {
    return { ok: false, status: 401, error: 'missing or wrong bearer token' };
  }
  return { ok: true };
}

/** `application/json`, with or without parameters (charset). */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  return contentType.split(';', 1)[0]!.trim().toLowerCase() === 'application/json';
}

/** The start-up warning for a server listening beyond loopback without a shared secret, if due. */
export function exposureWarning(host: string, token: string | undefined): string | undefined {
  if (token || isLoopbackName(host)) return undefined;
  return (
    `ingest listens on ${host}, beyond loopback without a token: anyone who can reach it can post events ` +
    'and read /metrics (set ingest.token / CAO_EVENTS_INGEST_TOKEN, and the same token in the plugin)'
  );
}
