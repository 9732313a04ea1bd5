// wrk (C, epoll, one event loop per thread) as the HTTP/1.1 driver for hits. The harness
// runs the binary itself (no Node wrapper: a wrapper killed by the harness would orphan
// wrk), with a Lua script that cycles through the spec's paths and prints the summary as
// one JSON line. Why wrk: against nginx static it measured 2.5–3 × what autocannon could
// (bench/NOTES.md, "Drivers"), so a figure from autocannon told more about autocannon.
//
// Bounds: wrk stops starting requests after `-d` (whole seconds: it takes no fractions) and
// has no request cap; a cap would need a Lua `response()` hook, and with one wrk hands
// every response body to Lua, which buffers whole 64 MiB blobs. The harness kills it past
// its duration plus slack. Checks: status (>= 400 counts as an error), connect/read/write
// errors and timeouts; wrk does not check body sizes (a body cut short breaks the
// connection or times out, and both count).
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { ExternalRun } from './external.js';
import type { LoadResult, LoadSpec } from './protocol.js';

const MARK = 'WRK-RESULT ';

/** A Lua string literal for a request path (printable ASCII only, which every blob path is). */
function luaString(s: string): string {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Error(`wrk driver: path is not printable ASCII: ${JSON.stringify(s)}`);
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Each thread starts at its own offset in the list, so the connections of different threads
 * do not ask for the same blob in lockstep. `done` runs once, in the main thread, with the
 * merged statistics; latencies are in microseconds.
 */
function script(paths: string[]): string {
  return `local paths = {
${paths.map((p) => `  ${luaString(p)},`).join('\n')}
}
local count = 0
function setup(thread)
  count = count + 1
  thread:set("offset", count * 7)
end
local i = 0
function init(args)
  i = tonumber(offset) or 0
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('${MARK}{"durationUs":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;
}

export const WRK_BIN = 'wrk';

/** Threads: one per core the machine has, never more than connections. */
export function wrkThreads(concurrency: number): number {
  return Math.max(1, Math.min(concurrency, availableParallelism()));
}

export async function prepareWrk(spec: LoadSpec, bin: string, dir: string, id: string): Promise<ExternalRun> {
  if (spec.proto !== 'h1') throw new Error('the wrk driver speaks HTTP/1.1 only');
  if (spec.order !== undefined) throw new Error('the wrk driver cycles through paths; it takes no order');
  const lua = join(dir, `${id}.lua`);
  await writeFile(lua, script(spec.paths));
  const seconds = Math.max(1, Math.ceil(spec.durationMs / 1000));
  return {
    command: bin,
    args: [
      '-t',
      String(wrkThreads(spec.concurrency)),
      '-c',
      String(spec.concurrency),
      '-d',
      `${seconds}s`,
      '--timeout',
      `${Math.max(1, Math.ceil(spec.requestTimeoutMs / 1000))}s`,
      '-s',
      lua,
      spec.origin,
    ],
    durationMs: seconds * 1000,
    result: async (logFile) => parseWrk(await readFile(logFile, 'utf8')),
  };
}

interface WrkSummary {
  durationUs: number;
  requests: number;
  bytes: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function parseWrk(output: string): LoadResult {
  const line = output.split('\n').find((l) => l.startsWith(MARK));
  if (line === undefined) throw new Error(`wrk printed no summary:\n${output.slice(-2000)}`);
  const s = JSON.parse(line.slice(MARK.length)) as WrkSummary;
  const samples: string[] = [];
  for (const k of ['connect', 'read', 'write', 'timeout', 'status'] as const) {
    if (s[k] > 0) samples.push(k === 'status' ? `${s[k]} responses with status >= 400` : `${s[k]} ${k} errors`);
  }
  const elapsedMs = s.durationUs / 1000;
  const ms = (us: number): number => us / 1000;
  return {
    requests: s.requests,
    errors: s.connect + s.read + s.write + s.timeout + s.status,
    errorSamples: samples,
    // wrk counts every byte read, headers included; a 4 KiB hit's head is ~5 % of it.
    bytes: s.bytes,
    elapsedMs,
    reqPerSec: elapsedMs > 0 ? (s.requests * 1000) / elapsedMs : 0,
    bytesPerSec: elapsedMs > 0 ? (s.bytes * 1000) / elapsedMs : 0,
    latencyMs: { p50: ms(s.p50), p90: ms(s.p90), p99: ms(s.p99), max: ms(s.max) },
    ttfbMs: null,
  };
}
