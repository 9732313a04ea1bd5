// The file checks that need the filesystem: CA bundles (`cas`), the TLS pair, a jwks file and
// a mirror's passwordfile must exist, be readable and look like what they claim to be; the
// TLS key must be the certificate's; the storage root must be a directory the cache can
// write, or one it can create. loadConfigFile runs them (async, in parallel); the pure
// loadConfig only collects them.
import { X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { certificateBlocksProblem } from './certificate-blocks.js';
import type { Field } from './field.js';
import { errnoCode, opensslReason } from '../errors/inspect.js';

export type FileKind = 'ca' | 'certificate' | 'key' | 'jwks' | 'secret' | 'directory';

export interface FileCheck {
  /** The config value that named the file, for the error's key path and line. */
  readonly field: Field;
  readonly path: string;
  readonly kind: FileKind;
  /** A TLS key: the certificate file it must belong to. */
  readonly certificate?: string;
}

const WHAT: Readonly<Record<FileKind, string>> = {
  ca: 'a readable PEM file with at least one CERTIFICATE block',
  certificate: 'a readable PEM file with at least one CERTIFICATE block',
  key: 'a readable PEM file with an unencrypted PRIVATE KEY block',
  jwks: 'a readable JWK Set file (JSON with a "keys" list)',
  secret: 'a readable file holding the password (not empty)',
  directory: 'a directory this process can write, or a path under one where it can be created',
};

/** Runs every check; throws the ConfigError of the first failing one in config order. */
export async function runFileChecks(checks: readonly FileCheck[]): Promise<void> {
  const results = await Promise.allSettled(checks.map(runOne));
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

async function runOne(check: FileCheck): Promise<void> {
  const expected = WHAT[check.kind];
  if (check.kind === 'directory') return checkDirectory(check, expected);
  let text: string;
  try {
    text = await readFile(check.path, 'utf8');
  } catch (err) {
    const code = errnoCode(err) ?? 'unreadable';
    check.field.fail(expected, `${JSON.stringify(check.path)} (${code})`, err);
  }
  if (!looksValid(check.kind, text)) check.field.fail(expected, `${JSON.stringify(check.path)} without one`);
  if (check.kind === 'ca' || check.kind === 'certificate') checkCertificateBlocks(check, text, expected);
  if (check.kind === 'certificate') warnOutsideValidity(check, text);
  if (check.certificate !== undefined) await checkPair(check, text, check.certificate);
}

/** Every CERTIFICATE block must have its END line and parse (see certificate-blocks.ts). */
function checkCertificateBlocks(check: FileCheck, text: string, expected: string): void {
  const problem = certificateBlocksProblem(text);
  if (problem === null) return;
  const wanted = problem.kind === 'unparsable' ? `${expected}, each of which parses` : expected;
  check.field.fail(wanted, `${JSON.stringify(check.path)} ${problem.what}`, problem.cause);
}

/**
 * A server certificate past its notAfter (or before its notBefore) still loads, in Go as
 * here, and every client then refuses the handshake: DTR's guide names TLS as the most
 * common misconfiguration, so the log says it at start rather than leave it to each client.
 */
function warnOutsideValidity(check: FileCheck, text: string): void {
  const first = /-----BEGIN CERTIFICATE-----[^]*?-----END CERTIFICATE-----/.exec(text)?.[0];
  if (first === undefined) return;
  const cert = new X509Certificate(first);
  const now = Date.now();
  const notAfter = new Date(cert.validTo);
  const notBefore = new Date(cert.validFrom);
  if (notAfter.getTime() < now)
    check.field.warn(
      `${JSON.stringify(check.path)} expired on ${notAfter.toISOString()}: clients will refuse the TLS handshake`,
    );
  else if (notBefore.getTime() > now)
    check.field.warn(
      `${JSON.stringify(check.path)} is not valid before ${notBefore.toISOString()} (is this host's clock right?): clients will refuse the TLS handshake`,
    );
}

/** The key must be the certificate's: TLS would refuse the pair only when the node starts. */
async function checkPair(check: FileCheck, key: string, certificatePath: string): Promise<void> {
  let cert: string;
  try {
    cert = await readFile(certificatePath, 'utf8');
  } catch {
    return; // the certificate's own check reports it
  }
  // A certificate that does not parse fails the pair too: its own check names the right key.
  if (certificateBlocksProblem(cert) !== null) return;
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const why = opensslReason(err);
    check.field.fail(`the private key of ${certificatePath}`, `${JSON.stringify(check.path)} (${why})`, err);
  }
}

/** The storage root, or the nearest existing directory above it, must be a writable directory. */
async function checkDirectory(check: FileCheck, expected: string): Promise<void> {
  let path = check.path;
  let problem: string | null = null;
  let cause: unknown;
  for (;;) {
    try {
      const st = await stat(path);
      if (!st.isDirectory()) problem = 'not a directory';
      else await access(path, constants.W_OK | constants.X_OK);
      break;
    } catch (err) {
      const code = errnoCode(err) ?? 'unusable';
      if (code === 'ENOENT' && dirname(path) !== path) {
        path = dirname(path);
        continue;
      }
      problem = code;
      cause = err;
      break;
    }
  }
  if (problem !== null) check.field.fail(expected, `${JSON.stringify(path)} (${problem})`, cause);
}

function looksValid(kind: FileKind, text: string): boolean {
  switch (kind) {
    case 'ca':
    case 'certificate':
      return /-----BEGIN CERTIFICATE-----/.test(text);
    case 'key':
      // "ENCRYPTED PRIVATE KEY" would need a passphrase we have no way to receive.
      return /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----/.test(text);
    case 'secret':
      return text.trim() !== '';
    case 'directory':
      return true;
    case 'jwks':
      try {
        const parsed: unknown = JSON.parse(text);
        return typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as { keys?: unknown }).keys);
      } catch {
        return false;
      }
  }
}
