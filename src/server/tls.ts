// The server's TLS certificate and key, read from the files http.tls names. Read at start
// and again on SIGHUP; a pair that does not load is refused before it can replace one that
// works.
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/types.js';

export interface TlsMaterial {
  cert: string;
  key: string;
}

/** Reads http.tls; a broken pair throws (at start: exit; on SIGHUP: the old one stays). */
export async function readTls(config: Config): Promise<TlsMaterial | null> {
  if (config.http.tls === null) return null;
  const [cert, key] = await Promise.all([
    readFile(config.http.tls.certificate, 'utf8'),
    readFile(config.http.tls.key, 'utf8'),
  ]);
  // Throws on a mismatched or unparsable pair.
  createSecureContext({ cert, key });
  return { cert, key };
}
