// `npm run demo` end to end: the compiled demo as users run it, with the
// client it picks (skopeo where installed) and with the in-repo client it falls back
// to. It must exit 0, report two pulls, the second served from the cache, and leave no
// process or temp dir behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { connect } from 'node:net';
import test from 'node:test';
import { within } from '../helpers/deadline.js';

const DEMO = new URL('../../bench/demo.js', import.meta.url).pathname;

interface Pull {
  pull: number;
  client: string;
  blobs: number;
  redirected: number;
  originServed: number;
  misses: number;
  hits: number;
  fills: number;
}

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [DEMO, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  return within(90_000, `demo ${args.join(' ')}`, done).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
}

function refused(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port), '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

for (const client of ['auto', 'registry-client']) {
  test(`npm run demo (--client ${client}): two pulls, the second wholly from the cache, nothing left behind`, async (t) => {
    const r = await runDemo(['--client', client, '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    t.diagnostic(
      r.stdout
        .split('\n')
        .filter((l) => /^(pull|\d)\s/.test(l))
        .join(' | '),
    );
    const json = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as { ok: boolean; pulls: Pull[] };
    assert.equal(json.ok, true);
    assert.equal(json.pulls.length, 2);
    const [first, second] = json.pulls as [Pull, Pull];
    assert.ok(first.blobs >= 4, 'config + 3 or more layers');
    if (client !== 'auto') assert.equal(first.client, client);
    assert.deepEqual(
      [first.redirected, first.misses, first.hits, first.fills, first.originServed],
      [first.blobs, first.blobs, 0, first.blobs, first.blobs],
    );
    assert.deepEqual(
      [second.redirected, second.misses, second.hits, second.fills, second.originServed],
      [second.blobs, 0, second.blobs, 0, 0],
    );
    // The human-readable table: a header and a row per pull.
    assert.match(r.stdout, /^pull\s+client\s+time/m);
    assert.match(r.stdout, new RegExp(`^1\\s+${first.client}\\s`, 'm'));
    assert.match(r.stdout, new RegExp(`^2\\s+${second.client}\\s.*\\s0 blobs, 0 B$`, 'm'));

    const work = /work dir (\S+)\)/.exec(r.stdout)?.[1];
    assert.ok(work !== undefined);
    await assert.rejects(access(work), 'the work dir is removed');
    const urls = /origin (https:\/\/\S+), cache (https:\/\/\S+)/.exec(r.stdout);
    assert.ok(urls !== null);
    assert.equal(await refused(urls[1]!), true, 'the mock is stopped');
    assert.equal(await refused(urls[2]!), true, 'the cache is stopped');
  });
}

test('the demo fails with a clear message and a non-zero status', async () => {
  const r = await runDemo(['--client', 'carrier-pigeon']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /demo failed: --client is auto, skopeo or registry-client/);
});
