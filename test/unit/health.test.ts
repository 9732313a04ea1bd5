// /debug/health's judgement (src/metrics/health.ts) on a real filesystem: 503 when the
// store cannot be written or no keys are loaded or the node is draining; upstream failures
// are reported but do not make the node unhealthy; the write probe is cached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Health } from '../../src/metrics/health.js';

test('health: store probe, keys, draining, upstream results', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dtr-cache-health-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const probeDir = join(dir, '_dtr-cache');
  const keys = { loaded: true, size: 2 };
  const upstreams = [
    {
      url: 'https://a.example',
      role: 'upstream',
      lastResult: { ok: false, at: 0, detail: 'unreachable: ECONNREFUSED' },
    },
    { url: 'https://origin.example', role: 'origin', lastResult: null },
  ];
  const health = new Health({ probeDir, keys, upstreams: () => upstreams });
  const t0 = 1_000_000;

  const ok = await health.report(t0);
  assert.equal(ok.status, 200, 'a failing upstream does not make the node unhealthy');
  assert.equal(ok.body.checks.store.ok, true);
  assert.deepEqual(await readdir(probeDir), [], 'the probe file is removed');
  assert.deepEqual(ok.body.checks.upstreams, [
    {
      url: 'https://a.example',
      role: 'upstream',
      ok: false,
      at: new Date(0).toISOString(),
      detail: 'unreachable: ECONNREFUSED',
    },
    { url: 'https://origin.example', role: 'origin', ok: null, at: null, detail: 'not contacted yet' },
  ]);

  // The store becomes unwritable (a file where the probe directory was; root ignores modes).
  await rm(probeDir, { recursive: true });
  await writeFile(probeDir, 'not a directory');
  assert.equal((await health.report(t0 + 1_000)).status, 200, 'the probe result is reused for a few seconds');
  const broken = await health.report(t0 + 6_000);
  assert.equal(broken.status, 503);
  assert.equal(broken.body.status, 'unavailable');
  assert.equal(broken.body.checks.store.ok, false);
  assert.match(broken.body.checks.store.detail, /^(E[A-Z]+): (?!\1)/);

  await rm(probeDir);
  assert.equal((await health.report(t0 + 12_000)).status, 200, 'writable again');
  keys.loaded = false;
  keys.size = 0;
  const noKeys = await health.report(t0 + 13_000);
  assert.equal(noKeys.status, 503);
  assert.deepEqual(noKeys.body.checks.keys, { ok: false, loaded: false, count: 0 });
  keys.loaded = true;
  keys.size = 1;
  health.draining = true;
  const draining = await health.report(t0 + 14_000);
  assert.equal(draining.status, 503);
  assert.equal(draining.body.checks.draining, true);
});
