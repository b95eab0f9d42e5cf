/**
 * The Sender layer: one HTTP request per call, and nothing else. `HttpSender` sends with undici
 * (its own connection pool), a time-out on every request (connect, headers, body), the sink's
 * configured headers, and a fresh Standard Webhooks signature per attempt when the sink has
 * secrets. It never throws: a network error or time-out comes back as `error`. The queue takes
 * any `Sender`, so tests and other transports can stand in.
 */
import { Agent, request } from 'undici';
import { signatureHeaders } from './signing.ts';

export interface OutgoingRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Stable across retries: the CloudEvent id, or a digest of the ids a request carries. */
  webhookId: string;
  /** Read the response body (for a renderer's onResponse); else it is discarded. */
  readBody: boolean;
}

export interface SendResult {
  /** Undefined when no answer came (network error, time-out, aborted). */
  status?: number;
  headers: Record<string, string | undefined>;
  /** The response body, first 64 KiB (only when asked for). */
  body: string;
  /** `time-out`, an error code such as ECONNREFUSED, or `aborted`; never a URL. */
  error?: string;
}

export interface Sender {
  send(request: OutgoingRequest, signal: AbortSignal): Promise<SendResult>;
  close(): Promise<void>;
}

export interface HttpSenderOptions {
  timeoutMs: number;
  /** Sent with every request; a renderer's headers override them, signature headers override both. */
  headers?: Record<string, string>;
  signingSecrets?: readonly string[];
  connections?: number;
  /** For the signature timestamp. */
  now?: () => number;
}

const RESPONSE_BODY_LIMIT = 64 * 1024;

export class HttpSender implements Sender {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;
  readonly #secrets: readonly string[];
  readonly #now: () => number;

  constructor(options: HttpSenderOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#headers = options.headers ?? {};
    this.#secrets = options.signingSecrets ?? [];
    this.#now = options.now ?? Date.now;
    this.#agent = new Agent({
      connections: options.connections ?? 1,
      connectTimeout: this.#timeoutMs,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    });
  }

  async send(outgoing: OutgoingRequest, signal: AbortSignal): Promise<SendResult> {
    const signing = this.#secrets.length > 0 ? signatureHeaders(outgoing.webhookId, outgoing.body, this.#secrets, this.#now()) : {};
    try {
      const response = await request(outgoing.url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: { ...this.#headers, ...outgoing.headers, ...signing },
        body: outgoing.body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]),
      });
      const headers = flatHeaders(response.headers);
      let body = '';
      if (outgoing.readBody) body = await readLimited(response.body);
      else await response.body.dump({ limit: RESPONSE_BODY_LIMIT }).catch(() => undefined);
      return { status: response.statusCode, headers, body };
    } catch (err) {
      return { headers: {}, body: '', error: signal.aborted ? 'aborted' : describeError(err, outgoing.url) };
    }
  }

  async close(): Promise<void> {
    await this.#agent.destroy().catch(() => undefined);
  }
}

function flatHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** The response body as text, its first 64 KiB; the rest is discarded. */
async function readLimited(body: AsyncIterable<Buffer | Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = Buffer.from(chunk);
      chunks.push(buf);
      size += buf.length;
      if (size >= RESPONSE_BODY_LIMIT) break;
    }
  } catch {
    // a body cut short still tells what it told so far
  }
  return Buffer.concat(chunks).subarray(0, RESPONSE_BODY_LIMIT).toString('utf8');
}

/** A short, loggable description of a request error: `time-out`, an error code, else the message without the URL. */
export function describeError(err: unknown, url: string): string {
  if (!(err instanceof Error)) return 'request failed';
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'time-out';
  const code = (err as { code?: unknown }).code ?? (err.cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]+$/.test(code)) {
    return code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? 'time-out' : code;
  }
  return scrubUrl(err.message, url).slice(0, 200);
}

/** Removes a sink URL (and its path and query) from a text: webhook URLs are secrets. */
export function scrubUrl(text: string, url: string): string {
  let out = text.split(url).join('<sink url>');
  try {
    const u = new URL(url);
    for (const part of [u.href, `${u.pathname}${u.search}`, u.pathname, u.search, u.password, u.username]) {
      if (part && part !== '/' && part.length > 1) out = out.split(part).join('<redacted>');
    }
  } catch {
    // not a URL: nothing more to take out
  }
  return out;
}
