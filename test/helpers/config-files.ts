// Config files on disk for the test/unit/config-*.test.ts files that call loadConfigFile: a
// temp dir and a test CA per test file, the DTR documentation's configs with every path they
// name pointed at a real PEM file there, and configs written there.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before } from 'node:test';
import { createTestCa, type Leaf, type TestCa } from '../../testkit/pki.js';
import { fillUrls } from './config.js';

/** The calling test file's temp dir (see useTempDir): written configs and PEM files go there. */
export let dir: string;
let ca: TestCa;
let leaf: Leaf;

/** Gives the calling test file a temp dir and a test CA, made before its tests and removed after them. */
export function useTempDir(): void {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dtr-cache-config-'));
    ca = await createTestCa('dtr-cache config test CA');
    leaf = await ca.issue('cache');
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(ca.dir, { recursive: true, force: true });
  });
}

/**
 * Fills every placeholder and points each absolute /certs or /run/secrets path at a real
 * temp PEM file (the leaf's key for *key* files, its certificate for `certificate:`, else the
 * CA certificate), for loadConfigFile.
 * Returns the text and the map from doc path to temp path.
 */
export async function fillAll(text: string): Promise<{ text: string; paths: Map<string, string> }> {
  const paths = new Map<string, string>();
  const filled = fillUrls(text).replace(/\/(?:certs|run\/secrets)\/[\w.-]+/g, (docPath) => {
    const real = join(dir, basename(docPath));
    paths.set(docPath, real);
    return real;
  });
  // The TLS certificate is the leaf's, the pair of the key (loadConfigFile checks the pair).
  const tlsCertificates = new Set([...text.matchAll(/certificate: (\S+)/g)].map((m) => m[1]));
  for (const [docPath, real] of paths) {
    await writeFile(real, docPath.includes('key') ? leaf.key : tlsCertificates.has(docPath) ? leaf.cert : ca.cert);
  }
  return { text: filled, paths };
}

export async function writeConfig(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}
