// Load driver for HTTP/2 (undici Pool with allowH2) and for the scenarios that need
// per-request timing (time to first byte, ordered pulls) over HTTP/1.1.
//   node dist/bench/drivers/undici.js SPEC.json RESULT.json
// A closed loop: `concurrency` requests in flight; each ends, the next starts. Bounded by
// `durationMs` and `maxRequests` (and, from outside, by the harness killing us).
// Uses undici's raw dispatch handler rather than `request()`: no stream per response, so
// the driver spends less of the machine's two cores on itself.
import { readFile } from 'node:fs/promises';
import { Pool, type Dispatcher } from 'undici';
import { driverMain, percentiles, type LoadResult, type LoadSpec } from './protocol.js';

function nextIndexer(spec: LoadSpec, deadline: number): () => number | undefined {
  let issued = 0;
  const order = spec.order;
  return () => {
    if (issued >= spec.maxRequests || performance.now() > deadline) return undefined;
    const pos = issued++;
    if (order === undefined) return pos % spec.paths.length;
    if (pos >= order.length && !spec.cycle) return undefined;
    return order[pos % order.length];
  };
}

interface One { ok: boolean; bytes: number; ttfb: number; error?: string }

function fetchOne(pool: Dispatcher, path: string, expect: number, timeoutMs: number): Promise<One> {
  const started = performance.now();
  return new Promise((resolve) => {
    let status = 0;
    let bytes = 0;
    let ttfb = -1;
    pool.dispatch({ method: 'GET', path, headersTimeout: timeoutMs, bodyTimeout: timeoutMs }, {
      // Its presence selects undici's new handler API (onResponse*), which needs no stream per response.
      onRequestStart() {},
      onResponseStart(_c, statusCode) { status = statusCode; },
      onResponseData(_c, chunk) {
        if (ttfb < 0) ttfb = performance.now() - started;
        bytes += chunk.length;
      },
      onResponseEnd() {
        if (status !== 200) resolve({ ok: false, bytes, ttfb, error: `status ${status} for ${path.split('?')[0]}` });
        else if (bytes !== expect) resolve({ ok: false, bytes, ttfb, error: `short body: ${bytes} of ${expect} bytes for ${path.split('?')[0]}` });
        else resolve({ ok: true, bytes, ttfb });
      },
      onResponseError(_c, err) { resolve({ ok: false, bytes, ttfb, error: `${err.name}: ${err.message}` }); },
    });
  });
}

export async function runUndici(spec: LoadSpec): Promise<LoadResult> {
  const ca = await readFile(spec.caPath, 'utf8');
  const pool = spec.proto === 'h2'
    ? new Pool(spec.origin, {
      allowH2: true,
      connections: spec.h2Connections ?? 1,
      // undici runs one stream at a time per HTTP/2 connection unless `pipelining` says
      // more: without it the driver measured its own serialisation (a 4 KiB hit at c=64
      // gave ~500 req/s against ~2,100 with the streams multiplexed).
      pipelining: Math.ceil(spec.concurrency / (spec.h2Connections ?? 1)),
      connect: { ca },
      // What Go's HTTP/2 client (docker, containerd) advertises: 4 MiB per stream, 1 GiB per
      // connection, so client windows do not cap large transfers.
      initialWindowSize: 4 << 20,
      connectionWindowSize: 1 << 30,
    })
    : new Pool(spec.origin, { connections: spec.concurrency, pipelining: 1, connect: { ca } });

  const latency: number[] = [];
  const ttfb: number[] = [];
  const samples: string[] = [];
  let errors = 0;
  let bytes = 0;
  const t0 = performance.now();
  let lastEnd = t0;
  const next = nextIndexer(spec, t0 + spec.durationMs);
  const worker = async (): Promise<void> => {
    for (let i = next(); i !== undefined; i = next()) {
      const started = performance.now();
      const r = await fetchOne(pool, spec.paths[i] ?? '/', spec.sizes[i] ?? -1, spec.requestTimeoutMs);
      const ended = performance.now();
      lastEnd = Math.max(lastEnd, ended);
      bytes += r.bytes;
      latency.push(ended - started);
      if (r.ttfb >= 0) ttfb.push(r.ttfb);
      if (!r.ok) {
        errors++;
        if (samples.length < 5 && r.error !== undefined) samples.push(r.error);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  await pool.close();
  const elapsedMs = lastEnd - t0;
  return {
    requests: latency.length,
    errors,
    errorSamples: samples,
    bytes,
    elapsedMs,
    reqPerSec: elapsedMs > 0 ? (latency.length * 1000) / elapsedMs : 0,
    bytesPerSec: elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0,
    latencyMs: percentiles(latency),
    ttfbMs: ttfb.length > 0 ? percentiles(ttfb) : null,
  };
}

driverMain('undici', runUndici);
