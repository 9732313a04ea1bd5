// Shared by the test/unit/config-*.test.ts files: the DTR documentation's configs (the seeds
// in test/fixtures/seeds) with their URL <placeholders> filled in, loadConfig on text, and the
// check that an error is a one-line ConfigError naming its key path and line (or env var).
// Files on disk, for loadConfigFile, are in config-files.ts.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { URL_PLACEHOLDERS } from './seed-placeholders.js';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';

// Compiled to dist/test/helpers/, so the repository root is three levels up.
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SEEDS = join(ROOT, 'test/fixtures/seeds');
export const DAY_MS = 86_400_000;

export async function seed(name: string): Promise<string> {
  return readFile(join(SEEDS, name), 'utf8');
}

/** Fills URL placeholders only: the file paths stay as the docs wrote them (fine for loadConfig). */
export function fillUrls(text: string): string {
  let out = text;
  for (const [placeholder, value] of URL_PLACEHOLDERS) out = out.replaceAll(placeholder, value);
  return out;
}

export function load(text: string, env: NodeJS.ProcessEnv = {}): { config: Config; warnings: string[] } {
  return loadConfig(text, { env, source: 'config.yml' });
}

export interface Expected {
  keyPath: string;
  line?: number | null;
  envVar?: string | null;
  message?: string | RegExp;
}

export function checkError(err: unknown, want: Expected): true {
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.keyPath, want.keyPath, err.message);
  if (want.line !== undefined) assert.equal(err.line, want.line, err.message);
  if (want.envVar !== undefined) assert.equal(err.envVar, want.envVar, err.message);
  assert.match(err.message, /^config error: /);
  assert.doesNotMatch(err.message, /\n/, 'the message is one line');
  if (typeof want.message === 'string') assert.equal(err.message, want.message);
  else if (want.message !== undefined) assert.match(err.message, want.message);
  return true;
}

export function assertConfigError(fn: () => unknown, want: Expected): void {
  assert.throws(fn, (err) => checkError(err, want));
}

/** The "Deploy a simple cache" config with its URL filled in: the base of most error cases. */
export async function simple(): Promise<string> {
  return fillUrls(await seed('004-simple.yml'));
}
