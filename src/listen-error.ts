/**
 * A server that cannot listen, as one message naming the configuration key and the address:
 * `ingest.port: cannot listen on 127.0.0.1:4319: address already in use (is another instance
 * running?)`. Thrown by the servers cao-events starts, so every command can report it and exit.
 */
export class ListenError extends Error {
  override name = 'ListenError';
  readonly key: string;
  readonly code: string | undefined;

  constructor(key: string, address: string, cause: NodeJS.ErrnoException) {
    super(`${key}: cannot listen on ${address}: ${reason(cause)}`, { cause });
    this.key = key;
    this.code = cause.code;
  }
}

function reason(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'address already in use (is another instance running?)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case 'EADDRNOTAVAIL':
      return 'address not available on this machine';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    default:
      return err.code ?? err.message;
  }
}

/** Which key a listen failure is about: the host for address problems, else the port. */
export function listenError(err: unknown, keys: { host: string; port: string }, host: string, port: number): unknown {
  const e = err as NodeJS.ErrnoException;
  if (!e || typeof e !== 'object' || typeof e.code !== 'string') return err;
  const hostProblem = e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN';
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new ListenError(hostProblem ? keys.host : keys.port, address, e);
}
