// The server's TLS: the certificate and key that http.tls names, and the client CAs of
// http.tls.clientcas, read at start and again on SIGHUP (a set that does not load is refused
// before it can replace one that works), and the policy every secure context is built with.
import { constants, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type TlsOptions } from 'node:tls';
import { certificateBlocksProblem } from '../config/certificate-blocks.js';
import { TLS13_SUITES } from '../config/tls-suites.js';
import type { Config } from '../config/types.js';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** The PEM text of each http.tls.clientcas file; empty: no client certificate is asked for. */
  clientCas: string[];
}

/** Reads http.tls; a broken pair or client CA file throws (at start: exit; on SIGHUP: the old set stays). */
export async function readTls(config: Config): Promise<TlsMaterial | null> {
  if (config.http.tls === null) return null;
  const [cert, key, clientCas] = await Promise.all([
    readFile(config.http.tls.certificate, 'utf8'),
    readFile(config.http.tls.key, 'utf8'),
    Promise.all(config.http.tls.clientCas.map(readClientCa)),
  ]);
  // Throws on a mismatched or unparsable pair.
  createSecureContext({ cert, key });
  return { cert, key, clientCas };
}

/**
 * A client CA file as the config loader accepts it (the same check: certificate-blocks.ts).
 * OpenSSL would skip a bad or cut-off block without a word (and take a file without any),
 * leaving clients of that CA refused after a reload that seemed to work.
 */
async function readClientCa(path: string): Promise<string> {
  const pem = await readFile(path, 'utf8');
  const problem = certificateBlocksProblem(pem);
  if (problem !== null) throw new Error(`http.tls.clientcas: ${path} ${problem.what}`, { cause: problem.cause });
  return pem;
}

/**
 * Options for every secure context of the server: at start and on each SIGHUP, since
 * setSecureContext() rebuilds the context from what it is given and drops the rest (client
 * CAs included: a reload re-reads them with the certificate).
 * The server chooses the suite (honorCipherOrder), AES-128-GCM first as Go does on AES-NI
 * hardware, but a client that puts ChaCha20 first (no AES hardware) gets ChaCha20
 * (SSL_OP_PRIORITIZE_CHACHA), as Go's server does too.
 */
export function secureContextOptions(
  material: TlsMaterial,
  policy: Config['http']['tlsPolicy'],
  ticketKeys: Buffer,
): TlsOptions & { ticketKeys: Buffer } {
  return {
    cert: material.cert,
    key: material.key,
    // As Go's tls.RequireAndVerifyClientCert: no certificate, or one that none of these CAs
    // (and not Node's bundled roots) signed, ends the handshake. requestCert and
    // rejectUnauthorized are the server's, read when it is created; the CAs are the context's.
    ...(material.clientCas.length > 0
      ? {
          ca: material.clientCas,
          requestCert: true,
          rejectUnauthorized: true,
          // A resumed session skips the client's certificate: sessions (tickets, whose keys
          // survive a reload) are bound to the client CAs they were verified under, so a CA
          // removed by SIGHUP lets none of its clients back in. The same in every process.
          sessionIdContext: createHash('sha256').update(material.clientCas.join('\n')).digest('hex').slice(0, 32),
        }
      : {}),
    minVersion: policy.minVersion,
    ciphers: [...TLS13_SUITES, ...policy.tls12Ciphers].join(':'),
    honorCipherOrder: true,
    secureOptions: constants.SSL_OP_PRIORITIZE_CHACHA,
    ticketKeys,
  };
}
