// `npm run soak [-- options]`: the chaos soak. A two-tier chain (regional, edge)
// in front of the DTR mock, a faulty link between the tiers, N clients checking every body,
// and faults on a schedule (schedule.ts). See the README's "Soak" section.
// Exit status: 0 when every must held; 1 when one failed; 2 on bad usage; 130 on Ctrl-C.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent } from 'undici';
import { formatSize, parseSize } from '../../src/config/size.js';
import { killAllNow, stopAll } from '../scenarios/procs.js';
import { cpuTimes, stealPct } from '../scenarios/steal.js';
import { chainFaults } from './faults.js';
import { Load } from './load.js';
import { judgeMusts } from './musts.js';
import {
  formatReport,
  logProblems,
  upstreamGets,
  writeSoakReport,
  type SoakReport,
  type TierReport,
} from './report.js';
import { sampleTree, judgeFlat, type Sample } from './sampler.js';
import { Scheduler } from './schedule.js';
import { buildChain, type Setup } from './setup.js';
import { pull } from './verify.js';
import { stackOf } from '../../src/errors/inspect.js';

const USAGE = `usage: npm run soak -- [--minutes N | --quick | --seconds N] [--clients N] [--blobs N]
       [--min-size 4KiB] [--max-size 64MiB] [--seed N] [--link-rate 0.35] [--range-share 0.25]
       [--request-timeout SEC] [--sweep-budget SEC] [--out FILE] [--dir DIR] [--keep] [--no-tmpfs]`;

