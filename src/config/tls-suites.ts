// distribution's `http.tls.minimumtls` and `http.tls.ciphersuites`, read as its registry
// reads them (Go crypto/tls): suite names are Go's, the list restricts TLS 1.0–1.2 only
// (Go does not let TLS 1.3 suites be configured; a list of TLS 1.3 suites only leaves TLS 1.2
// none, so TLS 1.3 only is served), and the order written does not matter:
// the server picks in Go's own preference order, AES-128-GCM first on AES-NI hardware.
import { createSecureContext } from 'node:tls';
import { opensslReason } from '../errors/inspect.js';

/** Go's TLS 1.2 suite names with their OpenSSL names, in Go's preference order (crypto/tls cipher_suites.go). */
const TLS12_SUITES: ReadonlyArray<readonly [go: string, openssl: string]> = [
  ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
  ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'],
  ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'ECDHE-ECDSA-AES256-GCM-SHA384'],
  ['TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'ECDHE-RSA-AES256-GCM-SHA384'],
  ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
  ['TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', 'ECDHE-RSA-CHACHA20-POLY1305'],
  ['TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA', 'ECDHE-ECDSA-AES128-SHA'],
  ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA', 'ECDHE-RSA-AES128-SHA'],
  ['TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA', 'ECDHE-ECDSA-AES256-SHA'],
  ['TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA', 'ECDHE-RSA-AES256-SHA'],
  ['TLS_RSA_WITH_AES_128_GCM_SHA256', 'AES128-GCM-SHA256'],
  ['TLS_RSA_WITH_AES_256_GCM_SHA384', 'AES256-GCM-SHA384'],
  ['TLS_RSA_WITH_AES_128_CBC_SHA', 'AES128-SHA'],
  ['TLS_RSA_WITH_AES_256_CBC_SHA', 'AES256-SHA'],
  ['TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA', 'ECDHE-RSA-DES-CBC3-SHA'],
  ['TLS_RSA_WITH_3DES_EDE_CBC_SHA', 'DES-CBC3-SHA'],
  ['TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256', 'ECDHE-ECDSA-AES128-SHA256'],
  ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256', 'ECDHE-RSA-AES128-SHA256'],
  ['TLS_RSA_WITH_AES_128_CBC_SHA256', 'AES128-SHA256'],
];

/**
 * The TLS 1.3 suites, always served (OpenSSL and Go name them alike), AES-128-GCM first as
 * Go orders them on AES-NI hardware: it costs less per byte than AES-256-GCM, Node's default
 * first choice. Accepted in the list, as Go accepts them, but not configurable: a list of
 * these alone leaves TLS 1.2 no suite.
 */
export const TLS13_SUITES: readonly string[] = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
];

/** In the documented list but never served: RFC 7465 prohibits RC4, and OpenSSL 3 has none. */
export const RC4_SUITE_NAMES: readonly string[] = [
  'TLS_RSA_WITH_RC4_128_SHA',
  'TLS_ECDHE_ECDSA_WITH_RC4_128_SHA',
  'TLS_ECDHE_RSA_WITH_RC4_128_SHA',
];

/** Go's older names for the ChaCha20 suites, still accepted by crypto/tls. */
const ALIASES: Readonly<Record<string, string>> = {
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
};

/** distribution's default list (registry.go), used when `ciphersuites` is unset. */
export const DEFAULT_CIPHER_SUITES: readonly string[] = [
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_256_GCM_SHA384',
];

export const DEFAULT_MINIMUM_TLS = 'tls1.2';

/** `minimumtls` values as distribution documents them → Node's minVersion. */
export const MINIMUM_TLS: Readonly<Record<string, 'TLSv1.2' | 'TLSv1.3'>> = {
  // OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level: they are read as 1.2.
  'tls1.0': 'TLSv1.2',
  'tls1.1': 'TLSv1.2',
  'tls1.2': 'TLSv1.2',
  'tls1.3': 'TLSv1.3',
};

/** The Go name a written name stands for, or null when Go has no such TLS 1.0–1.3 suite. */
export function canonicalSuiteName(name: string): string | null {
  const go = ALIASES[name] ?? name;
  if (TLS13_SUITES.includes(go) || RC4_SUITE_NAMES.includes(go)) return go;
  return TLS12_SUITES.some(([n]) => n === go) ? go : null;
}

/**
 * Why this node's OpenSSL refuses a cipher string, or null when it takes it. Go serves suites
 * OpenSSL 3 no longer has at its default security level (3DES): a list of only those would
 * stop the node at start with "no cipher match".
 */
export function opensslRefusal(ciphers: string): string | null {
  try {
    createSecureContext({ ciphers, minVersion: 'TLSv1.2' });
    return null;
  } catch (err) {
    return opensslReason(err);
  }
}

/** OpenSSL names of the TLS 1.2 suites among `goNames`, in Go's preference order. */
export function tls12OpenSslNames(goNames: readonly string[]): string[] {
  return TLS12_SUITES.filter(([go]) => goNames.includes(go)).map(([, openssl]) => openssl);
}
