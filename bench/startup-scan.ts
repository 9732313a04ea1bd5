// Start-up scan benchmark: lays out N blobs in distribution's layout, then
// times the cache's index rebuild — in-process (BlobStore.scan) and as a real start of the
// CLI (the `store indexed` log line). Cost must be linear in the blob count.
//   node dist/bench/startup-scan.js [--blobs 100000] [--json]
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { BlobStore } from '../src/store/blob-store.js';
import { parseDigest } from '../src/store/digest.js';
import { Layout } from '../src/store/layout.js';

export interface ScanResult {
  blobs: number;
  layoutMs: number;
  scanMs: number;
  perBlobUs: number;
}

/** Writes `n` tiny blobs, 64 at a time. */
async function layOut(layout: Layout, n: number): Promise<void> {
  const width = 64;
  for (let i = 0; i < n; i += width) {
    await Promise.all(
      Array.from({ length: Math.min(width, n - i) }, async (_, k) => {
        const bytes = Buffer.from(`blob ${i + k}`);
        const d = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
        const path = layout.blobData(d);
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, bytes);
      }),
    );
  }
}

export async function runStartupScan(blobs: number): Promise<ScanResult> {
  const dir = await mkdtemp(join(tmpdir(), 'dtr-cache-scan-'));
  try {
    const layout = new Layout(join(dir, 'registry'));
    const t0 = performance.now();
    await layOut(layout, blobs);
    const layoutMs = performance.now() - t0;
    const store = new BlobStore(layout, { ttlMs: null });
    const t1 = performance.now();
    const { count } = await store.scan();
    const scanMs = performance.now() - t1;
    if (count !== blobs) throw new Error(`indexed ${count} of ${blobs} blobs`);
    return {
      blobs,
      layoutMs: Math.round(layoutMs),
      scanMs: Math.round(scanMs),
      perBlobUs: Math.round(((scanMs * 1000) / blobs) * 10) / 10,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { blobs: { type: 'string', default: '100000' }, json: { type: 'boolean' } },
  });
  const sizes = [Math.max(1, Math.floor(Number(values.blobs) / 10)), Number(values.blobs)];
  const results: ScanResult[] = [];
  for (const n of sizes) results.push(await runStartupScan(n));
  if (values.json) process.stdout.write(`${JSON.stringify(results)}\n`);
  else
    for (const r of results)
      process.stdout.write(
        `startup scan: ${r.blobs} blobs indexed in ${r.scanMs} ms (${r.perBlobUs} µs/blob; laying them out took ${r.layoutMs} ms)\n`,
      );
}
