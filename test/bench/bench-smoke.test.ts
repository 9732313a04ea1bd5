// The benchmark harness itself. Runs `bench/run.js --smoke` (the shapes with
// tiny sizes and ~1 s loads, peers skipped) and checks the report's schema, that every
// scenario ran with zero errors, and that no process outlives the run, also on Ctrl-C.
// No timing is asserted: this machine is shared and noisy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, constants, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processesUsing } from '../helpers/processes.js';
import { within, waitFor } from '../helpers/deadline.js';

const RUN = new URL('../../bench/run.js', import.meta.url).pathname;
const OURS = [
  'hit-small-h1',
  'hit-small-h2',
  'hit-large',
  'cold-stampede',
  'chain-cold',
  'chain-far-link',
  'mixed',
  'cold-single-fast',
  'chain-cold-fast',
  'cold-stampede-fast',
  'mirror-cold',
  'mirror-warm',
];
const HITS = ['hit-small-h1', 'hit-small-h2', 'hit-large'];

/** Whether `name` is an executable on PATH (wrk, h2load, nginx decide what the run can do). */
async function installed(name: string, extra: string[] = []): Promise<boolean> {
  for (const d of [...(process.env['PATH'] ?? '').split(':'), ...extra]) {
    if (
      d !== '' &&
      (await access(join(d, name), constants.X_OK).then(
        () => true,
        () => false,
      ))
    )
      return true;
  }
  return false;
}

interface Run {
  code: number | string;
  stdout: string;
  stderr: string;
  workDir: string | null;
}

function startRun(args: string[], onStderr?: (text: string, kill: (s: NodeJS.Signals) => void) => void): Promise<Run> {
  const child = spawn(process.execPath, [RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    onStderr?.(stderr, (s) => child.kill(s));
  });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) =>
      resolve({
        code: code ?? signal ?? 'unknown',
        stdout,
        stderr,
        workDir: /work directory (\S+)/.exec(stderr)?.[1] ?? null,
      }),
    );
  });
}

function isFigure(v: unknown): boolean {
  return v === null || (typeof v === 'number' && Number.isFinite(v));
}

