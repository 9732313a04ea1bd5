// `npm run bench [-- options]`: the cache against a far DTR (the mock), beside its peers.
// See bench/README.md for the scenarios, the options and the JSON schema.
// Exit status: 0 when every scenario ran without request errors (targets never fail a run);
// 1 on errors or a crashed process; 2 on bad usage; 130 on Ctrl-C.
import { cpus, totalmem, tmpdir } from 'node:os';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTestCa } from '../testkit/pki.js';
import { Corpus } from './scenarios/corpus.js';
import { chooseDrivers, H1_DRIVERS, H2_DRIVERS, type H1Driver, type H2Driver } from './scenarios/drivers.js';
import { BenchEnv, type Settings } from './scenarios/env.js';
import { MockOrigin } from './scenarios/origin.js';
import { killAllNow, stopAll } from './scenarios/procs.js';
import { parseProcesses, processesKeySupported } from './scenarios/processes.js';
import { Progress } from './scenarios/progress.js';
import { selectScenarios, type ScenarioDef } from './scenarios/registry.js';
import { formatTable, writeReport } from './scenarios/report.js';
import { shapeFor } from './scenarios/shape.js';
import { cpuTimes, stealPct } from './scenarios/steal.js';
import { addRatios } from './scenarios/ratios.js';
import { evaluateTargets } from './scenarios/targets.js';
import { SCHEMA, type BenchReport, type Mode, type Processes, type ScenarioResult } from './scenarios/types.js';
import { messageOf, stackOf } from '../src/errors/inspect.js';

const USAGE = `usage: npm run bench -- [--quick | --smoke] [--scenario NAME[,NAME|PREFIX*]] [--no-peers]
       [--processes auto|N[,…]] [--h1-driver wrk|autocannon|raw] [--h2-driver h2load|undici]
       [--access-log on|off]
       [--latency-ms N] [--bandwidth BYTES_PER_SEC] [--out DIR] [--cpu-prof DIR] [--keep] [--quiet]`;

const RESULTS = new URL('../../bench/results/', import.meta.url).pathname;

function usage(msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function oneOf<T extends string>(v: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) usage(`${flag} takes one of ${allowed.join(', ')}`);
  return v as T;
}

function whole(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) usage(`${flag} wants a whole number >= 0`);
  return n;
}

async function runOne(env: BenchEnv, def: ScenarioDef): Promise<ScenarioResult> {
  const started = performance.now();
  const base = {
    name: def.name,
    subject: def.subject,
    ratios: [],
    processes: def.processes,
    ceilings: [],
    params: {},
    figures: {},
    errors: 0,
    errorSamples: [],
  };
  const missing = (await def.missing?.()) ?? null;
  if (missing !== null)
    return { ...base, status: 'skipped', note: `skipped: ${missing}`, durationMs: 0, stealPct: null };
  const cpuBefore = await cpuTimes();
  const timing = async () => ({
    durationMs: Math.round(performance.now() - started),
    stealPct: stealPct(cpuBefore, await cpuTimes()),
  });
  try {
    const o = await def.run(env);
    if (env.mock.proc.crashed()) throw new Error('the DTR mock exited during the scenario');
    return { ...base, ...o, status: o.errors > 0 ? 'error' : 'ok', note: o.note ?? null, ...(await timing()) };
  } catch (err) {
    const msg = messageOf(err);
    return {
      ...base,
      status: 'error',
      note: msg.slice(0, 2_000),
      errors: Math.max(1, base.errors),
      ...(await timing()),
    };
  }
}

