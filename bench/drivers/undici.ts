// Load driver for HTTP/2 (undici Pool with allowH2) and for the scenarios that need
// per-request timing (time to first byte, ordered pulls) over HTTP/1.1.
//   node dist/bench/drivers/undici.js SPEC.json RESULT.json
// A closed loop: `concurrency` requests in flight; each ends, the next starts. Bounded by
// `durationMs` and `maxRequests` (and, from outside, by the harness killing us).
// Uses undici's raw dispatch handler rather than `request()`: no stream per response, so
// the driver spends less of the machine's two cores on itself.
import { readFile } from 'node:fs/promises';
import { Pool, type Dispatcher } from 'undici';
import { closedLoop, driverMain, judge, type Fetched, type LoadResult, type LoadSpec } from './protocol.js';

function fetchOne(
  pool: Dispatcher,
  path: string,
  expect: number,
  timeoutMs: number,
  headers: Record<string, string> | undefined,
): Promise<Fetched> {
  const started = performance.now();
  return new Promise((resolve) => {
    let status = 0;
    let bytes = 0;
    let ttfb = -1;
    pool.dispatch(
      {
        method: 'GET',
        path,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(headers === undefined ? {} : { headers }),
      },
      {
        // Its presence selects undici's new handler API (onResponse*), which needs no stream per response.
        onRequestStart() {},
        onResponseStart(_c, statusCode) {
          status = statusCode;
        },
        onResponseData(_c, chunk) {
          if (ttfb < 0) ttfb = performance.now() - started;
          bytes += chunk.length;
        },
        onResponseEnd() {
          resolve(judge(path, status, bytes, expect, ttfb));
        },
        onResponseError(_c, err) {
          resolve({ ok: false, bytes, ttfb, error: `${err.name}: ${err.message}` });
        },
      },
    );
  });
}

export async function runUndici(spec: LoadSpec): Promise<LoadResult> {
  const ca = await readFile(spec.caPath, 'utf8');
  const pool =
    spec.proto === 'h2'
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
      : // HTTP/1.1 means HTTP/1.1: undici 8 offers HTTP/2 by default, and a subject that takes
        // it (ours, distribution) would get every client on one multiplexed connection.
        new Pool(spec.origin, { connections: spec.concurrency, pipelining: 1, allowH2: false, connect: { ca } });
  const result = await closedLoop(spec, (_loop, i) =>
    fetchOne(pool, spec.paths[i] ?? '/', spec.sizes[i] ?? -1, spec.requestTimeoutMs, spec.headers),
  );
  await pool.close();
  return result;
}

driverMain('undici', runUndici);
