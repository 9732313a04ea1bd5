// Memory stays bounded. 50 concurrent cold clients of a 1 GiB blob keep each
// serving process under 200 MiB RSS (peak, VmHWM), and a node's supervisor (http.processes
// above 1) under 100 MiB; 200 concurrent cold clients of a 64 KiB blob (the small-blob path)
// share one copy of it. Plain HTTP between client and cache keeps the test's own CPU cost
// down; the fill path is the same as with TLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { request, Agent } from 'node:http';
import { createTestCa } from '../../testkit/pki.js';
import { servingChildren } from '../../testkit/cache-process.js';
import { spawnCache, writeConfig } from '../helpers/cache.js';
import { TestOrigin } from '../helpers/origin.js';
import { waitFor, within } from '../helpers/deadline.js';

/** A memory figure of a process from /proc, in MiB: VmRSS now, or VmHWM, its peak. */
async function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1];
  if (kb === undefined) throw new Error(`no ${field} for ${pid}`);
  return Number(kb) / 1024;
}

const peakRssMiB = (pid: number): Promise<number> => statusMiB(pid, 'VmHWM');

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

/** GETs `url` on a connection of its own: `head` resolves with the response headers, `body` with the body's size and digest. */
function get(url: string, agent: Agent) {
  let onHead!: (status: number) => void;
  const head = new Promise<number>((r) => (onHead = r));
  const body = new Promise<{ bytes: number; digest: string }>((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      onHead(res.statusCode ?? 0);
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      res.on('end', () => resolve({ bytes, digest: `sha256:${hash.digest('hex')}` }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  body.catch(() => undefined);
  return { head, body };
}

test('200 concurrent cold clients of a 64 KiB blob: one upstream GET, one fill, every byte, memory bounded', async (t) => {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const cfg = await writeConfig({ upstreams: [origin.url], cas: [ca.certPath], tls: null });
  // One serving process: every client is then a reader of the same fill.
  const cache = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '1' });
  const blob = origin.add(Buffer.alloc(64 << 10, createHash('sha512').update('small').digest()));
  const token = await origin.mint('team/small', blob.digest);
  const url = `${cache.url}/v2/team/small/blobs/${blob.digest}?token=${token}`;
  const pid = cache.child.pid ?? 0;
  // The current RSS: a baseline below any peak that start-up reached.
  const before = await statusMiB(pid, 'VmRSS');
  // The upstream holds the body after its first 16 KiB until every client has its headers,
  // which a fill sends as soon as it knows the size: all 200 are then readers of one fill.
  const gate = origin.gate(blob.digest, 16 << 10);
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  t.after(() => agent.destroy());
  const clients = Array.from({ length: 200 }, () => get(url, agent));
  const statuses = await within(60_000, 'every client has its headers', Promise.all(clients.map((c) => c.head)));
  assert.deepEqual(new Set(statuses), new Set([200]));
  gate.open();
  const results = await within(60_000, 'every body', Promise.all(clients.map((c) => c.body)));
  for (const r of results) {
    assert.equal(r.bytes, 64 << 10);
    assert.equal(r.digest, blob.digest);
  }
  assert.equal(origin.count(origin.gets, blob.digest), 1);
  const published = (): Record<string, unknown> | undefined =>
    cache.lines.find((l) => l.msg === 'fill published' && l.digest === blob.digest);
  await waitFor(10_000, 'the fill line', () => published() !== undefined);
  assert.equal(published()?.joins, 199, 'one fill served every client');
  const peak = await peakRssMiB(pid);
  t.diagnostic(`peak RSS ${before.toFixed(1)} MiB before, ${peak.toFixed(1)} MiB after 200 clients`);
  // 200 connections and their responses cost 25-28 MiB here; memory that grew with the
  // clients beyond that (100 KiB or more each) would fail.
  assert.ok(peak - before < 48, `RSS grew by ${(peak - before).toFixed(1)} MiB`);
});
