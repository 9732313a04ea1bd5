// The soak's report: what the clients saw, what the faults did, what the chain fetched
// upstream, how each tier's memory and descriptors moved, what it left on disk, and the
// musts the run is judged by. Saved as JSON and printed as the lines the README quotes.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BadBody, SlowRequest, Tally } from './load.js';
import type { FaultRecord } from './schedule.js';
import type { FlatVerdict, Sample } from './sampler.js';
import type { Crash, Incarnation } from './tier.js';

export const SOAK_SCHEMA = 'dtr-cache-soak/1';

export interface Must {
  name: string;
  ok: boolean;
  detail: string;
}

export interface TierReport {
  incarnations: Incarnation[];
  samples: Sample[];
  flat: FlatVerdict;
  /** Files in the spool directory once the load ended and the fills settled. */
  spoolFilesLeft: string[];
  /** warn/error/fatal log lines by message, over every incarnation. */
  logProblems: Record<string, number>;
}

export interface UpstreamGets {
  /** Blob GETs the origin answered or refused, all blobs, the final sweep included. */
  originTotal: number;
  /** Per blob requested at least once: mean and the most any one blob took. */
  originPerBlobMean: number;
  originPerBlobMax: number;
  /** GETs the edge sent to the regional through the link. */
  regionalTotal: number;
  regionalPerBlobMean: number;
  /** The blobs fetched most often from the origin: [digest, GETs]. */
  originTop: Array<[string, number]>;
}

export interface SoakReport {
  schema: string;
  ok: boolean;
  musts: Must[];
  settings: Record<string, string | number | boolean>;
  workDir: string;
  loadSeconds: number;
  stealPct: number | null;
  requests: number;
  successes: number;
  partialSuccesses: number;
  errors: Record<string, number>;
  badBodies: number;
  badBodySamples: BadBody[];
  /** Requests over the hang limit (30 s + 1 s per MiB) or the per-request timeout, whatever they ended with. */
  hungRequests: number;
  hungSamples: SlowRequest[];
  byPhase: Record<string, Tally>;
  faults: FaultRecord[];
  link: { requests: number; cut: number; stalled: number; flipped: number; unreachable: number };
  upstreamGets: UpstreamGets;
  tiers: Record<string, TierReport>;
  crashes: Crash[];
  sweep: { blobs: number; served: number; seconds: number; failures: Array<{ digest: string; result: string }> };
}

/** Counts a tier's warn-and-worse log lines by message (pino levels: 40 warn, 50 error, 60 fatal). */
export async function logProblems(files: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const l = JSON.parse(line) as { level?: unknown; msg?: unknown };
        if (typeof l.level === 'number' && l.level >= 40) {
          const key = `${l.level >= 50 ? 'error' : 'warn'}: ${String(l.msg)}`;
          out[key] = (out[key] ?? 0) + 1;
        }
      } catch {
        // a line cut by kill -9
      }
    }
  }
  return out;
}

export function upstreamGets(
  requested: string[],
  origin: Record<string, { get: { served: number; failed: number } }>,
  regional: Record<string, number>,
): UpstreamGets {
  const o = requested.map((d) => [d, (origin[d]?.get.served ?? 0) + (origin[d]?.get.failed ?? 0)] as [string, number]);
  const n = Math.max(1, requested.length);
  const originTotal = o.reduce((a, [, v]) => a + v, 0);
  const regionalTotal = requested.reduce((a, d) => a + (regional[d] ?? 0), 0);
  return {
    originTotal,
    originPerBlobMean: Math.round((100 * originTotal) / n) / 100,
    originPerBlobMax: Math.max(0, ...o.map(([, v]) => v)),
    regionalTotal,
    regionalPerBlobMean: Math.round((100 * regionalTotal) / n) / 100,
    originTop: o.sort((a, b) => b[1] - a[1]).slice(0, 5),
  };
}

const MiB = 1 << 20;
const mib = (b: number): string => (b / MiB).toFixed(0);

function flatLine(name: string, t: TierReport): string {
  const f = t.flat;
  if (!f.judged || f.rss === null || f.fds === null) return `  ${name}: not judged (${f.note ?? ''})`;
  return (
    `  ${name}: RSS ${mib(f.rss.start)} → ${mib(f.rss.end)} MiB (limit ${mib(f.rss.limit)}), ` +
    `FDs ${f.fds.start} → ${f.fds.end} (limit ${f.fds.limit}), ${f.samples} samples of pid ${f.pid}`
  );
}

function faultLine(r: FaultRecord): string {
  const when = r.startedAt === null ? 'did not run' : `${r.startedAt}–${r.endedAt ?? '?'} s`;
  const d = Object.entries(r.detail)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  return `  ${r.kind.padEnd(14)} ${when.padEnd(16)} ${d}`;
}

/** The printed summary: every figure the README's soak section quotes. */
export function formatReport(r: SoakReport): string {
  const s = r.settings;
  const errs = Object.entries(r.errors).sort((a, b) => b[1] - a[1]);
  const u = r.upstreamGets;
  const lines = [
    `soak: ${r.loadSeconds} s of load, ${s['clients']} clients, ${s['blobs']} blobs ` +
      `(${s['minSize']}–${s['maxSize']}, ${s['corpusMiB']} MiB), seed ${s['seed']}, steal ${r.stealPct ?? '—'} %`,
    `requests ${r.requests}  ok ${r.successes} (206: ${r.partialSuccesses})  errors ${r.requests - r.successes - r.badBodies}  bad bodies ${r.badBodies}`,
    `hung requests (over 30 s + 1 s per MiB): ${r.hungRequests}`,
    `errors by kind: ${errs.length === 0 ? 'none' : errs.map(([k, v]) => `${k} ${v}`).join(', ')}`,
    'by phase (requests / ok / errors):',
    ...Object.entries(r.byPhase).map(
      ([p, t]) => `  ${p.padEnd(14)} ${t.requests} / ${t.ok} / ${t.requests - t.ok - t.badBodies}`,
    ),
    'faults:',
    ...r.faults.map(faultLine),
    `link: ${r.link.requests} requests, cut ${r.link.cut}, stalled ${r.link.stalled}, flipped ${r.link.flipped}, regional unreachable ${r.link.unreachable}`,
    `upstream GETs per blob requested: origin ${u.originPerBlobMean} (max ${u.originPerBlobMax}, total ${u.originTotal}), ` +
      `regional ${u.regionalPerBlobMean} (total ${u.regionalTotal})`,
    'RSS and FDs (start → end of the last process under load):',
    ...Object.entries(r.tiers).map(([n, t]) => flatLine(n, t)),
    `spool files left: ${Object.entries(r.tiers)
      .map(([n, t]) => `${n} ${t.spoolFilesLeft.length}`)
      .join(', ')}`,
    `sweep: ${r.sweep.served}/${r.sweep.blobs} blobs served right after the faults (${r.sweep.seconds} s)`,
    `crashes: ${r.crashes.length}`,
    ...r.musts.map((m) => `${m.ok ? 'PASS' : 'FAIL'} ${m.name}: ${m.detail}`),
    r.ok ? 'soak: every must held' : `soak: FAILED; logs in ${r.workDir}`,
  ];
  return `${lines.join('\n')}\n`;
}

export async function writeSoakReport(path: string, r: SoakReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(r, null, 2)}\n`);
}
