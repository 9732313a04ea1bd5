// h2load (nghttp2, C) as the HTTP/2 driver for hits, run by the harness itself (see
// wrk.ts for why no wrapper). Streams multiplex on few connections, as Go clients do:
// `-c` connections × `-m` streams each, with Go's windows (4 MiB per stream, 1 GiB per
// connection: `-w 22 -W 30`). Its summary has no latency percentiles, so it also writes
// one line per request (`--log-file`: start µs, status, elapsed µs) and we take them there.
//
// Bounds: `-D` stops the measurement after the duration (h2load then ignores `-n`), and
// the harness kills it past its duration plus slack. Checks: failed, errored and timed-out
// requests and non-2xx statuses; h2load does not check body sizes.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExternalRun } from './external.js';
import { percentiles, type LoadResult, type LoadSpec } from './protocol.js';

export const H2LOAD_BIN = 'h2load';

export async function prepareH2load(spec: LoadSpec, bin: string, dir: string, id: string): Promise<ExternalRun> {
  if (spec.proto !== 'h2') throw new Error('the h2load driver is for HTTP/2');
  if (spec.order !== undefined) throw new Error('the h2load driver cycles through paths; it takes no order');
  const uris = join(dir, `${id}.uris`);
  const log = join(dir, `${id}.requests.log`);
  await writeFile(uris, spec.paths.map((p) => `${spec.origin}${p}\n`).join(''));
  const connections = Math.max(1, Math.min(spec.h2Connections ?? 1, spec.concurrency));
  const streams = Math.ceil(spec.concurrency / connections);
  return {
    command: bin,
    args: [
      '-t',
      '1',
      '-c',
      String(connections),
      '-m',
      String(streams),
      '-D',
      `${Math.max(1, Math.round(spec.durationMs))}ms`,
      '-T',
      `${Math.max(1, Math.ceil(spec.requestTimeoutMs / 1000))}s`,
      '-w',
      '22',
      '-W',
      '30',
      `--log-file=${log}`,
      '-i',
      uris,
    ],
    durationMs: spec.durationMs,
    result: async (logFile) => parseH2load(await readFile(logFile, 'utf8'), await readFile(log, 'utf8')),
  };
}

function num(re: RegExp, text: string, what: string): number {
  const m = re.exec(text);
  if (m === null) throw new Error(`h2load: no ${what} in its output:\n${text.slice(-2000)}`);
  return Number(m[1]);
}

/** Seconds in h2load's own units (`1.50s`, `997.12ms`, `312us`). */
function seconds(v: string, unit: string): number {
  return Number(v) / (unit === 'ms' ? 1e3 : unit === 'us' ? 1e6 : 1);
}

export function parseH2load(output: string, requestLog: string): LoadResult {
  const fin = /finished in ([0-9.]+)(s|ms|us),/.exec(output);
  if (fin === null) throw new Error(`h2load did not finish:\n${output.slice(-2000)}`);
  const elapsedMs = seconds(fin[1] ?? '0', fin[2] ?? 's') * 1000;
  const done = num(/requests: \d+ total, \d+ started, (\d+) done/, output, 'requests line');
  const failed = num(/requests: .* (\d+) failed/, output, 'failed count');
  const errored = num(/requests: .* (\d+) errored/, output, 'errored count');
  const timeouts = num(/requests: .* (\d+) timeout/, output, 'timeout count');
  const s2 = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(output);
  const non2xx = s2 === null ? 0 : Number(s2[2]) + Number(s2[3]) + Number(s2[4]);
  // Data bytes: bodies only, including those of requests still in flight at the end.
  const bytes = num(/traffic: .*, [0-9.]+[KMG]?B \((\d+)\) data/, output, 'data bytes');
  const latencies: number[] = [];
  let badStatus = 0;
  for (const line of requestLog.split('\n')) {
    const f = line.split('\t');
    if (f.length < 3) continue;
    if (!(Number(f[1]) >= 200 && Number(f[1]) < 300)) badStatus++;
    latencies.push(Number(f[2]) / 1000);
  }
  const samples: string[] = [];
  if (failed > 0) samples.push(`${failed} failed requests (${errored} errored, ${timeouts} timed out)`);
  if (non2xx > 0 || badStatus > 0) samples.push(`${Math.max(non2xx, badStatus)} responses not 2xx`);
  return {
    requests: done,
    // h2load's `failed` already counts non-2xx answers and transport errors.
    errors: Math.max(failed, errored + timeouts + Math.max(non2xx, badStatus)),
    errorSamples: samples,
    bytes,
    elapsedMs,
    reqPerSec: elapsedMs > 0 ? (done * 1000) / elapsedMs : 0,
    bytesPerSec: elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0,
    latencyMs: percentiles(latencies),
    ttfbMs: null,
  };
}
