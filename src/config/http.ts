// The `http` section: listen address, public URL, TLS, debug server, and our hostile-client
// limits (http.limits, http.draintimeout).
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { Config } from './types.js';
import { DEFAULTS } from './defaults.js';
import { parseGoDuration } from './duration.js';
import { readCas } from './downstream.js';
import { describe, type Field } from './field.js';
import type { FileCheck } from './files.js';
import { ADDR_EXPECTED, parseListenAddr, type ListenAddr } from './net.js';
import { SIZE_EXPECTED, parseSize } from './size.js';
import {
  DEFAULT_CIPHER_SUITES,
  DEFAULT_MINIMUM_TLS,
  MINIMUM_TLS,
  RC4_SUITE_NAMES,
  TLS13_SUITES,
  canonicalSuiteName,
  opensslRefusal,
  tls12OpenSslNames,
} from './tls-suites.js';
import { readBaseUrl, readDuration } from './values.js';

const UNUSED = 'a Docker Registry setting that dtr-cache does not support, ignored';

export function readHttp(root: Field, checks: FileCheck[]): Config['http'] {
  const http = root.child('http');
  // `relativeurls` is accepted for compatibility: the cache sends no Location of its own.
  http.checkKeys(
    ['addr', 'net', 'prefix', 'host', 'secret', 'tls', 'debug', 'draintimeout', 'limits', 'processes', 'headers'],
    ['relativeurls'],
    {
      http2: UNUSED,
      h2c: UNUSED,
    },
  );
  const net = http.child('net');
  const netText = net.text('tcp');
  if (netText !== null && netText !== 'tcp') net.fail('tcp (dtr-cache listens on TCP only)');
  // Clients find blobs at /v2/...; a prefix would move every route, and DTR's redirects too.
  const prefix = http.child('prefix');
  const prefixText = prefix.string('/');
  if (prefixText !== null && prefixText !== '' && prefixText !== '/')
    prefix.fail('no prefix (dtr-cache serves /v2/ at the root)');

  const { host, port } = readAddr(http.child('addr')) ?? mustParseAddr(DEFAULTS.http.addr);

  const tls = readTls(http.child('tls'), checks);
  const out: Config['http'] = {
    host,
    port,
    // distribution builds URLs from the request when http.host is "", as when unset.
    publicUrl: readBaseUrl(http.child('host'), true),
    // distribution generates a secret when it is empty, as when unset: '' is read as unset.
    secret: http.child('secret').string('a string') || null,
    tls,
    tlsPolicy: readTlsPolicy(http.child('tls'), tls !== null),
    headers: readHeaders(http.child('headers')),
    processes: readProcesses(http.child('processes')),
    debug: readDebug(http.child('debug'), { host, port }),
    limits: readLimits(http.child('limits')),
    drainTimeoutMs:
      readDuration(http.child('draintimeout'), false, true) ?? parseGoDuration(DEFAULTS.http.draintimeout),
  };
  // The health check asks the serving port's /v2/ when there is no debug server.
  if (tls !== null && tls.clientCas.length > 0 && out.debug === null)
    http
      .child('tls')
      .child('clientcas')
      .warn('`dtr-cache health` shows no client certificate: set http.debug.addr for it to ask, or it fails');
  return out;
}

