// Memory stays bounded. 50 concurrent cold clients of a 1 GiB blob keep each
// serving process under 200 MiB RSS (peak, VmHWM), and a node's supervisor (http.processes
// above 1) under 100 MiB. Plain HTTP between client and cache
// keeps the test's own CPU cost down; the fill path is the same as with TLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { createTestCa } from '../../testkit/pki.js';
import { servingChildren } from '../../testkit/cache-process.js';
import { spawnCache, writeConfig } from '../helpers/cache.js';
import { TestOrigin } from '../helpers/origin.js';
import { within } from '../helpers/deadline.js';

async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return Number(m![1]) / 1024;
}

test('50 concurrent cold clients of a 1 GiB blob: one upstream GET, every byte, peak RSS < 200 MiB per serving process', async (t) => {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const cfg = await writeConfig({ upstreams: [origin.url], cas: [ca.certPath], tls: null });
  const cache = await spawnCache(t, cfg.path, cfg.root);
  // A repeating pattern, not random bytes: cheap to make; the digest still covers all of it.
  const unit = createHash('sha512').update('dtr-cache').digest();
  const bytes = Buffer.alloc(1 << 30, unit);
  const blob = origin.add(bytes);
  const token = await origin.mint('team/big', blob.digest);
  const url = `${cache.url}/v2/team/big/blobs/${blob.digest}?token=${token}`;
  // curl processes as clients: the test's own process could not drain 50 GiB fast enough.
  // One shell starts them all: forking 50 times from this process, which holds the 1 GiB
  // blob, stalled its event loop (and so the origin) for tens of seconds. Each client
  // reports the bytes it got; two pipe the body through sha256sum too.
  const dir = await mkdtemp(join(tmpdir(), 'dtr-cache-curls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const script = `
    for i in $(seq 0 49); do
      if [ "$i" -lt 2 ]; then
        curl -sS --fail -w '%{stderr}%{size_download}' "$URL" 2>"$DIR/bytes.$i" | sha256sum >"$DIR/hex.$i" &
      else
        curl -sS --fail -o /dev/null -w '%{size_download}' "$URL" >"$DIR/bytes.$i" 2>"$DIR/err.$i" &
      fi
    done
    wait`;
  await within(
    240_000,
    '50 clients of 1 GiB',
    new Promise<void>((resolve, reject) =>
      execFile('bash', ['-c', script], { env: { ...process.env, URL: url, DIR: dir } }, (err) =>
        err ? reject(err) : resolve(),
      ),
    ),
  );
  const results = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => ({
      bytes: Number((await readFile(join(dir, `bytes.${i}`), 'utf8')).trim()),
      hex: i < 2 ? (await readFile(join(dir, `hex.${i}`), 'utf8')).split(' ')[0]! : null,
    })),
  );
  for (const r of results) assert.equal(r.bytes, bytes.length);
  assert.equal(`sha256:${results[0]!.hex}`, blob.digest);
  assert.equal(`sha256:${results[1]!.hex}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 1);
  // With several processes, the first pid is the supervisor's, which serves nothing.
  const pid = cache.child.pid ?? 0;
  const members = await servingChildren(pid);
  const serving = await Promise.all((members.length === 0 ? [pid] : members).map(peakRssMiB));
  const supervisor = members.length === 0 ? 0 : await peakRssMiB(pid);
  const sum = serving.reduce((a, b) => a + b, supervisor);
  t.diagnostic(
    `peak RSS: serving ${serving.map((p) => p.toFixed(1)).join(', ')}; supervisor ${supervisor.toFixed(1)}; sum ${sum.toFixed(1)} MiB`,
  );
  for (const peak of serving) assert.ok(peak < 200, `serving process peak RSS ${peak.toFixed(1)} MiB`);
  assert.ok(supervisor < 100, `supervisor peak RSS ${supervisor.toFixed(1)} MiB`);
});
