/**
 * `cao-events verify`: checks a received webhook request's Standard Webhooks signature, for
 * receivers and for debugging a signing set-up. The request is read as JSON
 * `{"headers": {...}, "body": "<raw body exactly as received>"}` from --file or stdin.
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_TOLERANCE_SEC, SigningSecretError, secretKey, verify } from '../../exporters/delivery/signing.ts';
import type { CommandModule, OptionValues } from './command.ts';

export const VERIFY_OPTIONS = {
  secret: { type: 'string' },
  file: { type: 'string' },
  tolerance: { type: 'string' },
} as const;

export const VERIFY_USAGE = `Usage: cao-events verify --secret whsec_… [--file request.json] [--tolerance 300]

Verifies the Standard Webhooks signature of one received request (webhook-id, webhook-timestamp,
webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>). The request is JSON
{"headers": {"webhook-id": "…", …}, "body": "<the raw body exactly as received>"}, read from
--file or from stdin. Exit code 0: valid; 1: invalid (the reason is printed); 2: usage error.

Options:
  --secret <secrets>   one or more whsec_ secrets, space- or comma-separated (during a rotation,
                       give both) [env CAO_EVENTS_WEBHOOK_SECRET]
  --file <path>        the request as JSON (default: stdin)
  --tolerance <sec>    accepted clock difference of webhook-timestamp, seconds (default ${DEFAULT_TOLERANCE_SEC})
  --help               show this help`;

function readInput(file: string | undefined): string {
  return readFileSync(file ?? 0, 'utf8');
}

export async function runVerifyCommand(values: OptionValues): Promise<number> {
  const usage = (message: string): number => {
    process.stderr.write(`cao-events verify: ${message}\n`);
    return 2;
  };
  const secretText = (values.secret as string | undefined) ?? process.env.CAO_EVENTS_WEBHOOK_SECRET;
  if (!secretText) return usage('--secret (or CAO_EVENTS_WEBHOOK_SECRET) is required');
  const secrets = secretText.split(/[\s,]+/).filter(Boolean);
  for (const [i, secret] of secrets.entries()) {
    try {
      secretKey(secret);
    } catch (err) {
      if (err instanceof SigningSecretError) return usage(`secret #${i + 1}: ${err.message}`);
      throw err;
    }
  }
  const toleranceText = (values.tolerance as string | undefined) ?? String(DEFAULT_TOLERANCE_SEC);
  if (!/^\d+$/.test(toleranceText)) return usage(`--tolerance must be a whole number of seconds (got ${JSON.stringify(toleranceText)})`);
  let text: string;
  try {
    text = readInput(values.file as string | undefined);
  } catch (err) {
    return usage(`${values.file ? `--file ${values.file as string}` : 'stdin'}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    return usage(`the request must be JSON {"headers": {…}, "body": "…"}: ${(err as Error).message}`);
  }
  const request = input as { headers?: unknown; body?: unknown };
  if (request === null || typeof request !== 'object' || typeof request.headers !== 'object' || request.headers === null || typeof request.body !== 'string') {
    return usage('the request must be JSON {"headers": {…}, "body": "<raw body as a string>"}');
  }
  const result = verify(request.headers as Record<string, string>, request.body, secrets, {
    toleranceSec: Number(toleranceText),
  });
  if (!result.ok) {
    process.stdout.write(`invalid: ${result.reason}\n`);
    return 1;
  }
  const age = Math.floor(Date.now() / 1000) - result.timestamp;
  process.stdout.write(`valid: webhook-id ${result.id}, signed ${age} s ago, secret #${result.secretIndex + 1}\n`);
  return 0;
}

export const command: CommandModule = {
  usage: () => VERIFY_USAGE,
  options: VERIFY_OPTIONS,
  run: runVerifyCommand,
};