function readTls(tls: Field, checks: FileCheck[]): Config['http']['tls'] {
  tls.checkKeys(['certificate', 'key', 'clientcas', 'clientauth', 'letsencrypt', 'minimumtls', 'ciphersuites']);
  const letsencrypt = tls.child('letsencrypt');
  if (letsencrypt.present)
    letsencrypt.fail("http.tls.certificate and http.tls.key (Let's Encrypt is not supported by dtr-cache)");
  const clientcasField = tls.child('clientcas');
  const clientCas = readCas(clientcasField, checks);
  readClientAuth(tls.child('clientauth'), clientCas.length > 0);

  const certField: Field = tls.child('certificate');
  const keyField: Field = tls.child('key');
  // distribution serves plain HTTP when the certificate is "": both read "" as unset.
  const certificate = certField.optionalText('a certificate file path');
  const key = keyField.optionalText('a private key file path');
  if (certificate === null && certField.present)
    certField.warn('empty, read as unset as in Docker Registry: this node serves plain HTTP');
  if (certificate === null && key === null) {
    // Client certificates are asked for in the TLS handshake: without TLS there is none.
    if (clientCas.length > 0)
      clientcasField.fail(
        'http.tls.certificate and http.tls.key to be set too (client certificates are verified in the TLS handshake)',
        'clientcas without TLS',
      );
    return null;
  }
  if (certificate === null)
    keyField.fail(
      'http.tls.certificate to be set too (a TLS key needs its certificate)',
      'a key without a certificate',
    );
  if (key === null)
    certField.fail(
      'http.tls.key to be set too (a TLS certificate needs its private key)',
      'a certificate without a key',
    );
  checks.push(
    { field: certField, path: certificate, kind: 'certificate' },
    { field: keyField, path: key, kind: 'key', certificate },
  );
  return { certificate, key, clientCas };
}

const CLIENT_AUTH_MODES = [
  'request-client-cert',
  'require-any-client-cert',
  'verify-client-cert-if-given',
  'require-and-verify-client-cert',
];
const CLIENT_AUTH_SERVED = 'require-and-verify-client-cert';

/**
 * distribution's `clientauth` (Go's tls.ClientAuthType), applied with clientcas only. Its
 * default, and the only mode served here: every client shows a certificate of a clientcas
 * CA. A laxer mode is refused rather than served stricter (its clients would be cut off).
 */
function readClientAuth(field: Field, withClientCas: boolean): void {
  if (!field.present) return;
  if (!withClientCas) {
    field.warn('has no effect without clientcas, ignored');
    return;
  }
  const mode = field.text(`one of ${CLIENT_AUTH_MODES.join(', ')}`);
  if (mode === null || !CLIENT_AUTH_MODES.includes(mode)) field.fail(`one of ${CLIENT_AUTH_MODES.join(', ')}`);
  if (mode !== CLIENT_AUTH_SERVED)
    field.fail(`${CLIENT_AUTH_SERVED} (the only client authentication mode dtr-cache serves)`);
}

const MINIMUM_TLS_EXPECTED = 'tls1.2 or tls1.3 (tls1.0 and tls1.1 are read as tls1.2)';
const SUITE_EXPECTED = 'a Go cipher suite name such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256';

/** distribution's minimumtls and ciphersuites; see tls-suites.ts for how Go reads them. */
function readTlsPolicy(tls: Field, enabled: boolean): Config['http']['tlsPolicy'] {
  const minField = tls.child('minimumtls');
  const suitesField = tls.child('ciphersuites');
  const written = minField.text(MINIMUM_TLS_EXPECTED);
  const minText = written ?? DEFAULT_MINIMUM_TLS;
  const minVersion = MINIMUM_TLS[minText] ?? minField.fail(MINIMUM_TLS_EXPECTED);
  if (written === 'tls1.0' || written === 'tls1.1')
    minField.warn('read as tls1.2: OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level');
  const items = suitesField.items('a list of Go cipher suite names').map((item) => {
    const text = item.text(SUITE_EXPECTED);
    const name = text === null ? null : canonicalSuiteName(text);
    if (name === null) return item.fail(SUITE_EXPECTED);
    if (RC4_SUITE_NAMES.includes(name)) item.fail('a suite other than RC4 (RFC 7465 prohibits RC4)');
    return { item, name };
  });
  const names = items.map((i) => i.name);
  if (!enabled && (minField.present || suitesField.present))
    (minField.present ? minField : suitesField).warn('has no effect without http.tls.certificate and key');
  if (items.length > 0 && names.every((n) => TLS13_SUITES.includes(n))) {
    // Go ignores the list for TLS 1.3 and finds no TLS 1.2 suite in it: distribution then
    // serves TLS 1.3 only, with every 1.3 suite. So do we.
    if (enabled)
      suitesField.warn(
        'lists TLS 1.3 suites only: TLS 1.2 clients are refused and TLS 1.3 keeps all its suites, as in Docker Registry',
      );
    return { minVersion: 'TLSv1.3', tls12Ciphers: [] };
  }
  if (minVersion === 'TLSv1.3') {
    // As distribution: TLS 1.3 suites cannot be configured, so the list means nothing here.
    if (suitesField.present) suitesField.warn('has no effect with minimumtls tls1.3 (TLS 1.3 suites are fixed)');
    return { minVersion, tls12Ciphers: [] };
  }
  // An empty list is the default list, as distribution's getCipherSuites reads it.
  if (!suitesField.present || items.length === 0)
    return { minVersion, tls12Ciphers: tls12OpenSslNames(DEFAULT_CIPHER_SUITES) };
  // Without TLS the list was only warned about: nothing to check against OpenSSL.
  if (!enabled) return { minVersion, tls12Ciphers: tls12OpenSslNames(names) };
  return { minVersion, tls12Ciphers: servableTls12(suitesField, items) };
}

