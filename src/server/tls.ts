// The server's TLS: the certificate and key that http.tls names, read at start and again on
// SIGHUP (a pair that does not load is refused before it can replace one that works), and
// the protocol policy every secure context is built with.
import { constants } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
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

/**
 * Options for every secure context of the server: at start and on each SIGHUP, since
 * setSecureContext() rebuilds the context from what it is given and drops the rest.
 * The server chooses the suite (honorCipherOrder), AES-128-GCM first as Go does on AES-NI
 * hardware, but a client that puts ChaCha20 first (no AES hardware) gets ChaCha20
 * (SSL_OP_PRIORITIZE_CHACHA), as Go's server does too.
 */
export function secureContextOptions(
  material: TlsMaterial,
  policy: Config['http']['tlsPolicy'],
  ticketKeys: Buffer,
): SecureContextOptions & { ticketKeys: Buffer } {
  return {
    cert: material.cert,
    key: material.key,
    minVersion: policy.minVersion,
    ciphers: [...policy.tls13Ciphers, ...policy.tls12Ciphers].join(':'),
    honorCipherOrder: true,
    secureOptions: constants.SSL_OP_PRIORITIZE_CHACHA,
    ticketKeys,
  };
}