test('bench --smoke: every scenario runs with zero errors; the report follows the schema; no process is left', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'bench-smoke-out-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  // A bound against a hung run, not a timing: the smoke run takes ~40-90 s here.
  const run = await within(300_000, 'bench --smoke', startRun(['--smoke', '--keep', '--out', out]));
  if (run.workDir !== null) t.after(() => rm(run.workDir!, { recursive: true, force: true }));
  assert.equal(run.code, 0, `exit status; stdout:\n${run.stdout}\nstderr:\n${run.stderr.slice(-3000)}`);
  assert.ok(run.workDir, 'the run names its work directory');
  assert.deepEqual(await processesUsing(run.workDir), [], 'every mock, cache and driver process is gone');

  const files = (await readdir(out)).sort();
  assert.equal(files.length, 2, `latest.json and one timestamped copy: ${files.join(', ')}`);
  assert.ok(files.includes('latest.json'));
  const latest = await readFile(join(out, 'latest.json'), 'utf8');
  assert.equal(
    await readFile(
      join(
        out,
        files.find((f) => f !== 'latest.json')!,
      ),
      'utf8',
    ),
    latest,
  );

  const report = JSON.parse(latest) as Record<string, unknown>;
  assert.equal(report['schema'], 'dtr-cache-bench/1');
  assert.equal(report['mode'], 'smoke');
  assert.equal(report['ok'], true);
  for (const k of ['startedAt', 'finishedAt']) assert.ok(!Number.isNaN(Date.parse(String(report[k]))), k);
  assert.equal(typeof report['durationMs'], 'number');
  assert.deepEqual(report['origin'], { latencyMs: 40, bandwidthBytesPerSec: 25_000_000 });
  const machine = report['machine'] as Record<string, unknown>;
  assert.equal(machine['node'], process.version);
  // The drivers: wrk and h2load where installed, the Node drivers otherwise.
  const wrk = await installed('wrk', ['/usr/bin']);
  const h2load = await installed('h2load', ['/usr/bin']);
  assert.deepEqual(report['drivers'], {
    smallH1: wrk ? 'wrk' : 'autocannon',
    largeH1: wrk ? 'wrk' : 'raw',
    h2: h2load ? 'h2load' : 'undici',
  });
  const procs = report['processes'] as { settings: unknown[]; keySupported: unknown };
  assert.equal(typeof procs.keySupported, 'boolean');
  // The default is the cache's own default, auto; a build without the key runs 1.
  assert.deepEqual(procs.settings, procs.keySupported === true ? ['auto'] : [1]);

  const scenarios = report['scenarios'] as Array<Record<string, unknown>>;
  assert.deepEqual(
    scenarios.map((s) => s['name']),
    OURS,
    'smoke runs our scenarios, in order; peers skipped',
  );
  for (const s of scenarios) {
    const name = String(s['name']);
    assert.equal(s['status'], 'ok', `${name}: ${String(s['note'])}`);
    assert.equal(s['errors'], 0, `${name} errors: ${JSON.stringify(s['errorSamples'])}`);
    assert.equal(s['subject'], 'dtr-cache');
    assert.ok(Array.isArray(s['ratios']) && Array.isArray(s['errorSamples']), name);
    assert.equal(typeof s['durationMs'], 'number');
    // Linux has /proc/stat: steal is measured (0 on an idle host), never missing.
    assert.ok(
      typeof s['stealPct'] === 'number' && s['stealPct'] >= 0 && s['stealPct'] <= 100,
      `${name}.stealPct = ${String(s['stealPct'])}`,
    );
    const figures = s['figures'] as Record<string, unknown>;
    assert.ok(Object.keys(figures).length > 0, `${name} has figures`);
    for (const [k, v] of Object.entries(figures)) assert.ok(isFigure(v), `${name}.${k} = ${String(v)}`);
    assert.equal(typeof s['params'], 'object');
    assert.deepEqual(s['processes'], procs.settings[0], `${name} records the http.processes it ran with`);
    const ceilings = s['ceilings'] as Array<Record<string, unknown>>;
    assert.ok(Array.isArray(ceilings), `${name}.ceilings`);
    assert.equal(ceilings.length, !HITS.includes(name) ? 0 : name === 'hit-large' ? 2 : 1, `${name} ceilings`);
    for (const c of ceilings) {
      assert.ok(['reqPerSec', 'h1MiBps', 'h2MiBps'].includes(String(c['metric'])), `${name} ceiling metric`);
      assert.ok(isFigure(c['value']) && isFigure(c['ofCeiling']), `${name} ceiling figures`);
      assert.ok(c['driverBound'] === null || typeof c['driverBound'] === 'boolean');
      // With nginx installed the ceiling is measured (same driver against nginx static).
      if (await installed('nginx', ['/usr/sbin']))
        assert.equal(typeof c['value'], 'number', `${name} ceiling measured`);
    }
  }
  assert.equal(report['accessLog'], true, 'every subject logs each request by default');
  const fig = (name: string, k: string): unknown =>
    (scenarios.find((s) => s['name'] === name)!['figures'] as Record<string, unknown>)[k];
  // Each load really ran: requests were made and bytes moved (no figure's size is judged).
  assert.ok(Number(fig('hit-small-h1', 'requests')) > 0);
  assert.ok(Number(fig('hit-small-h2', 'requests')) > 0);
  assert.ok(Number(fig('hit-large', 'h1Requests')) > 0 && Number(fig('hit-large', 'h2Requests')) > 0);
  // The server's CPU for the work, read from /proc around the measured load: some was used.
  for (const [name, k] of [
    ['hit-small-h1', 'cpuUsPerReq'],
    ['hit-small-h2', 'cpuUsPerReq'],
    ['hit-large', 'h1CpuMsPerGiB'],
  ] as const)
    assert.ok(Number(fig(name, k)) > 0, `${name} ${k} = ${String(fig(name, k))}`);
  assert.ok(Number(fig('cold-stampede', 'upstreamGets')) >= 1, 'the stampede reached the mock');
  assert.ok(Number(fig('chain-cold', 'upstreamGets')) >= 1, 'the chain reached the mock');
  // The fast-origin scenarios: a figure per size of the run, one upstream GET per cold blob.
  const fast = scenarios.find((x) => x['name'] === 'cold-single-fast')!;
  const sizes = String((fast['params'] as Record<string, unknown>)['sizes']).split(',');
  assert.deepEqual(sizes, ['4KiB', '256KiB', '1MiB', '2MiB']);
  for (const l of sizes) {
    for (const k of ['ttfbMs', 'totalMs', 'directTtfbMs', 'directTotalMs']) {
      assert.equal(typeof fig('cold-single-fast', `${k}_${l}`), 'number', `cold-single-fast ${k}_${l}`);
    }
    for (const k of ['oneTierTotalMs', 'chainTotalMs']) {
      assert.equal(typeof fig('chain-cold-fast', `${k}_${l}`), 'number', `chain-cold-fast ${k}_${l}`);
    }
  }
  assert.equal(fig('chain-cold-fast', 'upstreamGets'), sizes.length, 'each chained blob fetched once from the origin');
  assert.equal(fig('cold-stampede-fast', 'upstreamGets'), 1, 'the fast stampede made one upstream GET');
  for (const k of ['wallMs', 'directWallMs', 'wallOverDirect', 'peakRssMiB', 'ttfbP99Ms'])
    assert.equal(typeof fig('cold-stampede-fast', k), 'number', `cold-stampede-fast ${k}`);
  const hit = Number(fig('mixed', 'hitRatio'));
  assert.ok(hit > 0 && hit < 1, `mixed hit ratio ${hit}: some hits, some misses`);
  assert.equal(fig('mixed', 'requests'), 2000);

  const targets = report['targets'] as Array<Record<string, unknown>>;
  assert.ok(targets.length > 0);
  for (const tg of targets) {
    assert.ok(typeof tg['id'] === 'string' && typeof tg['description'] === 'string');
    assert.ok(['<=', '<', '>=', '>', '=='].includes(String(tg['op'])));
    assert.ok(tg['pass'] === null || typeof tg['pass'] === 'boolean');
    assert.ok(isFigure(tg['value']));
    assert.deepEqual(tg['processes'], procs.settings[0]);
  }
  for (const id of ['cold-single-fast.4KiB.total-over-direct', 'chain-cold-fast.ratio', 'cold-stampede-fast.peak-rss'])
    assert.ok(
      targets.some((tg) => tg['id'] === id),
      `target ${id} is evaluated`,
    );
  assert.match(run.stdout, /targets \(reported, never fatal/, 'the table is printed');
});

test('bench: Ctrl-C mid-run stops every process and exits 130', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'bench-smoke-out-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  let sent = false;
  const run = await within(
    60_000,
    'bench interrupted',
    startRun(['--smoke', '--keep', '--out', out, '--scenario', 'hit-small-h1'], (text, kill) => {
      // Interrupt once the load driver is running: mock, cache and driver are all alive.
      if (!sent && /h1 load/.test(text)) {
        sent = true;
        kill('SIGINT');
      }
    }),
  );
  if (run.workDir !== null) t.after(() => rm(run.workDir!, { recursive: true, force: true }));
  assert.ok(sent, `the run reached its load phase:\n${run.stderr}`);
  assert.equal(run.code, 130, run.stderr.slice(-2000));
  assert.ok(run.workDir);
  await waitFor(5_000, 'no process left', async () => (await processesUsing(run.workDir!)).length === 0);
  assert.deepEqual(await readdir(out), [], 'an interrupted run writes no report');
});