function usage(msg: string): never {
  process.stderr.write(`soak: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function num(v: string | undefined, flag: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) usage(`${flag} wants a number from ${min} to ${max}, got ${v}`);
  return n;
}

function size(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  try {
    return parseSize(v);
  } catch {
    return usage(`${flag} wants a size such as 4KiB or 64MiB, got ${v}`);
  }
}

const { values: a } = (() => {
  try {
    return parseArgs({
      options: {
        minutes: { type: 'string' },
        seconds: { type: 'string' },
        quick: { type: 'boolean' },
        clients: { type: 'string' },
        blobs: { type: 'string' },
        'min-size': { type: 'string' },
        'max-size': { type: 'string' },
        seed: { type: 'string' },
        'link-rate': { type: 'string' },
        'range-share': { type: 'string' },
        out: { type: 'string' },
        dir: { type: 'string' },
        keep: { type: 'boolean' },
        'no-tmpfs': { type: 'boolean' },
        'request-timeout': { type: 'string' },
        'sweep-budget': { type: 'string' },
      },
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message);
  }
})();

const loadSeconds =
  a.seconds !== undefined
    ? num(a.seconds, '--seconds', 0, 10, 86_400)
    : a.quick === true
      ? 60
      : 60 * num(a.minutes, '--minutes', 10, 1, 1_440);
const settings = {
  loadSeconds,
  clients: num(a.clients, '--clients', 16, 1, 256),
  blobs: num(a.blobs, '--blobs', a.quick === true ? 80 : 160, 4, 10_000),
  minSize: size(a['min-size'], '--min-size', 4 << 10),
  maxSize: size(a['max-size'], '--max-size', 64 << 20),
  seed: num(a.seed, '--seed', Math.floor(Math.random() * 1e6), 0, 2 ** 31),
  linkRate: num(a['link-rate'], '--link-rate', 0.35, 0, 1),
  rangeShare: num(a['range-share'], '--range-share', 0.25, 0, 1),
  requestTimeoutSec: num(a['request-timeout'], '--request-timeout', 120, 10, 3_600),
  sweepBudgetSec: num(a['sweep-budget'], '--sweep-budget', 300, 10, 86_400),
};
if (settings.minSize < 1 || settings.minSize > settings.maxSize) usage('--min-size must be 1 byte to --max-size');
const out = resolve(a.out ?? 'bench/results/soak.json');
const log = (msg: string): void => void process.stderr.write(`soak: ${msg}\n`);

let setup: Setup | null = null;
let workDir = '';
let scheduler: Scheduler | null = null;
let load: Load | null = null;
process.on('exit', killAllNow);
process.once('SIGINT', () => {
  log('interrupted: stopping');
  scheduler?.abort();
  load?.stop();
  void teardown()
    .then(dropBulk)
    .finally(() => process.exit(130));
});

async function teardown(): Promise<void> {
  const s = setup;
  setup = null;
  if (s === null) return;
  await Promise.allSettled([s.edge.stop(), s.regional.stop()]);
  await s.link.close().catch(() => undefined);
  await s.gate.shut();
  await s.mock.close().catch(() => undefined);
  if (typeof s.disk !== 'string') await s.disk.unmount();
  await stopAll();
}

/** The corpus and the tiers' stores are large: only the logs, configs and report stay. */
async function dropBulk(): Promise<void> {
  if (workDir === '' || a.keep === true) return;
  for (const d of ['origin', 'regional/registry', 'edge/registry', 'edge-disk'])
    await rm(join(workDir, d), { recursive: true, force: true });
}

/**
 * Every blob once, whole, through the edge, 4 at a time: the chain must serve them all now.
 * The sweep as a whole is bounded (--sweep-budget): blobs it had no time for count as failed.
 */
async function sweep(s: Setup): Promise<SoakReport['sweep']> {
  const started = Date.now();
  const deadline = started + settings.sweepBudgetSec * 1000;
  const agent = new Agent({ connect: { ca: s.ca.cert }, allowH2: true, connections: 4, pipelining: 4 });
  const failures: SoakReport['sweep']['failures'] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = next++; i < s.blobs.length; i = next++) {
        const blob = s.blobs[i];
        if (blob === undefined) continue;
        const left = deadline - Date.now();
        if (left <= 0) {
          failures.push({ digest: blob.digest, result: 'not tried: the sweep ran out of time' });
          continue;
        }
        const r = await pull({
          url: `${s.edge.url}${await s.mock.blobPath(blob.digest)}`,
          blob,
          range: null,
          dispatcher: agent,
          timeoutMs: Math.min(left, settings.requestTimeoutSec * 1000),
        });
        if (r.kind !== 'ok')
          failures.push({ digest: blob.digest, result: r.kind === 'bad' ? `bad: ${r.why}` : r.error });
      }
    }),
  );
  await agent.destroy();
  return {
    blobs: s.blobs.length,
    served: s.blobs.length - failures.length,
    seconds: Math.round((Date.now() - started) / 1000),
    failures,
  };
}

/** Waits (30 s at most) for both tiers' spool directories to empty; what is left is left behind. */
async function settledSpools(s: Setup): Promise<{ regional: string[]; edge: string[] }> {
  const end = Date.now() + 30_000;
  for (;;) {
    const left = { regional: await s.regional.spoolFiles(), edge: await s.edge.spoolFiles() };
    if ((left.regional.length === 0 && left.edge.length === 0) || Date.now() > end) return left;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main(): Promise<number> {
  workDir = a.dir !== undefined ? resolve(a.dir) : await mkdtemp(join(tmpdir(), 'dtr-soak-'));
  log(`work directory ${workDir}, seed ${settings.seed}`);
  setup = await buildChain(
    { ...settings, workDir, tmpfs: a['no-tmpfs'] !== true, latencyMs: 10, bandwidth: 48 << 20 },
    (w) => log(`starting: ${w}`),
  );
  const s = setup;
  if (typeof s.disk === 'string') log(`no small disk for the edge (${s.disk}): the disk-full fault is skipped`);

  const lengthMs = loadSeconds * 1000;
  const startAt = Date.now();
  const cpu0 = await cpuTimes();
  scheduler = new Scheduler(startAt, lengthMs, chainFaults(s));
  const sched = scheduler;
  load = new Load({
    clients: settings.clients,
    blobs: s.blobs,
    edgeUrl: s.edge.url,
    caPem: s.ca.cert,
    path: (d) => s.mock.blobPath(d),
    rangeShare: settings.rangeShare,
    seed: settings.seed,
    endAt: () => sched.loadEnd(),
    requestTimeoutMs: settings.requestTimeoutSec * 1000,
    maxRequestsPerClient: 1_000_000,
    phase: () => sched.phase,
  });
  const samples: Record<'regional' | 'edge', Sample[]> = { regional: [], edge: [] };
  let sampling = true;
  const sampler = (async () => {
    const every = Math.max(1_000, lengthMs / 300);
    while (sampling) {
      for (const name of ['regional', 'edge'] as const) {
        const pid = s[name].pid;
        const v = pid === null ? null : await sampleTree(pid);
        if (pid !== null && v !== null)
          samples[name].push({ t: Math.round((Date.now() - startAt) / 100) / 10, pid, ...v });
      }
      await new Promise((r) => setTimeout(r, every));
    }
  })();
  const progress = setInterval(
    () =>
      log(
        `${Math.round((Date.now() - startAt) / 1000)} s: ${sched.phase}, ${load?.total.requests ?? 0} requests, ${load?.total.badBodies ?? 0} bad bodies`,
      ),
    Math.max(5_000, lengthMs / 20),
  );
  log(`load: ${settings.clients} clients for ${loadSeconds} s`);
  await Promise.all([load.run(), sched.run()]);
  clearInterval(progress);
  sampling = false;
  await sampler;
  const steal = stealPct(cpu0, await cpuTimes());
  const loadedSeconds = Math.round((Date.now() - startAt) / 1000);

  log('sweep: every blob once, right after the faults');
  const swept = await sweep(s);
  const spools = await settledSpools(s);
  const stats = await s.mock.stats();
  const requested = s.blobs.map((b) => b.digest);
  const tiers: Record<string, TierReport> = {};
  for (const name of ['regional', 'edge'] as const) {
    tiers[name] = {
      incarnations: s[name].incarnations,
      samples: samples[name],
      flat: judgeFlat(samples[name]),
      spoolFilesLeft: spools[name],
      logProblems: await logProblems(s[name].logFiles()),
    };
  }
  const l = load;
  const report: SoakReport = {
    schema: 'dtr-cache-soak/1',
    ok: false,
    musts: [],
    settings: {
      ...settings,
      minSize: formatSize(settings.minSize),
      maxSize: formatSize(settings.maxSize),
      corpusMiB: Math.round(s.corpusBytes / (1 << 20)),
      edgeMaxSize: formatSize(s.edgeMaxSize),
      edgeTmpfs: s.tmpfsBytes === 0 ? 'none' : formatSize(s.tmpfsBytes),
    },
    workDir,
    loadSeconds: loadedSeconds,
    stealPct: steal,
    requests: l.total.requests,
    successes: l.total.ok,
    partialSuccesses: l.total.partial,
    errors: l.total.errors,
    badBodies: l.total.badBodies,
    badBodySamples: l.bad.slice(0, 20),
    hungRequests: l.slow.length,
    hungSamples: l.slow.slice(0, 20),
    byPhase: Object.fromEntries(l.byPhase),
    faults: sched.records,
    link: {
      requests: s.link.stats.requests,
      cut: s.link.stats.cut,
      stalled: s.link.stats.stalled,
      flipped: s.link.stats.flipped,
      unreachable: s.link.stats.unreachable,
    },
    upstreamGets: upstreamGets(requested, stats.blobs, s.link.stats.getsByDigest),
    tiers,
    crashes: [...s.regional.crashes, ...s.edge.crashes],
    sweep: swept,
  };
  report.musts = judgeMusts(report, typeof s.disk === 'string');
  report.ok = report.musts.every((m) => m.ok);
  await teardown();
  await writeSoakReport(out, report);
  process.stdout.write(formatReport(report));
  log(`report: ${out}`);
  // The corpus and the tiers' stores are large; the logs and configs stay when something failed.
  if (a.keep !== true) {
    if (report.ok && a.dir === undefined) await rm(workDir, { recursive: true, force: true });
    else await dropBulk();
  }
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    log(`failed: ${stackOf(err)}`);
    await teardown().catch(() => undefined);
    process.exit(1);
  },
);