function summary(r: ScenarioResult): string {
  if (r.status !== 'ok') return `${r.status}${r.note === null ? '' : `: ${r.note.split('\n')[0]}`}`;
  return Object.entries(r.figures)
    .slice(0, 5)
    .map(([k, v]) => `${k}=${v ?? '—'}`)
    .join(' ');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      smoke: { type: 'boolean' },
      scenario: { type: 'string' },
      'no-peers': { type: 'boolean' },
      'latency-ms': { type: 'string' },
      bandwidth: { type: 'string' },
      out: { type: 'string' },
      'cpu-prof': { type: 'string' },
      processes: { type: 'string' },
      'h1-driver': { type: 'string' },
      'h2-driver': { type: 'string' },
      'access-log': { type: 'string' },
      keep: { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.quick === true && values.smoke === true) usage('--quick and --smoke exclude each other');
  const mode: Mode = values.smoke === true ? 'smoke' : values.quick === true ? 'quick' : 'full';
  let asked: Processes[] = ['auto'];
  try {
    if (values.processes !== undefined) asked = parseProcesses(values.processes);
  } catch (err) {
    usage(messageOf(err));
  }
  const h1 = oneOf<H1Driver>(values['h1-driver'], '--h1-driver', H1_DRIVERS);
  const h2 = oneOf<H2Driver>(values['h2-driver'], '--h2-driver', H2_DRIVERS);
  const drivers = await chooseDrivers(h1, h2).catch((err: unknown) => usage(messageOf(err)));
  const latencyMs = whole(values['latency-ms'], '--latency-ms', 40);
  const bandwidth = whole(values.bandwidth, '--bandwidth', 25_000_000);
  if (bandwidth === 0) usage('--bandwidth must be > 0');
  const outDir = values.out ?? RESULTS;
  const accessLog = oneOf<'on' | 'off'>(values['access-log'], '--access-log', ['on', 'off']) !== 'off';

  const startedAt = new Date();
  const progress = new Progress(values.quiet === true);
  const workDir = await mkdtemp(join(tmpdir(), 'dtr-cache-bench-'));
  process.stderr.write(`bench: ${mode} run, work directory ${workDir}\n`);
  const processesKey = await processesKeySupported(workDir);
  if (!processesKey) {
    process.stderr.write(
      'bench: this build takes no http.processes: every cache runs (and is recorded as) 1 process\n',
    );
  }
  const settings: Settings = {
    mode,
    latencyMs,
    bandwidth,
    cpuProfDir: values['cpu-prof'] ?? null,
    drivers,
    processes: processesKey ? asked : [1],
    processesKey,
    accessLog,
  };
  process.stderr.write(
    `bench: drivers ${drivers.smallH1} (small h1), ${drivers.largeH1} (large h1), ${drivers.h2} (h2); processes ${settings.processes.join(', ')}; access log ${accessLog ? 'on' : 'off'}\n`,
  );
  // Smoke runs check the harness, not the peers: they are skipped unless named.
  let defs: ScenarioDef[] = [];
  try {
    defs = selectScenarios(values.scenario, values['no-peers'] !== true && mode !== 'smoke', settings.processes);
  } catch (err) {
    await rm(workDir, { recursive: true, force: true });
    usage(messageOf(err));
  }
  let env: BenchEnv | null = null;
  const cleanup = async (): Promise<void> => {
    progress.stop();
    await env?.close().catch(() => {});
    await stopAll();
    if (values.keep !== true) await rm(workDir, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nbench: ${sig}, stopping every process\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllNow);

  try {
    progress.scenario(0, defs.length, 'setup');
    progress.phase('certificates');
    await mkdir(join(workDir, 'pki'));
    const ca = await createTestCa('dtr-cache bench CA', join(workDir, 'pki'));
    const leaf = await ca.issue('bench');
    const corpus = new Corpus(join(workDir, 'origin'));
    await corpus.init();
    progress.phase('starting the DTR mock');
    const mock = await MockOrigin.start({
      name: 'dtr-mock',
      workDir,
      leaf,
      caPem: ca.cert,
      storageDir: corpus.root,
      latencyMs: settings.latencyMs,
      bandwidth: settings.bandwidth,
      tokens: true,
    });
    env = new BenchEnv(settings, shapeFor(mode), workDir, ca, leaf, corpus, mock);
    env.phase = (what) => progress.phase(what);

    const results: ScenarioResult[] = [];
    for (const [i, def] of defs.entries()) {
      progress.scenario(i + 1, defs.length, def.name);
      const r = await runOne(env, def);
      results.push(r);
      progress.done(summary(r));
    }
    addRatios(results);
    const finishedAt = new Date();
    const report: BenchReport = {
      schema: SCHEMA,
      mode,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      machine: {
        node: process.version,
        platform: process.platform,
        arch: process.arch,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
        memMiB: Math.round(totalmem() / 2 ** 20),
      },
      origin: { latencyMs: settings.latencyMs, bandwidthBytesPerSec: settings.bandwidth },
      drivers,
      processes: { settings: settings.processes, keySupported: processesKey },
      accessLog,
      scenarios: results,
      targets: evaluateTargets(results),
      ok: results.every((r) => r.status !== 'error'),
    };
    progress.stop();
    process.stdout.write(`${formatTable(report)}\n`);
    const written = await writeReport(outDir, report);
    process.stdout.write(`wrote ${written.join(' and ')}\n`);
    if (values.keep === true) process.stdout.write(`kept the work directory (logs, configs): ${workDir}\n`);
    return report.ok ? 0 : 1;
  } finally {
    if (!interrupted) await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${stackOf(err)}\n`);
    killAllNow();
    process.exit(1);
  },
);
