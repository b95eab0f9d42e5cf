/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com, spec v1): HMAC-SHA256 over
 * `${webhook-id}.${webhook-timestamp}.${body}` with the key that a `whsec_<base64>` secret
 * encodes; `webhook-signature` carries one space-separated `v1,<base64>` per secret, so a
 * receiver holding either the old or the new secret accepts the request during a rotation.
 * Pure (the clock is a parameter).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
/** The spec recommends keys of 24 to 64 bytes. */
export const MIN_SECRET_BYTES = 24;
export const MAX_SECRET_BYTES = 64;
export const DEFAULT_TOLERANCE_SEC = 300;

export class SigningSecretError extends Error {
  override name = 'SigningSecretError';
}

/** The HMAC key of a `whsec_…` secret. Throws SigningSecretError when it is not one. */
export function secretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) {
    throw new SigningSecretError(`must start with ${SECRET_PREFIX} (a Standard Webhooks secret)`);
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    throw new SigningSecretError(`the part after ${SECRET_PREFIX} must be base64`);
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new SigningSecretError(
      `must encode ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes (got ${key.length}); make one with ` +
        `node -e "console.log('whsec_'+require('crypto').randomBytes(32).toString('base64'))"`,
    );
  }
  return key;
}

function signature(key: Buffer, id: string, timestamp: number | string, body: string): string {
  return createHmac('sha256', key).update(`${id}.${timestamp}.${body}`, 'utf8').digest('base64');
}

/** The `webhook-signature` value: `v1,<sig>` per secret, space-separated. */
export function sign(id: string, timestamp: number, body: string, secrets: readonly string[]): string {
  return secrets.map((s) => `v1,${signature(secretKey(s), id, timestamp, body)}`).join(' ');
}

/** The three Standard Webhooks headers for one attempt. */
export function signatureHeaders(
  id: string,
  body: string,
  secrets: readonly string[],
  nowMs: number = Date.now(),
): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': sign(id, timestamp, body, secrets),
  };
}

/**
 * The webhook-id of a request: the CloudEvent id when it carries one event (so receivers can
 * de-duplicate on it), else a digest of the ids of all it carries. Stable across retries.
 */
export function webhookIdOf(eventIds: readonly string[]): string {
  if (eventIds.length === 1) return eventIds[0]!;
  return `batch_${createHash('sha256').update(eventIds.join('\n')).digest('hex').slice(0, 32)}`;
}

export type VerifyResult =
  | { ok: true; id: string; timestamp: number; secretIndex: number }
  | { ok: false; reason: string };

type HeaderBag = Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/**
 * Verifies a received request against one or more secrets: the three headers present, the
 * timestamp within `toleranceSec` of `nowMs`, and one `v1` signature matching one secret
 * (compared in constant time). `body` must be the raw body exactly as received.
 */
export function verify(
  headers: HeaderBag,
  body: string,
  secrets: readonly string[],
  options: { toleranceSec?: number; nowMs?: number } = {},
): VerifyResult {
  const id = header(headers, 'webhook-id');
  const stamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !stamp || !signatures) {
    return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature header' };
  }
  if (!/^\d+$/.test(stamp)) return { ok: false, reason: 'webhook-timestamp is not integer seconds' };
  const timestamp = Number(stamp);
  const tolerance = options.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  const now = Math.floor((options.nowMs ?? Date.now()) / 1000);
  if (Math.abs(now - timestamp) > tolerance) {
    return { ok: false, reason: `webhook-timestamp is ${now - timestamp} s away from now (tolerance ${tolerance} s)` };
  }
  const offered = signatures
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  for (const [index, secret] of secrets.entries()) {
    const expected = Buffer.from(signature(secretKey(secret), id, stamp, body), 'base64');
    if (offered.some((o) => o.length === expected.length && timingSafeEqual(o, expected))) {
      return { ok: true, id, timestamp, secretIndex: index };
    }
  }
  return { ok: false, reason: 'no v1 signature matches the secret(s)' };
}
