// Load driver for HTTP/1.1 closed loops: autocannon, one keep-alive connection per
// concurrent request, cycling through the paths.
//   node dist/bench/drivers/autocannon.js SPEC.json RESULT.json
// Bounded by `durationMs` and `maxRequests` (autocannon's duration and maxOverallRequests),
// and from outside by the harness killing us.
import autocannon from 'autocannon';
import { readFile } from 'node:fs/promises';
import { driverMain, type LoadResult, type LoadSpec } from './protocol.js';

export async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const ca = await readFile(spec.caPath, 'utf8');
  const r = await autocannon({
    url: spec.origin,
    connections: spec.concurrency,
    duration: spec.durationMs / 1000,
    maxOverallRequests: Math.max(spec.maxRequests, spec.concurrency),
    timeout: Math.ceil(spec.requestTimeoutMs / 1000),
    requests: spec.paths.map((path) => ({ method: 'GET', path })),
    tlsOptions: { ca },
  });
  const samples: string[] = [];
  for (const [code, s] of Object.entries(r.statusCodeStats))
    if (code !== '200') samples.push(`status ${code} × ${s.count}`);
  if (r.errors > 0) samples.push(`${r.errors} connection errors (${r.timeouts} timeouts, ${r.resets} resets)`);
  if (r.mismatches > 0) samples.push(`${r.mismatches} body mismatches`);
  const elapsedMs = r.duration * 1000;
  // autocannon's latency histogram has 1 ms resolution; p90 is its nearest.
  const lat = { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max };
  return {
    requests: r.requests.total,
    errors: r.errors + r.non2xx + r.mismatches,
    errorSamples: samples,
    bytes: r.throughput.total,
    elapsedMs,
    reqPerSec: elapsedMs > 0 ? (r.requests.total * 1000) / elapsedMs : 0,
    bytesPerSec: elapsedMs > 0 ? (r.throughput.total * 1000) / elapsedMs : 0,
    latencyMs: lat,
    ttfbMs: null,
  };
}

driverMain('autocannon', runAutocannon);
