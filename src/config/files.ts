// The file checks that need the filesystem: CA bundles (`cas`), the TLS pair, a jwks file and
// a mirror's passwordfile must exist, be readable and look like what they claim to be. loadConfigFile runs them
// (async, in parallel); the pure loadConfig only collects them.
import { readFile } from 'node:fs/promises';
import type { Field } from './field.js';
import { errnoCode } from '../errors/inspect.js';

export type FileKind = 'ca' | 'certificate' | 'key' | 'jwks' | 'secret';

export interface FileCheck {
  /** The config value that named the file, for the error's key path and line. */
  readonly field: Field;
  readonly path: string;
  readonly kind: FileKind;
}

const WHAT: Readonly<Record<FileKind, string>> = {
  ca: 'a readable PEM file with at least one CERTIFICATE block',
  certificate: 'a readable PEM file with at least one CERTIFICATE block',
  key: 'a readable PEM file with an unencrypted PRIVATE KEY block',
  jwks: 'a readable JWK Set file (JSON with a "keys" list)',
  secret: 'a readable file holding the password (not empty)',
};

/** Runs every check; throws the ConfigError of the first failing one in config order. */
export async function runFileChecks(checks: readonly FileCheck[]): Promise<void> {
  const results = await Promise.allSettled(checks.map(runOne));
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

async function runOne(check: FileCheck): Promise<void> {
  const expected = WHAT[check.kind];
  let text: string;
  try {
    text = await readFile(check.path, 'utf8');
  } catch (err) {
    const code = errnoCode(err) ?? 'unreadable';
    check.field.fail(expected, `${JSON.stringify(check.path)} (${code})`, err);
  }
  if (!looksValid(check.kind, text)) check.field.fail(expected, `${JSON.stringify(check.path)} without one`);
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
    case 'jwks':
      try {
        const parsed: unknown = JSON.parse(text);
        return typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as { keys?: unknown }).keys);
      } catch {
        return false;
      }
  }
}
