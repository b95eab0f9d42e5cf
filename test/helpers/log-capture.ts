/** Captures pino's JSON lines in memory so tests can assert what was (and was not) logged. */
import { Writable } from 'node:stream';

export interface LogCapture {
  stream: Writable;
  text(): string;
  lines(): Array<Record<string, unknown>>;
}

export function logCapture(): LogCapture {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  const text = (): string => chunks.join('');
  return {
    stream,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