/**
 * The listed TLS 1.2 suites this node's OpenSSL can serve. Go serves some that OpenSSL 3 has
 * no more (3DES): such an entry is warned and left out; a list left with none is refused
 * here rather than by `serve` ("no cipher match").
 */
function servableTls12(suitesField: Field, items: ReadonlyArray<{ item: Field; name: string }>): string[] {
  const servable: string[] = [];
  const refused: string[] = [];
  for (const { item, name } of items) {
    const [openssl] = tls12OpenSslNames([name]);
    const why = openssl === undefined ? null : opensslRefusal(openssl);
    if (why === null) {
      servable.push(name);
      continue;
    }
    refused.push(`${name}: ${why}`);
    item.warn(`not served: this node's OpenSSL cannot serve ${name} (${why}); the other suites are`);
  }
  const expected =
    "at least one TLS 1.2 suite this node's OpenSSL can serve, such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
  const served = tls12OpenSslNames(servable);
  if (served.length === 0) suitesField.fail(expected, `only suites it cannot serve (${refused.join('; ')})`);
  return served;
}

// Set by the cache for each response (its length, framing, connection): a value fixed for
// every response would break them, and HTTP/2 forbids the connection-specific ones.
const MANAGED_HEADERS = [
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
  'host',
];
const HEADER_VALUES_EXPECTED = 'a list of header values, such as [nosniff]';

/**
 * distribution's `http.headers`: header name → list of values, added to every response of
 * the main listener. The cache's own headers for a response (a blob's Content-Type, ETag,
 * Cache-Control …) take precedence over them, as distribution's handlers set theirs after.
 */
function readHeaders(headers: Field): Config['http']['headers'] {
  const out: Array<readonly [string, readonly string[]]> = [];
  for (const name of headers.keys()) {
    const field = headers.child(name);
    try {
      validateHeaderName(name);
    } catch (err) {
      field.fail("a header name (letters, digits and !#$%&'*+-.^_`|~)", JSON.stringify(name), err);
    }
    if (MANAGED_HEADERS.includes(name.toLowerCase()))
      field.fail('a header the cache does not set itself per response', `the header ${name}`);
    const values = field.items(HEADER_VALUES_EXPECTED).map((item) => {
      const value = item.string('a header value (a string)') ?? item.fail('a header value (a string)');
      try {
        validateHeaderValue(name, value);
      } catch (err) {
        item.fail('a header value without control characters', undefined, err);
      }
      return value;
    });
    // `X-Name:` with no values adds nothing, as a nil list does in distribution.
    if (values.length > 0) out.push([name, values]);
  }
  return out;
}

const PROCESSES_EXPECTED = 'auto or a whole number of processes from 1 to 1024';

/** Our extension: how many serving processes share the port; `auto` = one per available core. */
function readProcesses(field: Field): Config['http']['processes'] {
  const v = field.scalar(PROCESSES_EXPECTED);
  if (v === null) return DEFAULTS.http.processes;
  if (v === 'auto') return 'auto';
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1024) return field.fail(PROCESSES_EXPECTED);
  return v;
}

