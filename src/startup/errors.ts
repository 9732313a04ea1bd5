// Failures that stop a node from starting although its configuration loaded: the config was
// valid, but what it names does not answer as expected (no trusted keys, a port in use). The CLI prints the
// message with its causes, then the hint: the config keys to look at, by their key paths.
import { DtrCacheError } from '../errors/base.js';
import type { Config } from '../config/types.js';
import { errnoCode } from '../errors/inspect.js';

export type StartupErrorCode =
  /** The first load of the trusted key set failed (unreachable, untrusted TLS, not a JWK Set). */
  | 'KEYS_UNAVAILABLE'
  /** http.addr or http.debug.addr could not be bound (in use, no permission, no such address). */
  | 'LISTEN_FAILED';

export class StartupError extends DtrCacheError<StartupErrorCode> {
  /** One line naming the config keys to check, for the operator. */
  readonly hint: string;

  constructor(code: StartupErrorCode, message: string, hint: string, cause: unknown) {
    super(code, message, { cause });
    this.hint = hint;
  }
}

/** The key set could not be loaded at start: which keys decide where it comes from and how. */
export function keysUnavailable(config: Config, cause: unknown): StartupError {
  const at = config.downstream.keyPath;
  const cas = `${at}.cas (PEM files of the CA that signed its certificate; the system roots are trusted besides)`;
  const jwks = config.downstream.jwks;
  let hint: string;
  if (jwks === null)
    hint = `check ${at}.upstreams (the keys come from the first upstream that answers at /.well-known/jwks.json: is it up and reachable from here?), ${cas}, or set ${at}.jwks to a JWK Set URL or file`;
  else if (jwks.startsWith('/')) hint = `check ${at}.jwks (a file holding the origin's JWK Set)`;
  else hint = `check ${at}.jwks (is the URL reachable from here?) and ${cas}`;
  return new StartupError('KEYS_UNAVAILABLE', 'the trusted keys (JWK Set) could not be loaded', hint, cause);
}

/** What a bind error most likely means, for the hint. */
const BIND_HINTS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'another process (another node, or the other listener of this one) listens on that port',
  EACCES: 'a port below 1024 needs root or CAP_NET_BIND_SERVICE',
  EADDRNOTAVAIL: 'the host is not an address of this machine',
};

/** A listener could not bind: the error names the key its address came from. */
export function listenFailed(
  keyPath: 'http.addr' | 'http.debug.addr',
  addr: { host: string; port: number },
  cause: unknown,
): StartupError {
  const shown = `${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}`;
  const why = BIND_HINTS[errnoCode(cause) ?? ''];
  return new StartupError(
    'LISTEN_FAILED',
    `cannot listen on ${shown} (${keyPath})`,
    `check ${keyPath}${why === undefined ? '' : `: ${why}`}`,
    cause,
  );
}
