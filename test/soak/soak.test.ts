// The chaos soak, 30 s of it. Runs `bench/soak/main.js` as `npm run soak` would
// (a regional and an edge tier as real processes, the faulty link between them, the DTR mock
// behind its gate, the edge on a small tmpfs when root), and reads its JSON report: every
// scheduled fault fired, no client ever got a clean answer with wrong bytes, every blob was
// served right after the faults, and no spool file was left behind. Nothing about time is
// asserted: only counts, so a busy machine makes the run slower, not red.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SoakReport } from '../../bench/soak/report.js';
import { processesUsing } from '../helpers/processes.js';
import { within } from '../helpers/deadline.js';

const SOAK = new URL('../../bench/soak/main.js', import.meta.url).pathname;
const SEED = 13;

test('soak, 30 s: every fault fires; no bad body, every blob served afterwards, no spool left', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dtr-soak-test-'));
  const out = join(dir, 'report.json');
  const child = spawn(
    process.execPath,
    [
      SOAK,
      '--seconds',
      '30',
      '--clients',
      '8',
      '--blobs',
      '60',
      '--max-size',
      '8MiB',
      '--request-timeout',
      '60',
      '--sweep-budget',
      '60',
      '--seed',
      String(SEED),
      '--out',
      out,
      '--dir',
      join(dir, 'run'),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)),
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // the soak tears its chain down on Ctrl-C
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      child.kill('SIGKILL');
    }
    await promisify(execFile)('umount', ['-l', join(dir, 'run', 'edge-disk')]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  const code = await within(280_000, 'the 30 s soak and its sweep', exited);
  const report = JSON.parse(await readFile(out, 'utf8').catch(() => 'null')) as SoakReport | null;
  assert.ok(report !== null, `the soak wrote no report (exit ${String(code)}):\n${output.slice(-4000)}`);
  t.diagnostic(
    `seed ${SEED}: ${report.requests} requests, ${report.successes} ok, errors ${JSON.stringify(report.errors)}`,
  );

  // The run did what it says: load, and every fault with an effect.
  assert.ok(report.successes > 100, `clients pulled blobs (${report.successes} ok)`);
  for (const f of report.faults) {
    if (f.kind === 'disk-full' && f.detail['skipped'] !== undefined) {
      t.diagnostic(`disk-full skipped: ${String(f.detail['skipped'])}`);
      continue;
    }
    assert.notEqual(f.startedAt, null, `${f.kind} ran`);
  }
  // Each link phase is a few seconds here, and one may see no transfer cross the link: the
  // link's work is asserted over the run, and shown per kind.
  const { cut, stalled, flipped } = report.link;
  t.diagnostic(`link: cut ${cut}, stalled ${stalled}, flipped ${flipped}`);
  assert.ok(cut + stalled + flipped > 0, 'the link spoiled transfers');
  for (const kill of report.faults.filter((f) => f.kind.startsWith('kill'))) {
    assert.notEqual(kill.detail['newPid'], kill.detail['pid'], `${kill.kind}: killed and started again`);
  }
  assert.equal(report.crashes.length, 0, `no tier died unasked: ${JSON.stringify(report.crashes)}`);

  // The musts.
  await t.test('bad bodies = 0', () =>
    assert.equal(report.badBodies, 0, `bad bodies: ${JSON.stringify(report.badBodySamples)}`),
  );
  await t.test('every blob served right after the faults', () =>
    assert.equal(report.sweep.served, report.sweep.blobs, JSON.stringify(report.sweep.failures)),
  );
  await t.test('no spool file left behind', () => {
    for (const [name, tier] of Object.entries(report.tiers)) assert.deepEqual(tier.spoolFilesLeft, [], name);
  });

  // The run cleaned up after itself.
  assert.deepEqual(await processesUsing(dir), [], 'no process of the run outlives it');
});
