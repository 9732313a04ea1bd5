// The config loader under fuzz: mutated seed configs (config-arb.ts). In process, the
// loader either loads or throws a ConfigError whose one-line message names a key path; and
// through the real CLI, `dtr-cache check-config` exits 0, or 2 with that line, never
// anything else and never a stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { isConfigError } from '../../src/config/errors.js';
import { loadConfigFile } from '../../src/config/load.js';
import { CACHE_CLI, cliNodeFlags } from '../../testkit/cache-process.js';
import { createTestCa } from '../../testkit/pki.js';
import { budget, runProperty } from './budget.js';
import { configCase, filledSeeds, render } from './config-arb.js';

const SEEDS = new URL('../../../test/fixtures/seeds/', import.meta.url).pathname;
/** `config error: <key path>[ (line N)| (from VAR)]: found …, expected …`, one line. */
const CONFIG_ERROR =
  /^config error: (\(document\)|[A-Za-z0-9_[\].-]+)( \(line \d+\)| \(from REGISTRY_[A-Z_]+\))?: found .+, expected .+$/;

function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      args,
      { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 20_000 },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: unknown; signal?: string }) | null;
        resolve({
          code: child.exitCode ?? (typeof e?.code === 'number' ? e.code : null),
          signal: e?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

test('fuzz: the config loader', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dtr-cache-fuzz-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await createTestCa('dtr-cache config fuzz CA', join(dir));
  const leaf = await ca.issue('cache');
  const seeds = await filledSeeds(SEEDS, dir, { cert: ca.cert, key: leaf.key });
  assert.ok(seeds.length >= 5, 'every seed config');
  let n = 0;
  const write = async (text: string): Promise<string> => {
    const path = join(dir, `config-${n++ % 8}.yml`);
    await writeFile(path, text);
    return path;
  };

  await t.test('in process: loads, or a ConfigError naming a key path', async (tt) => {
    const property = fc.asyncProperty(configCase(seeds.length), async (c) => {
      const path = await write(render(seeds, c));
      try {
        await loadConfigFile(path, c.env);
      } catch (err) {
        if (!isConfigError(err)) throw new Error(`not a ConfigError: ${String(err)}`, { cause: err });
        assert.match(err.message, CONFIG_ERROR);
        assert.notEqual(err.keyPath, '');
      }
    });
    await runProperty(tt, 'config', property, budget(3));
  });

  await t.test('dtr-cache check-config: exit 0, or 2 with the key path; never a stack trace', async (tt) => {
    const flags = await cliNodeFlags();
    const property = fc.asyncProperty(configCase(seeds.length), async (c) => {
      const path = await write(render(seeds, c));
      // An environment variable cannot hold NUL.
      const env = Object.fromEntries(Object.entries(c.env).map(([k, v]) => [k, v.replaceAll('\0', '')]));
      const r = await runCli([...flags, CACHE_CLI, 'check-config', '--config', path], env);
      assert.equal(r.signal, null, `killed by ${r.signal}`);
      assert.doesNotMatch(r.stderr, /^\s+at /m, `a stack trace: ${r.stderr}`);
      if (r.code === 0) {
        assert.equal(r.stdout, 'configuration ok\n');
        return;
      }
      assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
      const errors = r.stderr.split('\n').filter((l) => !l.startsWith('config warning: ') && l !== '');
      assert.equal(errors.length, 1, `one error line: ${r.stderr}`);
      assert.match(errors[0]!, CONFIG_ERROR);
    });
    await runProperty(tt, 'check-config', property, budget(4));
  });
});
