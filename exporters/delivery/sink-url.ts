/**
 * What may be said about a sink's URL. Webhook URLs are secrets (Slack and Discord put the token
 * in the path), so a sink is named by the operator (`name:`) or by its host, port and a short
 * hash of the whole URL, never by its path or query; that name is what logs, metric labels,
 * /healthz and the outbox directory show. Credentials in a URL (`https://user:pass@host/`) are
 * taken out of it and sent as HTTP Basic auth instead. Pure.
 */
import { createHash } from 'node:crypto';

/** `hooks.slack.com-1a2b3c4d`, `127.0.0.1-8089-5e6f7a8b`: host, port, 8 hex digits of SHA-256 of the URL. */
export function defaultSinkName(url: string): string {
  const hash = createHash('sha256').update(url).digest('hex').slice(0, 8);
  let host = 'sink';
  let port = '';
  try {
    const u = new URL(url);
    host = u.hostname.replace(/^\[|\]$/g, '') || host;
    port = u.port;
  } catch {
    // an invalid URL is refused by the configuration; the name stays generic
  }
  const safeHost = host.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 40);
  return [safeHost, port, hash].filter(Boolean).join('-');
}

/** The URL without `user:pass@`, and the Basic authorization header they stood for. */
export function withoutCredentials(url: string): { url: string; authorization?: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url };
  }
  if (!u.username && !u.password) return { url };
  const user = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  u.username = '';
  u.password = '';
  return { url: u.href, authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

/** `https://hooks.example.com`: the part of a sink URL that is safe to show (no path, query or credentials). */
export function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '<invalid url>';
  }
}