/** `main`: http.addr, which the debug server cannot share. */
function readDebug(debug: Field, main: ListenAddr): Config['http']['debug'] {
  debug.checkKeys(['addr', 'prometheus']);
  const prometheus = debug.child('prometheus');
  prometheus.checkKeys(['enabled', 'path']);
  const enabledField = prometheus.child('enabled');
  const enabled = enabledField.bool() ?? DEFAULTS.http.debug.prometheus.enabled;
  const pathField = prometheus.child('path');
  const path = pathField.text('a URL path starting with /') ?? DEFAULTS.http.debug.prometheus.path;
  if (!path.startsWith('/') || /[?#\s]/.test(path)) pathField.fail('a URL path starting with /');

  const addrField = debug.child('addr');
  const addr = readAddr(addrField, true);
  if (addr !== null && overlaps(addr, main))
    addrField.fail(
      "an address other than http.addr's (the debug server listens on a port of its own)",
      `${describe(addrField.node)}, on the port http.addr binds (${main.port})`,
    );
  if (addr === null) {
    if (enabled) enabledField.warn('has no effect without http.debug.addr (metrics are served by the debug server)');
    return null;
  }
  return { host: addr.host, port: addr.port, prometheus: enabled, prometheusPath: path };
}

function readLimits(limits: Field): Config['http']['limits'] {
  const d = DEFAULTS.http.limits;
  limits.checkKeys(Object.keys(d));
  const sizeField = limits.child('maxheadersize');
  const maxHeaderSize = sizeField.parse(parseSize, SIZE_EXPECTED) ?? d.maxheadersize;
  if (maxHeaderSize < 1024) sizeField.fail('at least 1KiB of headers (docker clients send a few hundred bytes)');

  const headersField = limits.child('headerstimeout');
  const headersTimeoutMs = readDuration(headersField, true, true) ?? parseGoDuration(d.headerstimeout);
  const requestTimeoutMs =
    readDuration(limits.child('requesttimeout'), true, true) ?? parseGoDuration(d.requesttimeout);
  // Node's http server refuses a headersTimeout above requestTimeout.
  if (headersTimeoutMs > requestTimeoutMs) {
    headersField.fail(`at most http.limits.requesttimeout (a request's headers arrive within the request)`);
  }
  return {
    maxHeaderSize,
    headersTimeoutMs,
    requestTimeoutMs,
    idleTimeoutMs: readDuration(limits.child('idletimeout'), true, true) ?? parseGoDuration(d.idletimeout),
    maxConcurrentStreams: limits.child('maxconcurrentstreams').int(1, 2 ** 31 - 1) ?? d.maxconcurrentstreams,
    maxConnectionsPerIp: limits.child('maxconnectionsperip').int(1) ?? d.maxconnectionsperip,
    maxResetsPerSecond: limits.child('maxresetspersecond').int(1) ?? d.maxresetspersecond,
  };
}

/** `emptyIsUnset`: "" reads as unset (http.debug.addr: distribution runs no debug server then). */
function readAddr(field: Field, emptyIsUnset = false): ListenAddr | null {
  const text = emptyIsUnset ? field.optionalText(ADDR_EXPECTED) : field.text(ADDR_EXPECTED);
  if (text === null) return null;
  return parseListenAddr(text) ?? field.fail(ADDR_EXPECTED);
}

/**
 * Two listen addresses that cannot both be bound: the same port (not 0, which picks a free
 * one) on the same host, or on every interface for either. Names that resolve to one address
 * (localhost and 127.0.0.1) are not caught here; the bind error names the key then.
 */
function overlaps(a: ListenAddr, b: ListenAddr): boolean {
  const wildcard = (h: string): boolean => h === '' || h === '0.0.0.0' || h === '::';
  return a.port !== 0 && a.port === b.port && (a.host === b.host || wildcard(a.host) || wildcard(b.host));
}

function mustParseAddr(text: string): ListenAddr {
  const addr = parseListenAddr(text);
  if (addr === null) throw new Error(`internal: default address ${text} does not parse`);
  return addr;
}
